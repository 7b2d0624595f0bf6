"""Beat-aligned patches for the tokenizer: cut at the R peaks of the paired ECG.

Fixed 0.5 s patches cut a beat anywhere, so the same beat gets different codes depending on
where the window started (the method's known weakness). Here every patch position ``j`` of a
window (its fixed span ``[j*S, (j+1)*S)``) is replaced by the R-R interval that contains the
span's centre, resampled to ``S`` samples, for every channel (ECG and PPG: the pulse of a beat
arrives within its R-R interval). The aligned windows keep the shape ``(N, C, W)``, so the
tokenizer is unchanged, and its code ``j`` still labels the student's column ``j``: the student
sees the raw PPG (no ECG at deployment) and learns the code of the beat under each column.
Before the first and after the last detected R peak the interval is extended by the median
R-R and clipped to the window; windows with fewer than two detected R peaks keep fixed patches.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks

__all__ = ["r_peaks_find", "beats_align"]

_REFRACTORY_S = 0.3  # no two R peaks closer than this (200 bpm)
_HEIGHT = 0.35  # of the window's 99th percentile of |ECG|


def r_peaks_find(ecg: np.ndarray, *, sampling_rate: float) -> np.ndarray:
    """Sample indices of the R peaks of one band-passed ECG window (polarity-free: peaks of |ECG|).

    >>> t = np.arange(512) / 64.0
    >>> ecg = np.exp(-((t[:, None] - np.arange(0.5, 8, 1.0)) / 0.02) ** 2).sum(1)
    >>> r_peaks_find(ecg, sampling_rate=64.0).tolist()
    [32, 96, 160, 224, 288, 352, 416, 480]
    """
    env = np.abs(np.asarray(ecg, dtype=np.float64) - np.median(ecg))
    top = float(np.percentile(env, 99))
    if top <= 0:
        return np.zeros(0, dtype=np.int64)
    peaks, _ = find_peaks(env, height=_HEIGHT * top, distance=max(1, int(round(_REFRACTORY_S * sampling_rate))))
    return peaks.astype(np.int64)


def _bounds(peaks: np.ndarray, width: int, patch: int) -> np.ndarray:
    """``(P, 2)`` start/stop of the R-R interval holding each patch centre."""
    rr = float(np.median(np.diff(peaks)))
    edges = np.concatenate([[peaks[0] - rr], peaks, [peaks[-1] + rr]])
    centres = np.arange(width // patch) * patch + patch / 2
    k = np.clip(np.searchsorted(edges, centres, side="right") - 1, 0, edges.size - 2)
    start = np.clip(edges[k], 0, width - 1)
    stop = np.clip(edges[k + 1], start + 1, width)
    return np.stack([start, stop], axis=1)


def beats_align(x: np.ndarray, ecg_channel: int = 0, *, sampling_rate: float, patch_samples: int
                ) -> tuple[np.ndarray, dict[str, float]]:
    """Beat-aligned copy of paired windows ``x`` ``(N, C, W)`` and detection statistics.

    Returns the aligned windows (same shape and dtype) and ``{"fallback_windows",
    "beats_per_window", "median_hr_bpm"}``: windows left with fixed patches, and the mean
    detected beats and median detected heart rate (a check of the R-peak detector).
    """
    n, c, w = x.shape
    if w % patch_samples:
        raise ValueError(f"window {w} is not a multiple of patch_samples {patch_samples}")
    out = np.array(x, dtype=np.float32, copy=True)
    grid = np.arange(w, dtype=np.float64)
    steps = (np.arange(patch_samples) + 0.5) / patch_samples
    fallback, beats, rates = 0, [], []
    for i in range(n):
        peaks = r_peaks_find(x[i, ecg_channel], sampling_rate=sampling_rate)
        beats.append(peaks.size)
        if peaks.size < 2:
            fallback += 1
            continue
        rates.append(60.0 * sampling_rate / float(np.median(np.diff(peaks))))
        b = _bounds(peaks, w, patch_samples)
        pos = (b[:, :1] + (b[:, 1:] - b[:, :1]) * steps[None, :]).reshape(-1)  # (P * S,) sample positions
        for ch in range(c):
            out[i, ch] = np.interp(pos, grid, x[i, ch])
    stats = {"fallback_windows": fallback, "beats_per_window": float(np.mean(beats)) if beats else 0.0,
             "median_hr_bpm": float(np.median(rates)) if rates else float("nan")}
    return out, stats
