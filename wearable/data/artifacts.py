"""Synthetic ECG artifacts with a per-sample mask: baseline wander, motion, muscle, electrode pop.

Each requested kind becomes one segment at a random position; segments never overlap, so
the mask is a single class per sample. Amplitudes are in mV and follow the ranges seen in
the MIT-BIH Noise Stress Test records (bw/em/ma), with electrode pops as a step that decays
exponentially, as when an electrode briefly loses contact.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import signal as _sps

from ._errors import DataError

__all__ = ["ARTIFACT_LABELS", "ARTIFACT_KINDS", "artifacts_add"]

ARTIFACT_LABELS = ("clean", "baseline_wander", "motion", "muscle", "electrode_pop")
ARTIFACT_KINDS = ARTIFACT_LABELS[1:]

# Segment duration ranges in seconds; an electrode pop lasts three decay constants.
_DURATION_S = {"baseline_wander": (2.0, 6.0), "motion": (0.5, 3.0), "muscle": (0.5, 3.0)}
_POP_TAU_S = (0.1, 0.4)


def artifacts_add(
    signal: np.ndarray,
    *,
    sampling_rate: float,
    kinds: Sequence[str] = ARTIFACT_KINDS,
    seed: int = 0,
    scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Add one segment of each artifact in ``kinds`` to an ECG in mV.

    Returns ``(noisy, mask)``: ``mask`` is int8, 0 where clean and ``ARTIFACT_LABELS.index(kind)``
    inside each segment. ``scale`` multiplies every artifact amplitude. Deterministic in ``seed``.

    >>> import numpy as np
    >>> noisy, mask = artifacts_add(np.zeros(1000), sampling_rate=100.0, kinds=("muscle",), seed=1)
    >>> sorted(set(mask.tolist()))
    [0, 3]
    """
    unknown = [k for k in kinds if k not in ARTIFACT_KINDS]
    if unknown:
        raise DataError(f"unknown artifact kind(s) {unknown}; accepted: {', '.join(ARTIFACT_KINDS)}")
    if not sampling_rate > 0:
        raise DataError(f"sampling rate must be a positive number of Hz, got {sampling_rate!r}")
    signal = np.asarray(signal, dtype=np.float64)
    n = signal.shape[-1]
    noisy = signal.copy()
    mask = np.zeros(n, dtype=np.int8)
    if not len(kinds) or n < 2:
        return noisy, mask
    rng = np.random.default_rng(seed)
    kinds = [kinds[i] for i in rng.permutation(len(kinds))]
    share = n / len(kinds)  # every segment must fit, so none may take more than its share
    lengths = [max(2, min(_length_draw(kind, sampling_rate, rng), int(0.9 * share))) for kind in kinds]
    # Random gaps that add up to the free space place the segments without overlap.
    gaps = np.floor(rng.dirichlet(np.ones(len(kinds) + 1)) * (n - sum(lengths))).astype(int)
    start = 0
    for kind, length, gap in zip(kinds, lengths, gaps):
        start += gap
        noisy[..., start : start + length] += scale * _artifact(kind, length, sampling_rate, rng)
        mask[start : start + length] = ARTIFACT_LABELS.index(kind)
        start += length
    return noisy, mask


def _length_draw(kind: str, sampling_rate: float, rng: np.random.Generator) -> int:
    if kind == "electrode_pop":
        return int(np.ceil(3 * rng.uniform(*_POP_TAU_S) * sampling_rate))
    return int(rng.uniform(*_DURATION_S[kind]) * sampling_rate)


def _artifact(kind: str, length: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(length) / fs
    if kind == "baseline_wander":
        freqs = rng.uniform(0.1, 0.5, 2)
        wave = np.sin(2 * np.pi * freqs[:, None] * t + rng.uniform(0, 2 * np.pi, (2, 1))).sum(0)
        return _tukey(length, 0.5) * wave * rng.uniform(0.3, 1.0) / 2
    if kind == "electrode_pop":
        # The whole segment spans 3 decay constants; the onset is a step, as in a real pop.
        tau = length / (3 * fs)
        return rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 3.0) * np.exp(-t / tau)
    nyquist_edge = 0.45 * fs
    if kind == "motion":
        band, rms, taper = (0.5, min(10.0, nyquist_edge)), rng.uniform(0.2, 0.7), 0.2
    else:  # muscle: broadband EMG, limited by what the sampling rate can carry
        band, rms, taper = (min(20.0, 0.3 * fs), nyquist_edge), rng.uniform(0.05, 0.2), 0.1
    noise = rng.standard_normal(length + int(2 * fs))  # extra second each side hides the filter start-up
    noise = _sps.sosfilt(_sps.butter(2, band, btype="bandpass", fs=fs, output="sos"), noise)[int(fs) : int(fs) + length]
    if kind == "muscle":
        noise *= 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * t)  # EMG comes in bursts
    return _tukey(length, taper) * noise * rms / max(np.std(noise), 1e-12)


def _tukey(length: int, alpha: float) -> np.ndarray:
    return _sps.windows.tukey(length, alpha) if length > 2 else np.ones(length)
