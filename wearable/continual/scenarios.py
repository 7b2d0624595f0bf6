"""The three continual-learning scenarios of ECG-CL on our data, and the runner that fills a task x stage matrix.

============  ==================================================  ===========================
scenario      tasks, in order                                     kind
============  ==================================================  ===========================
domain        mitdb qrs (per-sample background/qrs), mitdb beat   domain-incremental
              (N, S, V, F)
class         mitdb beat N, V; then beat N, S, V, F               class-incremental
task          mitdb beat (N, S, V, F); then mitdb rhythm          task-incremental
              (normal, af, other)
synthetic     synthetic waves (background/p/qrs/t), synthetic     no data needed (CI, tests)
              rhythm
============  ==================================================  ===========================

Train on DS1 (minus the validation records), test on DS2 (inter-patient), as ``wearable.data``
splits them. ``scenario_run`` learns the tasks one after another and, after each stage,
measures every task learned so far; with ``isolation=False`` the same run is plain
fine-tuning (shared weights, one decoder per task), which shows forgetting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wearable.data import load_windows
from wearable.data.windows import WindowSet
from wearable.models.ecgcl import ECGCLConfig

from .net import ContinualNet
from .packnet import LearnConfig, task_evaluate, task_learn

__all__ = ["TaskDef", "SCENARIOS", "ScenarioResult", "task_windows", "scenario_run"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskDef:
    """One task of a scenario: a ``load_windows`` source/task, optionally restricted to some classes."""

    name: str
    source: str
    task: str
    head: str
    classes: tuple[str, ...] | None = None  # keep only these labels (renumbered in this order)


_NSVF = ("N", "S", "V", "F")
SCENARIOS: dict[str, tuple[TaskDef, ...]] = {
    "domain": (TaskDef("qrs", "mitdb", "qrs", "segmentation"),
               TaskDef("beat", "mitdb", "beat", "classification", _NSVF)),
    "class": (TaskDef("beat_nv", "mitdb", "beat", "classification", ("N", "V")),
              TaskDef("beat_nsvf", "mitdb", "beat", "classification", _NSVF)),
    "task": (TaskDef("beat", "mitdb", "beat", "classification", _NSVF),
             TaskDef("rhythm", "mitdb", "rhythm", "classification")),
    "synthetic": (TaskDef("waves", "synthetic", "waves", "segmentation"),
                  TaskDef("rhythm", "synthetic", "rhythm", "classification")),
}


@dataclass
class ScenarioResult:
    """``matrix[i][j]``: metric of task ``i`` after stage ``j`` (None before task ``i`` was learned)."""

    scenario: str
    method: str
    tasks: list[str]
    metric: str
    matrix: list[list[float | None]]
    prune_ratios: list[float | None] = field(default_factory=list)
    net: ContinualNet | None = None
    final: dict[str, dict] = field(default_factory=dict)  # task -> classification report after the last stage

    def forgetting(self) -> list[float]:
        """Metric when learned minus metric at the end, per task (0 for the last)."""
        return [row[i] - row[-1] for i, row in enumerate(self.matrix)]


def task_windows(task: TaskDef, split: str, *, sampling_rate_hz: float, window_samples: int,
                 data_dir: str | Path | None, limit: int | None, seed: int = 0) -> WindowSet:
    """Windows of ``task`` for ``split``, class-filtered and subsampled to ``limit`` (drawn with ``seed``)."""
    synthetic = task.source == "synthetic"
    ws = load_windows(task.source, task.task, split=split, sampling_rate_hz=sampling_rate_hz,
                      window_samples=window_samples, data_dir=None if synthetic else data_dir, seed=seed,
                      limit=limit if synthetic else None)
    x, y, labels = ws.x, ws.y, ws.labels
    if task.classes is not None:
        lut = np.full(len(labels), -1, dtype=np.int64)  # old id -> position in task.classes
        lut[[labels.index(c) for c in task.classes]] = np.arange(len(task.classes))
        keep = lut[y] >= 0
        x, y, labels = x[keep], lut[y[keep]], task.classes
    if limit is not None and len(y) > limit:
        pick = np.sort(np.random.default_rng(seed).choice(len(y), size=limit, replace=False))
        x, y = x[pick], y[pick]
    return WindowSet(x=np.ascontiguousarray(x), y=np.ascontiguousarray(y), labels=tuple(labels),
                     sampling_rate_hz=ws.sampling_rate_hz, source=ws.source, task=ws.task, records=ws.records)


def scenario_run(scenario: str, *, config: ECGCLConfig, learn: LearnConfig, isolation: bool,
                 data_dir: str | Path | None = None, train_limit: int | None = 4000, test_limit: int | None = 2000,
                 tasks: tuple[TaskDef, ...] | None = None, progress: bool = False) -> ScenarioResult:
    """Learn the scenario's tasks in order; macro F1 (%) on the test split of each task after each stage."""
    tasks = SCENARIOS[scenario] if tasks is None else tasks
    kw = dict(sampling_rate_hz=config.sampling_rate_hz, window_samples=config.window_samples, data_dir=data_dir,
              seed=learn.seed)
    train = [task_windows(t, "train", limit=train_limit, **kw) for t in tasks]
    test = [task_windows(t, "test", limit=test_limit, **kw) for t in tasks]
    torch.manual_seed(learn.seed)
    net = ContinualNet(config, isolation=isolation)
    matrix: list[list[float | None]] = [[None] * len(tasks) for _ in tasks]
    ratios: list[float | None] = []
    final: dict[str, dict] = {}
    for j, task in enumerate(tasks):
        net.task_add(task.name, task.head, train[j].labels)
        stats = task_learn(net, task.name, train[j], config=learn, progress=progress)
        ratios.append(None if stats is None else stats.ratio)
        for i in range(j + 1):
            final[tasks[i].name] = task_evaluate(net, tasks[i].name, test[i])
            matrix[i][j] = 100.0 * final[tasks[i].name]["macro_f1"]
        log.info("%s stage %d (%s): %s", scenario, j + 1, task.name, matrix)
    return ScenarioResult(scenario, "packnet" if isolation else "finetune", [t.name for t in tasks],
                          "macro F1 % (test split)", matrix, ratios, net, final)
