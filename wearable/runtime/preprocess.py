"""Streaming model-input preprocessing: sensor samples in, model-rate float samples out.

Per channel, in the order ``wearable.data`` applies offline: optional polyphase resampling
(sensor rate -> model rate), the manifest's causal band-pass (``data.preprocessing.channels
[*].sos``, state started at the first sample's steady state), then the clip of the channel's
kind (ECG ±``ecg_clip_mv`` mV; PPG divided by a fixed ``ppg_scale`` then clipped, since the
offline per-record MAD scale cannot be known before the record ends). The output does not
depend on chunking, and a whole record streamed then ``flush``-ed equals the offline
preprocessing of that record.
"""

from __future__ import annotations

import numpy as np

from .dsp import Resampler, SosFilter

__all__ = ["Preprocessor", "RateMismatchError"]


class RateMismatchError(ValueError):
    """The sensor rate differs from the model's and resampling was not asked for."""


class Preprocessor:
    """Stateful per-channel resample -> band-pass -> clip; ``__call__(x (n, C)) -> (m, C)`` float64."""

    def __init__(self, channels: list[dict], *, model_rate: float, sampling_rate: float | None = None,
                 resample: bool = False, ecg_clip: float = 5.0, ppg_clip: float = 5.0, ppg_scale: float = 1.0,
                 filter_backend: str | None = None) -> None:
        if not channels:
            raise ValueError("the manifest has no data.preprocessing.channels: cannot preprocess")
        self.model_rate = float(model_rate)
        self.sampling_rate = float(sampling_rate if sampling_rate is not None else model_rate)
        if not (np.isfinite(self.sampling_rate) and self.sampling_rate > 0):
            raise ValueError(f"sampling rate must be a positive number of Hz, got {sampling_rate!r}")
        differ = abs(self.sampling_rate - self.model_rate) > 1e-9 * self.model_rate
        if differ and not resample:
            raise RateMismatchError(
                f"sensor rate {self.sampling_rate:g} Hz differs from the model's {self.model_rate:g} Hz; "
                "enable resampling (resample=True; the stream CLI resamples unless --no-resample) or feed samples at the model rate")
        self.resamplers = [Resampler(self.sampling_rate, self.model_rate) for _ in channels] if differ else None
        self.filters = [SosFilter(ch["sos"], backend=filter_backend) for ch in channels]
        self.clips = []
        for ch in channels:
            kind = ch.get("kind", "ecg")
            if kind.startswith("ecg"):
                self.clips.append((1.0, ecg_clip))
            elif kind == "ppg":
                self.clips.append((1.0 / ppg_scale, ppg_clip))
            else:
                raise ValueError(f"unknown channel kind {kind!r} in the manifest; accepted: ecg*, ppg")
        self.n_channels = len(channels)

    @property
    def ratio(self) -> tuple[int, int]:
        """``(up, down)`` of the resampler, ``(1, 1)`` without one."""
        return (self.resamplers[0].up, self.resamplers[0].down) if self.resamplers else (1, 1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(len(x), self.n_channels)
        if self.n_channels == 1 and not self.resamplers:  # the hot path: one channel at the model rate
            return self._finish(0, x[:, 0])[:, None]
        cols = []
        for c in range(self.n_channels):
            v = x[:, c]
            if self.resamplers:
                v = self.resamplers[c](v)
            cols.append(self._finish(c, v))
        return np.stack(cols, axis=1) if cols[0].size else np.zeros((0, self.n_channels))

    def flush(self) -> np.ndarray:
        """The resampler's tail (zero-padded end, as offline); empty without resampling."""
        if not self.resamplers:
            return np.zeros((0, self.n_channels))
        cols = [self._finish(c, r.flush()) for c, r in enumerate(self.resamplers)]
        return np.stack(cols, axis=1) if cols[0].size else np.zeros((0, self.n_channels))

    def _finish(self, c: int, v: np.ndarray) -> np.ndarray:
        scale, clip = self.clips[c]
        v = self.filters[c](v)  # a new array: scaled and clipped in place
        if scale != 1.0:
            v *= scale
        # maximum/minimum == np.clip for finite input, without np.clip's Python-level dispatch
        np.maximum(v, -clip, out=v)
        return np.minimum(v, clip, out=v)
