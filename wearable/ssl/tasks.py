"""The downstream tasks of ``python -m wearable.ssl.run``: what data, how trained, how scored.

hr: PPG-only heart rate on BIDMC (task ``bidmc/hr_ppg``: monitor HR numerics, subject-wise
split), test MAE in bpm, lower is better. af: synthetic AF vs sinus rhythm on PPG (task
``ppg/rhythm_artifact`` without its ectopic class: one simulated record per window, the data
layer's PPG motion artifacts in four windows of five), test macro F1 in %, higher is better.
Both are one PPG channel, band-passed 0.5-8 Hz and scaled, so the same pretrained encoder serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from wearable.data import PPG_RHYTHMS, load_windows
from wearable.metrics import macro_f1

from .downstream import classification_f1, classification_fit, regression_fit, regression_mae

__all__ = ["Downstream", "DOWNSTREAM", "downstream_load", "baseline_score"]


@dataclass(frozen=True)
class Downstream:
    """A downstream task: its data, output count, training function and test metric."""

    name: str
    title: str  # table caption
    metric: str  # column name of the score in the report
    lower_is_better: bool
    num_classes: int  # student outputs
    labels: tuple[str, ...]
    fit: Callable
    score: Callable[..., float]  # (model, x, y) -> the metric in the table's unit
    baseline: str  # what the trivial row means

    @property
    def classification(self) -> bool:
        return self.num_classes > 1


def _f1_pct(model, x, y) -> float:
    return 100.0 * classification_f1(model, x, y)


DOWNSTREAM = {
    "hr": Downstream("hr", "PPG-only HR (BIDMC), test MAE (bpm)", "mae_bpm", True, 1, ("hr_bpm",), regression_fit,
                     regression_mae, "predict the training mean"),
    "af": Downstream("af", "synthetic PPG AF vs sinus, test macro F1 (%)", "macro_f1_pct", False, 2, ("sinus", "af"),
                     classification_fit, _f1_pct, "predict the majority training class"),
}
_AF_KEEP = (PPG_RHYTHMS.index("sinus"), PPG_RHYTHMS.index("af"))


def downstream_load(name: str, *, sampling_rate_hz: float, window_samples: int, data_dir, limit: int | None
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train"|"val"|"test": (x, y)}`` of task ``name``; y is float bpm (hr) or class ids (af)."""
    spec = dict(sampling_rate_hz=sampling_rate_hz, window_samples=window_samples, limit=limit)
    if name == "hr":
        return {s: _xy(load_windows("bidmc", "hr_ppg", split=s, data_dir=data_dir, hop_samples=window_samples // 2,
                                    **spec)) for s in ("train", "val", "test")}
    out = {}
    for s in ("train", "val", "test"):
        ws = load_windows("ppg", "rhythm_artifact", split=s, **spec)
        keep = np.isin(ws.y, _AF_KEEP)
        out[s] = (ws.x[keep], (ws.y[keep] == _AF_KEEP[1]).astype(np.int64))
    return out


def _xy(ws) -> tuple[np.ndarray, np.ndarray]:
    return ws.x, ws.y


def baseline_score(task: Downstream, data: dict) -> float:
    """The trivial predictor's test score: the training mean (MAE) or the majority class (macro F1 %)."""
    y_train, y_test = data["train"][1], data["test"][1]
    if not task.classification:
        return float(np.mean(np.abs(y_test - y_train.mean())))
    major = int(np.bincount(y_train, minlength=task.num_classes).argmax())
    return 100.0 * macro_f1(y_test, np.full_like(y_test, major), task.num_classes)
