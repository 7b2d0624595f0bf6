"""Augmentation for single-lead wearable ECG windows (numpy): what differs between handheld recordings.

``ecg_windows_augment`` perturbs a batch of preprocessed windows ``(n, W)`` (band-passed, mV):

- polarity: half the windows inverted (a handheld lead is often held the other way round);
- amplitude: gain log-uniform in 0.5-2 (electrode contact, body size, lead angle);
- baseline: a 0.05-0.5 Hz sinusoid of up to 0.3 window std (breathing, movement);
- broadband noise: white noise up to 0.05 window std (electronics);
- real noise: with probability ``p_noise``, a random stretch of a MIT-BIH Noise Stress Test record
  (``em`` electrode motion, ``ma`` muscle, ``bw`` baseline wander; both channels), band-passed like
  the ECG, added at an SNR uniform in ``snr_db`` (power ratio over the window);
- time shift comes from where the window is cut out of its record (random crops), not from here.

``NoiseBank.from_nstdb(data_dir, sampling_rate)`` loads the noise; without NSTDB pass ``None`` and
only the synthetic perturbations apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .nstdb import NSTDB_NOISES, nstdb_read
from .preprocess import ECG_CLIP_MV, ecg_clean, signal_resample

__all__ = ["NoiseBank", "ecg_windows_augment"]


@dataclass(frozen=True, eq=False)
class NoiseBank:
    """Band-passed noise records at the model rate, one array per (noise, channel)."""

    records: tuple[np.ndarray, ...]
    names: tuple[str, ...]

    @classmethod
    def from_nstdb(cls, data_dir: str | Path | None, sampling_rate: float,
                   noises: tuple[str, ...] = NSTDB_NOISES) -> "NoiseBank":
        records, names = [], []
        for noise in noises:
            signal, fs = nstdb_read(data_dir, noise)
            signal = np.atleast_2d(np.asarray(signal, dtype=np.float64).T)  # (channels, n)
            for c, channel in enumerate(signal):
                x = signal_resample(channel, sampling_rate=fs, target_rate=sampling_rate)
                records.append(ecg_clean(x, sampling_rate=sampling_rate).astype(np.float32))
                names.append(f"{noise}{c}")
        return cls(tuple(records), tuple(names))


def ecg_windows_augment(x: np.ndarray, rng: np.random.Generator, *, sampling_rate: float,
                        noise: NoiseBank | None = None, p_noise: float = 0.3,
                        snr_db: tuple[float, float] = (0.0, 18.0)) -> np.ndarray:
    """A perturbed float32 copy of ``x`` ``(n, W)``, clipped to ``±ECG_CLIP_MV`` as the front end does."""
    x = np.asarray(x, dtype=np.float64)
    n, w = x.shape
    sign = np.where(rng.random((n, 1)) < 0.5, -1.0, 1.0)
    gain = np.exp(rng.uniform(np.log(0.5), np.log(2.0), (n, 1)))
    out = x * sign * gain
    std = out.std(axis=1, keepdims=True) + 1e-3
    t = np.arange(w) / sampling_rate
    freq, phase = rng.uniform(0.05, 0.5, (n, 1)), rng.uniform(0.0, 2 * np.pi, (n, 1))
    out += rng.uniform(0.0, 0.3, (n, 1)) * std * np.sin(2 * np.pi * freq * t + phase)
    out += rng.uniform(0.0, 0.05, (n, 1)) * std * rng.standard_normal((n, w))
    if noise is not None and noise.records:
        for i in np.flatnonzero(rng.random(n) < p_noise):
            src = noise.records[rng.integers(len(noise.records))]
            a = rng.integers(0, src.size - w)
            seg = src[a:a + w] - src[a:a + w].mean()
            snr = rng.uniform(*snr_db)
            out[i] += seg * np.sqrt((out[i].var() + 1e-9) / (seg.var() + 1e-9) / 10 ** (snr / 10))
    return np.clip(out, -ECG_CLIP_MV, ECG_CLIP_MV).astype(np.float32)
