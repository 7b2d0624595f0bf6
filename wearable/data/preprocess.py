"""Resampling and filtering, and the preprocessing constants every model input goes through.

All band edges, orders and clip ranges live here, so that training, the streaming runtime and
the C firmware cannot drift apart. Model inputs are filtered causally (``sosfilt`` with the
second-order sections of :func:`filter_sos`, state started at the steady state of the first
sample): a streaming device can replay that exactly, chunk by chunk, whereas a zero-phase
``sosfiltfilt`` would need the future. Zero-phase stays available (``causal=False``) for
offline analysis.

Model input is never z-scored per window: ECG stays in mV and is clipped to
``±ECG_CLIP_MV``, which keeps a single fixed int8 scale valid for streaming. PPG has no
physical unit, so each record is scaled once by a robust standard deviation (MAD) and
clipped to ``±PPG_CLIP``.
"""

from __future__ import annotations


import numpy as np
from scipy import signal as _sps

from wearable.runtime import dsp as runtime_dsp

from ._errors import DataError

__all__ = [
    "FILTER_BANDS_HZ",
    "FILTER_ORDER",
    "FILTER_MAX_EDGE_FRACTION",
    "ECG_CLIP_MV",
    "PPG_CLIP",
    "filter_sos",
    "signal_filter",
    "ecg_clean",
    "ppg_clean",
    "ecg_scale",
    "ecg_model_input",
    "ppg_scale",
    "signal_resample",
    "labels_resample",
    "samples_resample",
    "resample_ratio",
]

# Band-pass edges in Hz, by name. "ecg" is the model input for rhythm, beat and wave tasks;
# "ecg_wide" keeps slow baseline wander visible for the artifact task (a 0.5 Hz high-pass
# would erase most of what that task has to find).
FILTER_BANDS_HZ: dict[str, tuple[float, float]] = {
    "ecg": (0.5, 40.0),
    "ecg_wide": (0.05, 40.0),
    "ppg": (0.5, 8.0),
}
# Butterworth order of the band-pass design: butter(2, band) gives 2 second-order sections
# (4 poles). sosfiltfilt runs it twice, so the offline magnitude response is its square.
FILTER_ORDER = 2
# The upper edge is lowered to this fraction of the sampling rate when the rate is too low
# for it (e.g. 40 Hz at 62.5 Hz becomes 28.1 Hz), so every rate gets a valid filter.
FILTER_MAX_EDGE_FRACTION = 0.45
ECG_CLIP_MV = 5.0
PPG_CLIP = 5.0


def filter_sos(kind: str, *, sampling_rate: float) -> np.ndarray:
    """Second-order sections of the band-pass ``kind`` (a key of ``FILTER_BANDS_HZ``).

    These are the coefficients that firmware replays causally with ``sosfilt``.

    >>> filter_sos("ecg", sampling_rate=100.0).shape
    (2, 6)
    """
    if kind not in FILTER_BANDS_HZ:
        raise DataError(f"unknown filter {kind!r}; accepted: {', '.join(FILTER_BANDS_HZ)}")
    _check_rate(sampling_rate)
    low, high = FILTER_BANDS_HZ[kind]
    high = min(high, FILTER_MAX_EDGE_FRACTION * sampling_rate)
    if high <= low:
        raise DataError(f"sampling rate {sampling_rate} Hz is too low for the {kind!r} band {FILTER_BANDS_HZ[kind]}")
    return _sps.butter(FILTER_ORDER, [low, high], btype="bandpass", fs=sampling_rate, output="sos")


def signal_filter(signal: np.ndarray, *, sampling_rate: float, kind: str, causal: bool = True) -> np.ndarray:
    """Band-pass ``signal`` (last axis) with ``filter_sos(kind)``: causal like firmware, or zero-phase.

    The causal filter starts in the steady state of the first sample (``sosfilt_zi``), which is
    what the streaming runtime does at the start of a stream.
    """
    sos = filter_sos(kind, sampling_rate=sampling_rate)
    signal = np.asarray(signal, dtype=np.float64)
    if causal:
        zi = _sps.sosfilt_zi(sos)  # (sections, 2), for a unit step
        first = np.take(signal, [0], axis=-1) if signal.shape[-1] else np.zeros(signal.shape[:-1] + (1,))
        zi = zi.reshape((len(sos),) + (1,) * (signal.ndim - 1) + (2,)) * first[None, ..., :1]
        return _sps.sosfilt(sos, signal, axis=-1, zi=zi)[0]
    # sosfiltfilt's default odd-extension pad (a few samples) fails on very short input.
    padlen = min(3 * (2 * len(sos) + 1), signal.shape[-1] - 1)
    return _sps.sosfiltfilt(sos, signal, axis=-1, padlen=max(padlen, 0))


