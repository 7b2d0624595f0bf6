"""Robustness test windows: synthetic motion on the PPG, NSTDB noise on the ECG, at a chosen SNR.

``ppg_motion_add`` puts one ``burst`` artifact of ``wearable.data.ppg_artifacts`` (band-limited
0.5-6 Hz motion noise, 1-4 s long, inside the heart-rate band) into each window and scales it
so that the window's signal power over the artifact's power is ``snr_db``. ``ecg_noise_add``
adds a piece of an MIT-BIH Noise Stress Test record (``em`` electrode motion, ``ma`` muscle,
``bw`` baseline wander) to each ECG window, scaled to the window's power as ``nstdb_noise_add``
does with ``method="power"`` (mean-removed mean squares; ``ecg_snr`` measures it back). Both
act on the model's input (already band-passed and scaled), so the artifact is not filtered
again: a harder test than raw-signal artifacts, whose out-of-band part the front end would remove.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wearable.data import nstdb_read, signal_resample
from wearable.data.ppg_artifacts import ppg_artifacts_add

__all__ = ["ppg_motion_add", "ecg_noise_add"]


def ppg_motion_add(x: np.ndarray, snr_db: float, *, sampling_rate: float, seed: int = 0,
                   kinds: tuple[str, ...] = ("burst",)) -> np.ndarray:
    """Copy of ``x`` ``(N, C, W)`` with motion artifacts at ``snr_db`` (per window and channel).

    Deterministic in ``seed``: window ``i`` gets the artifact of seed ``seed + i`` at every SNR,
    so rows of a robustness table differ only in its scale.

    >>> x = np.sin(np.linspace(0, 60, 512))[None, None].repeat(2, 0)
    >>> noisy = ppg_motion_add(x, 0.0, sampling_rate=64.0)
    >>> bool(np.isclose(((noisy - x) ** 2).mean(), (x ** 2).mean()))
    True
    """
    x = np.asarray(x, dtype=np.float32)
    out = x.copy()
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            sig = x[i, c].astype(np.float64)
            noisy, _ = ppg_artifacts_add(sig, sampling_rate=sampling_rate, kinds=kinds, seed=seed + i)
            art = noisy - sig
            p_art = float(np.mean(art ** 2))
            if p_art > 0:
                gain = np.sqrt(float(np.mean(sig ** 2)) / (10.0 ** (snr_db / 10.0)) / p_art)
                out[i, c] = (sig + gain * art).astype(np.float32)
    return out


def ecg_noise_add(x: np.ndarray, snr_db: float, *, sampling_rate: float, noise: str = "em",
                  data_dir: str | Path | None = None, seed: int = 0) -> np.ndarray:
    """Copy of ECG windows ``x`` ``(N, C, W)`` with nstdb ``noise`` at ``snr_db`` per window and channel.

    Each window gets its own piece of the noise record (resampled to ``sampling_rate``; channel
    and start drawn from ``seed``, the same pieces at every SNR, so rows of a robustness table
    differ only in the noise's scale), mean removed and scaled so that the window's
    mean-removed power over the piece's is ``snr_db``. A flat window stays clean.
    """
    x = np.asarray(x, dtype=np.float32)
    n, c, w = x.shape
    record, record_fs = nstdb_read(data_dir, noise)
    record = signal_resample(record, sampling_rate=record_fs, target_rate=sampling_rate, axis=0)
    if record.shape[0] < w:
        raise ValueError(f"the {noise} record is shorter than a window of {w} samples")
    rng = np.random.default_rng(seed)
    channel = rng.integers(record.shape[1], size=(n, c))
    start = rng.integers(record.shape[0] - w + 1, size=(n, c))
    piece = record[start[..., None] + np.arange(w), channel[..., None]]  # (N, C, W)
    piece -= piece.mean(axis=-1, keepdims=True)
    sig = x.astype(np.float64)
    p_sig = sig.var(axis=-1, keepdims=True)  # mean-removed, as nstdb_noise_add(method="power")
    p_noise = np.mean(piece ** 2, axis=-1, keepdims=True)
    gain = np.sqrt(np.divide(p_sig, p_noise * 10.0 ** (snr_db / 10.0), out=np.zeros_like(p_sig),
                             where=p_noise > 0))
    return (sig + gain * piece).astype(np.float32)
