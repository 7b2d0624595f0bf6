"""The downstream tasks of ``python -m wearable.ssl.run``: what data, how trained, how scored.

hr: PPG-only heart rate on BIDMC (task ``bidmc/hr_ppg``: monitor HR numerics, subject-wise
split), test MAE in bpm, lower is better. af: synthetic AF vs sinus rhythm on PPG (task
``ppg/rhythm_artifact`` without its ectopic class: one simulated record per window, the data
layer's PPG motion artifacts in four windows of five), test macro F1 in %, higher is better.
Both are one PPG channel, band-passed 0.5-8 Hz and scaled, so the PPG student's encoder serves.
ecg_beat: ECG-only AAMI beat classes N, S, V, F on MIT-BIH (task ``mitdb/beat``, Q beats
dropped as in de Chazal 2004; inter-patient: train DS1 minus 118/201/223, val those three,
test DS2, never trained on), one ``ECG_BEAT_WINDOW_S`` window centred on each beat, resampled
from 360 Hz to the student's rate; test macro F1 in %. It is the ECG student's task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from wearable.data import AAMI_CLASSES, PPG_RHYTHMS, load_windows
from wearable.metrics import macro_f1

from .downstream import classification_f1, classification_fit, regression_fit, regression_mae
from .robustness import ecg_noise_add, ppg_motion_add

__all__ = ["Downstream", "DOWNSTREAM", "DEFAULT_TASKS", "ECG_BEAT_WINDOW_S", "downstream_load", "baseline_score",
           "robustness_sets", "task_window"]

# 2 s (4 patches at 64 Hz) around each beat: the pooled student sees the beat and its neighbours'
# timing; picked on the validation records (scratch, seed 0: 1.5 / 2 / 3 s gave 0.34 / 0.43 / 0.38)
ECG_BEAT_WINDOW_S = 2.0


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
    modality: str = "ppg"  # which student (which channel of the paired windows) it fine-tunes
    window_s: float | None = None  # None: the pretraining window (--window)
    noise: str = "motion"  # robustness windows: "motion" (ppg_motion_add) or "nstdb" (ecg_noise_add)

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
    "ecg_beat": Downstream("ecg_beat", "ECG-only MIT-BIH AAMI beats (N, S, V, F), DS2 test macro F1 (%)",
                           "macro_f1_pct", False, 4, AAMI_CLASSES[:4], classification_fit, _f1_pct,
                           "predict the majority training class", modality="ecg", window_s=ECG_BEAT_WINDOW_S,
                           noise="nstdb"),
}
DEFAULT_TASKS = ("hr", "af")  # ecg_beat (the ECG student) only when asked for
_AF_KEEP = (PPG_RHYTHMS.index("sinus"), PPG_RHYTHMS.index("af"))


def task_window(task: Downstream, *, sampling_rate_hz: float, window_samples: int, patch_samples: int = 32) -> int:
    """Samples per downstream window: ``window_samples`` or ``task.window_s`` rounded to whole patches."""
    if task.window_s is None:
        return window_samples
    return max(1, int(round(task.window_s * sampling_rate_hz / patch_samples))) * patch_samples


def downstream_load(name: str, *, sampling_rate_hz: float, window_samples: int, data_dir, limit: int | None
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train"|"val"|"test": (x, y)}`` of task ``name``; y is float bpm (hr) or class ids (af, ecg_beat)."""
    window_samples = task_window(DOWNSTREAM[name], sampling_rate_hz=sampling_rate_hz, window_samples=window_samples)
    spec = dict(sampling_rate_hz=sampling_rate_hz, window_samples=window_samples, limit=limit)
    if name == "ecg_beat":  # limit: beats drawn (Q included) before Q is dropped
        sets = {s: load_windows("mitdb", "beat", split=s, data_dir=data_dir, **spec) for s in ("train", "val", "test")}
        return {s: (ws.x[ws.y < 4], ws.y[ws.y < 4]) for s, ws in sets.items()}
    if name == "hr":
        return {s: _xy(load_windows("bidmc", "hr_ppg", split=s, data_dir=data_dir, hop_samples=window_samples // 2,
                                    **spec)) for s in ("train", "val", "test")}
    out = {}
    for s in ("train", "val", "test"):
        ws = load_windows("ppg", "rhythm_artifact", split=s, **spec)
        keep = np.isin(ws.y, _AF_KEEP)
        out[s] = (ws.x[keep], (ws.y[keep] == _AF_KEEP[1]).astype(np.int64))
    return out


def robustness_sets(task: Downstream, x: np.ndarray, *, sampling_rate: float, snrs: list[float],
                    noises: list[str], data_dir) -> dict[str, np.ndarray]:
    """Noisy copies of the test windows ``x`` by column name: "20" (PPG motion) or "em 24" (nstdb on the ECG)."""
    if task.noise == "motion":
        return {f"{s:g}": ppg_motion_add(x, s, sampling_rate=sampling_rate) for s in snrs}
    return {f"{n} {s:g}": ecg_noise_add(x, s, sampling_rate=sampling_rate, noise=n, data_dir=data_dir)
            for n in noises for s in snrs}


def _xy(ws) -> tuple[np.ndarray, np.ndarray]:
    return ws.x, ws.y


def baseline_score(task: Downstream, data: dict) -> float:
    """The trivial predictor's test score: the training mean (MAE) or the majority class (macro F1 %)."""
    y_train, y_test = data["train"][1], data["test"][1]
    if not task.classification:
        return float(np.mean(np.abs(y_test - y_train.mean())))
    major = int(np.bincount(y_train, minlength=task.num_classes).argmax())
    return 100.0 * macro_f1(y_test, np.full_like(y_test, major), task.num_classes)
