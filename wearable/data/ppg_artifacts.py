"""Synthetic PPG motion artifacts with an exact per-sample mask.

Kinds, each one segment at a random position (segments never overlap):

- ``step``: the baseline jumps (sensor shifted on the wrist) and recovers exponentially;
  the segment spans three decay constants;
- ``burst``: band-limited motion noise (arm swing, typing) larger than the pulses;
- ``drift``: a slow, large wander of the baseline (strap pressure changing);
- ``saturation``: the signal is pushed onto an ADC rail and clipped there (flat at the rail);
- ``dropout``: the sensor loses contact and the signal flat-lines near where it was.

Amplitudes are relative to ``amplitude``, the peak-to-peak size of a pulse (default: the
2.5-97.5 percentile range of the input), so the same call suits synthetic PPG (pulses near
1) and monitor units (BIDMC). The mask is exact on the raw signal: filters applied later
smear an artifact's edges, and a model has to learn where the raw edge was.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import signal as _sps

from ._errors import DataError

__all__ = ["PPG_ARTIFACT_LABELS", "PPG_ARTIFACT_KINDS", "ppg_artifacts_add"]

PPG_ARTIFACT_LABELS = ("clean", "step", "burst", "drift", "saturation", "dropout")
PPG_ARTIFACT_KINDS = PPG_ARTIFACT_LABELS[1:]

# Segment durations in seconds; a step lasts three recovery time constants.
_DURATION_S = {"burst": (1.0, 4.0), "drift": (2.0, 5.0), "saturation": (0.5, 3.0), "dropout": (0.5, 3.0)}
_STEP_TAU_S = (0.2, 0.8)
_RAIL_SPAN = 3.0  # default rails: median +- 3 pulse amplitudes


def ppg_artifacts_add(
    ppg: np.ndarray,
    *,
    sampling_rate: float,
    kinds: Sequence[str] = PPG_ARTIFACT_KINDS,
    seed: int = 0,
    amplitude: float | None = None,
    rails: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Add one segment of each artifact in ``kinds`` to a raw PPG (1-D).

    Returns ``(noisy, mask)``: ``mask`` is int8, 0 where clean and
    ``PPG_ARTIFACT_LABELS.index(kind)`` inside each segment. ``rails`` are the ADC limits
    that ``saturation`` clips to (default: median +- 3 ``amplitude``). Deterministic in ``seed``.

    >>> noisy, mask = ppg_artifacts_add(np.zeros(1000), sampling_rate=50.0, kinds=("dropout",), seed=1)
    >>> sorted(set(mask.tolist()))
    [0, 5]
    """
    unknown = [k for k in kinds if k not in PPG_ARTIFACT_KINDS]
    if unknown:
        raise DataError(f"unknown PPG artifact kind(s) {unknown}; accepted: {', '.join(PPG_ARTIFACT_KINDS)}")
    if not sampling_rate > 0:
        raise DataError(f"sampling rate must be a positive number of Hz, got {sampling_rate!r}")
    ppg = np.asarray(ppg, dtype=np.float64)
    if ppg.ndim != 1:
        raise DataError(f"ppg must be 1-D, got shape {ppg.shape}")
    n = ppg.size
    noisy = ppg.copy()
    mask = np.zeros(n, dtype=np.int8)
    if not len(kinds) or n < 2:
        return noisy, mask
    if amplitude is None:
        lo, hi = np.percentile(ppg, [2.5, 97.5])
        amplitude = float(hi - lo)
    amplitude = amplitude if np.isfinite(amplitude) and amplitude > 0 else 1.0
    centre = float(np.median(ppg))
    if rails is None:
        rails = (centre - _RAIL_SPAN * amplitude, centre + _RAIL_SPAN * amplitude)
    rng = np.random.default_rng(seed)
    kinds = [kinds[i] for i in rng.permutation(len(kinds))]
    share = n / len(kinds)  # every segment must fit, so none may take more than its share
    lengths = [max(2, min(_length_draw(kind, sampling_rate, rng), int(0.9 * share))) for kind in kinds]
    gaps = np.floor(rng.dirichlet(np.ones(len(kinds) + 1)) * (n - sum(lengths))).astype(int)
    start = 0
    for kind, length, gap in zip(kinds, lengths, gaps):
        start += gap
        part = slice(start, start + length)
        noisy[part] = _artifact(kind, noisy[part], sampling_rate, amplitude, rails, rng)
        mask[part] = PPG_ARTIFACT_LABELS.index(kind)
        start += length
    return noisy, mask


def _length_draw(kind: str, fs: float, rng: np.random.Generator) -> int:
    if kind == "step":
        return int(np.ceil(3 * rng.uniform(*_STEP_TAU_S) * fs))
    return int(rng.uniform(*_DURATION_S[kind]) * fs)


def _artifact(kind: str, x: np.ndarray, fs: float, amp: float, rails: tuple[float, float],
              rng: np.random.Generator) -> np.ndarray:
    """The corrupted segment ``x`` (a copy)."""
    length = x.size
    t = np.arange(length) / fs
    sign = rng.choice([-1.0, 1.0])
    if kind == "step":
        tau = length / (3 * fs)
        return x + sign * rng.uniform(1.5, 4.0) * amp * np.exp(-t / tau)
    if kind == "burst":
        band = (0.5, min(6.0, 0.45 * fs))
        noise = rng.standard_normal(length + int(2 * fs))  # an extra second each side hides the filter start-up
        noise = _sps.sosfilt(_sps.butter(2, band, btype="bandpass", fs=fs, output="sos"), noise)
        noise = noise[int(fs):int(fs) + length]
        return x + _tukey(length, 0.1) * noise * rng.uniform(1.0, 3.0) * amp / max(float(np.std(noise)), 1e-12)
    if kind == "drift":
        # Full-cosine taper: the wander starts and ends at zero but the edges stay sharp enough
        # (a quarter cycle of 0.3-0.8 Hz) to be located; slower drift would vanish in the 0.5 Hz high-pass.
        freqs = rng.uniform(0.3, 0.8, 2)
        wave = np.sin(2 * np.pi * freqs[:, None] * t + rng.uniform(0, 2 * np.pi, (2, 1))).sum(0)
        return x + _tukey(length, 0.3) * wave * rng.uniform(1.0, 2.0) * amp
    if kind == "saturation":
        # Pushed far past the rail, so every sample clips: the ADC reads its limit exactly.
        return np.clip(x + sign * 2 * (rails[1] - rails[0]), rails[0], rails[1])
    # dropout: flat at the level where contact was lost, plus a little electronic noise
    return np.full(length, x[0]) + rng.normal(0.0, 0.01 * amp, length)


def _tukey(length: int, alpha: float) -> np.ndarray:
    return _sps.windows.tukey(length, alpha) if length > 2 else np.ones(length)