def ecg_clean(ecg: np.ndarray, *, sampling_rate: float, method: str = "ecg", causal: bool = True) -> np.ndarray:
    """Band-pass an ECG in mV; ``method`` is ``"ecg"`` (0.5–40 Hz) or ``"ecg_wide"`` (0.05–40 Hz)."""
    if method not in ("ecg", "ecg_wide"):
        raise DataError(f"unknown ECG clean method {method!r}; accepted: ecg, ecg_wide")
    return signal_filter(ecg, sampling_rate=sampling_rate, kind=method, causal=causal)


def ppg_clean(ppg: np.ndarray, *, sampling_rate: float, causal: bool = True) -> np.ndarray:
    """Band-pass a PPG (0.5–8 Hz)."""
    return signal_filter(ppg, sampling_rate=sampling_rate, kind="ppg", causal=causal)


def ecg_scale(ecg: np.ndarray) -> np.ndarray:
    """Clip a cleaned ECG (mV) to ``±ECG_CLIP_MV``; the unit stays mV."""
    return np.clip(ecg, -ECG_CLIP_MV, ECG_CLIP_MV)


def ecg_model_input(ecg: np.ndarray, *, sampling_rate: float, target_rate: float) -> np.ndarray:
    """An ECG (mV) as an ECG model sees it: resampled to ``target_rate``, band-passed causally,
    clipped (the streaming runtime's front end, offline)."""
    x = signal_resample(np.asarray(ecg, dtype=np.float64), sampling_rate=sampling_rate, target_rate=target_rate)
    return ecg_scale(ecg_clean(x, sampling_rate=target_rate))


def ppg_scale(ppg: np.ndarray) -> np.ndarray:
    """Scale a cleaned PPG by its robust standard deviation (1.4826·MAD), then clip to ``±PPG_CLIP``.

    Call it once per record, not per window, so amplitude changes within a record survive.
    """
    ppg = np.asarray(ppg, dtype=np.float64)
    centred = ppg - np.median(ppg)
    spread = runtime_dsp.robust_std(ppg)
    if not np.isfinite(spread) or spread <= 0:
        spread = 1.0  # a flat record stays flat instead of becoming NaN
    return np.clip(centred / spread, -PPG_CLIP, PPG_CLIP)


def resample_ratio(sampling_rate: float, target_rate: float) -> tuple[int, int]:
    """``(up, down)`` with ``up/down ≈ target/source`` and ``down <= 1000``.

    Exact for the usual rates (100, 125, 250, 360, 500 Hz …); other rates are approximated.
    """
    _check_rate(sampling_rate)
    _check_rate(target_rate)
    return runtime_dsp.resample_ratio(sampling_rate, target_rate)  # the streaming resampler's own


def signal_resample(signal: np.ndarray, *, sampling_rate: float, target_rate: float, axis: int = -1) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``) from ``sampling_rate`` to ``target_rate``.

    Output length along ``axis`` is ``ceil(n * up / down)``.
    """
    up, down = resample_ratio(sampling_rate, target_rate)
    signal = np.asarray(signal, dtype=np.float64)
    if up == down:
        return signal.copy()
    return _sps.resample_poly(signal, up, down, axis=axis)


def labels_resample(labels: np.ndarray, *, sampling_rate: float, target_rate: float) -> np.ndarray:
    """Resample a per-sample label mask by nearest neighbour (labels must not be interpolated)."""
    labels = np.asarray(labels)
    up, down = resample_ratio(sampling_rate, target_rate)
    n_out = -(-labels.shape[-1] * up // down)
    source = np.minimum(np.rint(np.arange(n_out) * down / up).astype(np.int64), labels.shape[-1] - 1)
    return labels[..., source]


def samples_resample(samples: np.ndarray, *, sampling_rate: float, target_rate: float) -> np.ndarray:
    """Map sample indices (beats, pulses) to ``target_rate``, rounding to the nearest sample."""
    up, down = resample_ratio(sampling_rate, target_rate)
    return np.rint(np.asarray(samples, dtype=np.float64) * up / down).astype(np.int64)


def _check_rate(sampling_rate: float) -> None:
    try:
        ok = bool(np.isfinite(float(sampling_rate)) and float(sampling_rate) > 0)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DataError(f"sampling rate must be a positive number of Hz, got {sampling_rate!r}")
