"""MIT-BIH Noise Stress Test noise (bw, em, ma) added to a clean ECG at a chosen SNR.

SNR follows the definition of PhysioNet's ``nst`` program (WFDB Applications Guide, nst(1))
by default (``method="nst"``): the QRS peak-to-peak amplitude is measured from 50 ms before
to 50 ms after each given beat, the largest and smallest 5 % of the measurements are
dropped and the rest averaged; S is that amplitude squared over 8 (exact for a sine). The
noise is cut into 1 s chunks, the RMS about each chunk's mean is measured, the same 5 %
trimming is applied, and N is the squared mean RMS. Removing each chunk's mean is nst's way
of not over-rating very slow drift. Pass only normal beats to match nst exactly (it uses
normal QRS complexes). ``method="power"`` is the plain ratio of mean squares (ECG and noise
each mean-removed) for signals without beat positions.

The noise records are 360 Hz, gain 0 in the header (wfdb then uses 200 adu/mV); they are
resampled to the ECG's rate. Both nstdb channels are usable; ``seed`` picks the channel and
the starting point.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ._errors import DataError
from ._paths import database_dir
from .artifacts import ARTIFACT_LABELS
from .preprocess import signal_resample

__all__ = ["NSTDB_NOISES", "NSTDB_MASK_IDS", "nstdb_read", "nstdb_noise_add", "ecg_snr"]

NSTDB_NOISES = ("bw", "em", "ma")
# Mask ids shared with the synthetic artifact mask, so one model can learn from both.
NSTDB_MASK_IDS = {"bw": ARTIFACT_LABELS.index("baseline_wander"), "em": ARTIFACT_LABELS.index("motion"),
                  "ma": ARTIFACT_LABELS.index("muscle")}
_QRS_HALF_WIDTH_S = 0.05
_TRIM = 0.05


def nstdb_read(data_dir: str | Path | None, noise: str) -> tuple[np.ndarray, float]:
    """Both channels of noise record ``noise`` as ``(samples (n, 2) in mV, sampling_rate)``."""
    if noise not in NSTDB_NOISES:
        raise DataError(f"unknown nstdb noise {noise!r}; accepted: {', '.join(NSTDB_NOISES)}")
    folder = database_dir(data_dir, "nstdb", pattern=f"{noise}.hea")
    signal, fs = _noise_cached(str(folder.resolve()), noise)
    return signal.copy(), fs


@lru_cache(maxsize=len(NSTDB_NOISES))
def _noise_cached(folder: str, noise: str) -> tuple[np.ndarray, float]:
    import wfdb  # deferred: heavy import the runtime never needs

    rec = wfdb.rdrecord(str(Path(folder) / noise))
    return rec.p_signal.astype(np.float64), float(rec.fs)


def nstdb_noise_add(
    ecg: np.ndarray,
    *,
    sampling_rate: float,
    noise: str,
    snr_db: float,
    data_dir: str | Path | None = None,
    beat_samples: np.ndarray | None = None,
    span: tuple[int, int] | None = None,
    method: str = "nst",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Add nstdb ``noise`` to ``ecg`` (mV) over ``span`` (default: all) at ``snr_db``.

    ``beat_samples`` (QRS positions in ``ecg``) are needed for ``method="nst"``. Returns
    ``(noisy, mask)``; ``mask`` is int8, ``NSTDB_MASK_IDS[noise]`` inside the span and 0 elsewhere.
    """
    if method not in ("nst", "power"):
        raise DataError(f"unknown SNR method {method!r}; accepted: nst, power")
    ecg = np.asarray(ecg, dtype=np.float64)
    n = ecg.size
    start, stop = (0, n) if span is None else (max(int(span[0]), 0), min(int(span[1]), n))
    if stop <= start:
        raise DataError(f"empty noise span {span} for a signal of {n} samples")
    record, record_fs = nstdb_read(data_dir, noise)
    rng = np.random.default_rng(seed)
    channel = record[:, int(rng.integers(record.shape[1]))]
    needed = int(np.ceil((stop - start) * record_fs / sampling_rate)) + 64  # + filter edge
    if needed > channel.size:
        raise DataError(f"noise span of {stop - start} samples is longer than the {noise} record")
    first = int(rng.integers(channel.size - needed + 1))
    piece = signal_resample(channel[first : first + needed], sampling_rate=record_fs, target_rate=sampling_rate)
    piece = piece[: stop - start]
    piece = piece - piece.mean()  # nst also cancels the step a gain change would cause

    signal_power = _signal_power(ecg, beat_samples, sampling_rate, method, span=(start, stop))
    noise_power = _noise_power(piece, sampling_rate, method)
    gain = np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10))) if noise_power > 0 else 0.0
    noisy = ecg.copy()
    noisy[start:stop] += gain * piece
    mask = np.zeros(n, dtype=np.int8)
    mask[start:stop] = NSTDB_MASK_IDS[noise]
    return noisy, mask


def ecg_snr(clean: np.ndarray, noise: np.ndarray, *, sampling_rate: float, beat_samples: np.ndarray | None = None,
            method: str = "nst") -> float:
    """SNR in dB of ``noise`` against ``clean`` by the definition ``nstdb_noise_add`` uses."""
    clean = np.asarray(clean, dtype=np.float64)
    return float(10 * np.log10(_signal_power(clean, beat_samples, sampling_rate, method, span=(0, clean.size))
                               / _noise_power(np.asarray(noise, dtype=np.float64), sampling_rate, method)))


def _signal_power(ecg: np.ndarray, beat_samples, fs: float, method: str, *, span: tuple[int, int]) -> float:
    if method == "power":
        part = ecg[span[0] : span[1]]
        return float(np.mean((part - part.mean()) ** 2))
    if beat_samples is None or len(beat_samples) == 0:
        raise DataError("method='nst' measures QRS amplitude and needs beat_samples; use method='power' without beats")
    half = max(int(round(_QRS_HALF_WIDTH_S * fs)), 1)
    amplitudes = [np.ptp(ecg[max(b - half, 0) : b + half + 1]) for b in np.asarray(beat_samples) if 0 <= b < ecg.size]
    return _trimmed_mean(np.asarray(amplitudes)) ** 2 / 8


def _noise_power(noise: np.ndarray, fs: float, method: str) -> float:
    if method == "power":
        return float(np.mean((noise - noise.mean()) ** 2))
    chunk = max(int(round(fs)), 1)
    chunks = [noise[i : i + chunk] for i in range(0, noise.size - chunk + 1, chunk)] or [noise]
    return _trimmed_mean(np.array([np.sqrt(np.mean((c - c.mean()) ** 2)) for c in chunks])) ** 2


def _trimmed_mean(values: np.ndarray) -> float:
    values = np.sort(values)
    cut = int(len(values) * _TRIM)
    kept = values[cut : len(values) - cut] if len(values) > 2 * cut else values
    return float(np.mean(kept))
