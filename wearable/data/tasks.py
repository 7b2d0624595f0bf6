"""``load_windows``: one entry point from (source, task, split) to model-ready windows.

================  ==========  ============================================  ============  ===========
source            task        labels                                        y             filters
================  ==========  ============================================  ============  ===========
synthetic         rhythm      normal, af, ectopic, brady, tachy             (N,) class    ecg
synthetic         waves       background, p, qrs, t                         (N, W) class  ecg
synthetic         artifact    clean, baseline_wander, motion, muscle,       (N, W) class  ecg_wide
                              electrode_pop
mitdb             beat        N, S, V, F, Q (AAMI)                          (N,) class    ecg
mitdb             rhythm      normal, af, other                             (N,) class    ecg
bidmc             paired      unlabelled                                    (N,) zeros    ecg, ppg
bidmc             hr          hr_bpm                                        (N,) float32  ecg, ppg
challenge2017     rhythm      normal, af, other, noisy (the record's)       (N,) class    ecg
================  ==========  ============================================  ============  ===========

"filters" names the ``preprocess.FILTER_BANDS_HZ`` entry applied to each input channel
(``task_filters``), so a streaming runtime can rebuild the same front end.
"""

from __future__ import annotations

import logging
import numbers
from pathlib import Path
from typing import Callable

from ._errors import DataError
from ._request import Request, TaskSpec
from ._tasks_bidmc import BIDMC_TASKS, bidmc_windows
from ._tasks_challenge2017 import CHALLENGE2017_TASKS, challenge2017_windows
from ._tasks_mitdb import MITDB_TASKS, mitdb_windows
from ._tasks_ppg import PPG_TASKS, ppg_windows
from ._tasks_synthetic import SYNTHETIC_TASKS, synthetic_windows
from .preprocess import resample_ratio
from .windows import WindowSet

__all__ = ["SOURCES", "SPLITS", "TASK_LABELS", "TASK_KINDS", "TaskSpec", "list_tasks", "task_labels", "task_kind",
           "task_filters", "task_mask_labels", "load_windows"]

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
# Each source module declares its tasks next to the code that builds them; a new source is one line here.
_SOURCES: dict[str, tuple[dict[str, TaskSpec], Callable[[Request], WindowSet]]] = {
    "synthetic": (SYNTHETIC_TASKS, synthetic_windows),
    "mitdb": (MITDB_TASKS, mitdb_windows),
    "bidmc": (BIDMC_TASKS, bidmc_windows),
    "ppg": (PPG_TASKS, ppg_windows),
    "challenge2017": (CHALLENGE2017_TASKS, challenge2017_windows),
}
SOURCES = tuple(_SOURCES)
_SPECS: dict[tuple[str, str], TaskSpec] = {(src, task): spec for src, (tasks, _) in _SOURCES.items()
                                           for task, spec in tasks.items()}
TASK_LABELS: dict[tuple[str, str], tuple[str, ...]] = {key: spec.labels for key, spec in _SPECS.items()}
TASK_KINDS: dict[tuple[str, str], str] = {key: spec.kind for key, spec in _SPECS.items()}


def list_tasks() -> dict[str, tuple[str, ...]]:
    """Tasks of each source, e.g. ``{"synthetic": ("rhythm", "waves", "artifact"), ...}``."""
    return {source: tuple(task for src, task in TASK_LABELS if src == source) for source in SOURCES}


def task_labels(source: str, task: str) -> tuple[str, ...]:
    """Names of the class ids of ``source``/``task`` (for regression: the target's name)."""
    _check_task(source, task)
    return TASK_LABELS[(source, task)]


def task_filters(source: str, task: str) -> tuple[str, ...]:
    """The ``filter_sos`` kind applied to each input channel of ``source``/``task``."""
    _check_task(source, task)
    return _SPECS[(source, task)].filters


def task_mask_labels(source: str, task: str) -> tuple[str, ...]:
    """Names of the ids of the task's per-sample mask (its second target); empty without one."""
    _check_task(source, task)
    return _SPECS[(source, task)].mask_labels


def task_kind(source: str, task: str) -> str:
    """"classification", "segmentation", "regression" or "unlabelled" (see ``TaskSpec``)."""
    _check_task(source, task)
    return _SPECS[(source, task)].kind


def load_windows(
    source: str,
    task: str,
    *,
    split: str,
    sampling_rate_hz: float,
    window_samples: int,
    data_dir: str | Path | None = None,
    seed: int = 0,
    limit: int | None = None,
    hop_samples: int | None = None,
) -> WindowSet:
    """Windows of ``source``/``task`` for ``split`` ("train", "val" or "test") at ``sampling_rate_hz``.

    ``data_dir`` is needed by the real databases ("mitdb", "bidmc", "challenge2017"): the folder with the
    records, or one holding a folder per database; ``None`` falls back to
    ``$WEARABLE_DATA_DIR``. ``limit`` caps the number of windows: for synthetic data it is
    the number generated (default 2000 train, 500 val/test), for real data a random subset
    drawn with ``seed`` (default: all). ``hop_samples`` (default ``window_samples``) spaces
    the windows of the mitdb rhythm and bidmc tasks; the other tasks ignore it. Bad
    arguments or data folders raise ``DataError`` (a ``ValueError``).

    >>> ws = load_windows("synthetic", "rhythm", split="val", sampling_rate_hz=100.0, window_samples=500, limit=5)
    >>> ws.x.shape, ws.labels[ws.y[2]]
    ((5, 1, 500), 'ectopic')
    """
    _check_task(source, task)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; accepted: {', '.join(SPLITS)}")
    resample_ratio(sampling_rate_hz, sampling_rate_hz)  # validates the rate
    _check_int("window_samples", window_samples, minimum=2)
    if hop_samples is not None:
        _check_int("hop_samples", hop_samples, minimum=1)
    if limit is not None:
        _check_int("limit", limit, minimum=1)
    _check_int("seed", seed, minimum=0)
    req = Request(source=source, task=task, split=split, sampling_rate_hz=float(sampling_rate_hz),
                  window_samples=int(window_samples), data_dir=data_dir, seed=int(seed),
                  limit=None if limit is None else int(limit),
                  hop_samples=None if hop_samples is None else int(hop_samples))
    windows = _SOURCES[source][1](req)
    logger.info("%s/%s %s: %d windows of %d samples at %g Hz", source, task, split, len(windows),
                window_samples, sampling_rate_hz)
    return windows


def _check_task(source: str, task: str) -> None:
    if source not in SOURCES:
        raise DataError(f"unknown source {source!r}; accepted: {', '.join(SOURCES)}")
    tasks = list_tasks()[source]
    if task not in tasks:
        raise DataError(f"unknown task {task!r} for source {source!r}; accepted: {', '.join(tasks)}")


def _check_int(name: str, value, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise DataError(f"{name} must be an integer >= {minimum}, got {value!r}")
