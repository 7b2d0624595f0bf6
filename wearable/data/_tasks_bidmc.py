"""Window builders for BIDMC: paired ECG + PPG windows, and heart-rate regression.

x has two channels, ECG lead II (band-passed, mV, clipped) and PPG (band-passed, scaled
once per record by its robust standard deviation, clipped); windows every ``hop_samples``
(default ``W``). Split is subject-wise by record number (``BIDMC_SPLITS``).

paired: no label; y is all zeros with labels ("unlabelled",), for self-supervised use and
benchmarks on real synchronised signals.
hr: y is float32, the mean monitor HR (bpm, 1 Hz numerics) over the window's seconds;
windows whose HR has gaps (NaN) are dropped.
hr_ppg: the same windows and targets as hr with the PPG channel only (x is (N, 1, W)): what a
PPG-only model is trained and exported on.
"""

from __future__ import annotations

import numpy as np

from ._request import Request, TaskSpec, split_records, windows_collect
from .bidmc import BIDMC_SPLITS, bidmc_read, bidmc_records
from .preprocess import ecg_clean, ecg_scale, ppg_clean, ppg_scale, signal_resample
from .windows import WindowSet, window_starts, windows_take

__all__ = ["BIDMC_TASKS", "bidmc_windows"]

BIDMC_TASKS = {
    "paired": TaskSpec(("unlabelled",), "unlabelled", ("ecg", "ppg")),
    "hr": TaskSpec(("hr_bpm",), "regression", ("ecg", "ppg")),
    "hr_ppg": TaskSpec(("hr_bpm",), "regression", ("ppg",)),
}
_PPG_ONLY = {"hr_ppg"}


def bidmc_windows(req: Request) -> WindowSet:
    records = split_records(req, BIDMC_SPLITS[req.split], bidmc_records(req.data_dir))
    fs, w = req.sampling_rate_hz, req.window_samples
    xs, ys = [], []
    for name in records:
        rec = bidmc_read(req.data_dir, name)
        ecg = ecg_scale(ecg_clean(signal_resample(rec.ecg, sampling_rate=rec.sampling_rate, target_rate=fs),
                                  sampling_rate=fs))
        ppg = ppg_scale(ppg_clean(signal_resample(rec.ppg, sampling_rate=rec.sampling_rate, target_rate=fs),
                                  sampling_rate=fs))
        n = min(ecg.size, ppg.size)
        starts = window_starts(n, window_samples=w, hop_samples=req.hop_samples or w)
        if req.task in ("hr", "hr_ppg"):
            hr = np.array([_mean_over(rec.hr, rec.numerics_rate, s / fs, (s + w) / fs) for s in starts])
            starts, y = starts[np.isfinite(hr)], hr[np.isfinite(hr)].astype(np.float32)
        else:
            y = np.zeros(starts.size, dtype=np.int64)
        channels = [ppg[:n]] if req.task in _PPG_ONLY else [ecg[:n], ppg[:n]]
        xs.append(windows_take(np.stack(channels), starts, w))
        ys.append(y)
    return windows_collect(req, xs, ys, labels=BIDMC_TASKS[req.task].labels, records=records)


def _mean_over(values: np.ndarray, rate: float, t0: float, t1: float) -> float:
    """Mean of a slow numerics series over [t0, t1) seconds; NaN if any value there is missing."""
    part = values[int(np.floor(t0 * rate)) : max(int(np.ceil(t1 * rate)), int(np.floor(t0 * rate)) + 1)]
    return float(np.mean(part)) if part.size and np.isfinite(part).all() else float("nan")
