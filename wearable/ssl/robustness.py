"""Robustness of a PPG model to motion: synthetic motion bursts added at a chosen SNR.

``ppg_motion_add`` puts one ``burst`` artifact of ``wearable.data.ppg_artifacts`` (band-limited
0.5-6 Hz motion noise, 1-4 s long, inside the heart-rate band) into each window and scales it
so that the window's signal power over the artifact's power is ``snr_db``. The windows are
the model's input (already band-passed and scaled), so the artifact is not filtered again:
a harder test than raw-signal artifacts, whose out-of-band part the front end would remove.
"""

from __future__ import annotations

import numpy as np

from wearable.data.ppg_artifacts import ppg_artifacts_add

__all__ = ["ppg_motion_add"]


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
