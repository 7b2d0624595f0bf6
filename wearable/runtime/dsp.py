"""Streaming preprocessing with state carried across chunks: SOS band-pass and polyphase resampling.

Both classes give the same output whatever the chunking of the input, and reproduce the
offline preprocessing of ``wearable.data.preprocess``: ``SosFilter`` equals
``signal_filter(..., causal=True)`` (``sosfilt`` started at ``sosfilt_zi(sos) * x[0]``),
``Resampler`` equals ``scipy.signal.resample_poly`` (delayed by a fixed number of samples,
the rest delivered by ``flush``). scipy is used when installed; otherwise an exact numpy /
pure-Python fallback runs (a Raspberry Pi env may have no scipy).
"""

from __future__ import annotations

import importlib.util
from fractions import Fraction

import numpy as np

__all__ = ["SosFilter", "Resampler", "sosfilt_zi", "resample_ratio", "robust_std", "HAVE_SCIPY"]

HAVE_SCIPY = importlib.util.find_spec("scipy") is not None
_RESAMPLE_BLOCK = 1 << 16  # polyphase products computed at once (rows x taps): about 0.5 MiB an array


def sosfilt_zi(sos: np.ndarray) -> np.ndarray:
    """Steady-state initial conditions of each section for a unit step (``scipy.signal.sosfilt_zi``)."""
    sos = np.asarray(sos, dtype=np.float64)
    zi = np.empty((sos.shape[0], 2))
    scale = 1.0
    for s, (b0, b1, b2, a0, a1, a2) in enumerate(sos):
        b0, b1, b2, a1, a2 = b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0
        # lfilter_zi of one biquad in transposed direct form II: solve (I - A^T) zi = B.
        m = np.array([[1.0 + a1, -1.0], [a2, 1.0]])
        rhs = np.array([b1 - a1 * b0, b2 - a2 * b0])
        zi[s] = np.linalg.solve(m, rhs) * scale
        scale *= (b0 + b1 + b2) / (1.0 + a1 + a2)  # DC gain seen by the next section
    return zi


class SosFilter:
    """Causal second-order-sections filter over a 1-D stream.

    The state is set from the first sample ever pushed (steady state for that value), exactly
    as the training data was filtered. ``backend`` is ``"scipy"``, ``"numpy"`` or None (scipy
    when installed). The numpy backend is a plain per-sample loop in the same operation order
    as scipy's, so both agree to rounding and each is independent of chunking.
    """

    def __init__(self, sos, *, backend: str | None = None) -> None:
        sos = np.array(sos, dtype=np.float64)
        if sos.ndim != 2 or sos.shape[1] != 6 or sos.shape[0] < 1:
            raise ValueError(f"sos must have shape (sections, 6), got {sos.shape}")
        if not np.all(np.isfinite(sos)) or np.any(sos[:, 3] == 0):
            raise ValueError("sos has non-finite coefficients or a zero a0")
        sos = sos / sos[:, 3:4]  # normalised so a0 == 1, as scipy does internally
        backend = backend or ("scipy" if HAVE_SCIPY else "numpy")
        if backend not in ("scipy", "numpy"):
            raise ValueError(f"unknown filter backend {backend!r}; accepted: scipy, numpy")
        if backend == "scipy" and not HAVE_SCIPY:
            raise ImportError("filter backend 'scipy' needs scipy installed")
        self._kernel = None
        if backend == "scipy":
            from scipy.signal import sosfilt  # imported here, not per chunk (the first import takes ~1 s)

            self._sosfilt = sosfilt
            try:  # the C loop that sosfilt wraps: its argument checks cost 4x the filtering of a 1,000-sample chunk
                from scipy.signal._sosfilt import _sosfilt as kernel
            except ImportError:
                kernel = None
            self._kernel = kernel
        self.sos = sos
        self.backend = backend
        self._zi_unit = sosfilt_zi(sos)
        self._zi: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the state; the next sample starts a new stream."""
        self._zi = None

    def __call__(self, x) -> np.ndarray:
        """Filter the next chunk (1-D); returns float64 of the same length."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"filter takes a 1-D chunk, got shape {x.shape}")
        if x.size == 0:
            return x.copy()
        if self._zi is None:
            self._zi = self._zi_unit * x[0]
            self._zi_view = self._zi.reshape(1, *self._zi.shape)  # the kernel updates the state through it
        if self._kernel is not None:
            y = np.array(x, dtype=np.float64, order="C").reshape(1, -1)  # filtered in place
            self._kernel(self.sos, y, self._zi_view)
            return y[0]
        if self.backend == "scipy":
            y, self._zi = self._sosfilt(self.sos, x, zi=self._zi)
            return y
        return self._numpy(x)

    def _numpy(self, x: np.ndarray) -> np.ndarray:
        coeffs = [tuple(float(c) for c in row) for row in self.sos]
        z = [[float(a), float(b)] for a, b in self._zi]
        out = np.empty_like(x)
        for i, xi in enumerate(x.tolist()):
            cur = xi
            for (b0, b1, b2, _a0, a1, a2), zs in zip(coeffs, z):
                new = b0 * cur + zs[0]
                zs[0] = b1 * cur - a1 * new + zs[1]
                zs[1] = b2 * cur - a2 * new
                cur = new
            out[i] = cur
        self._zi = np.array(z)
        return out


def robust_std(x: np.ndarray) -> float:
    """1.4826 · MAD: the standard deviation of Gaussian data, barely moved by pulses lost to
    motion or sensor drop-outs (the PPG scale of training windows and of the stream)."""
    x = np.asarray(x, dtype=np.float64)
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def resample_ratio(sampling_rate: float, target_rate: float) -> tuple[int, int]:
    """``(up, down)`` with ``up/down ≈ target/source``, ``down <= 1000`` (as ``wearable.data``)."""
    for r in (sampling_rate, target_rate):
        if not (isinstance(r, (int, float, np.floating, np.integer)) and np.isfinite(r) and r > 0):
            raise ValueError(f"sampling rate must be a positive number of Hz, got {r!r}")
    ratio = Fraction(float(target_rate) / float(sampling_rate)).limit_denominator(1000)
    return ratio.numerator, ratio.denominator


def _kaiser_lowpass(numtaps: int, cutoff: float, beta: float = 5.0) -> np.ndarray:
    """``scipy.signal.firwin(numtaps, cutoff, window=("kaiser", beta))`` in numpy."""
    m = np.arange(numtaps) - (numtaps - 1) / 2.0
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(numtaps, beta)
    return h / h.sum()


class Resampler:
    """Streaming ``resample_poly(x, up, down)`` (Kaiser β=5 FIR, scipy's default design).

    Output sample ``m`` of the whole stream is the offline ``resample_poly`` output ``m``; it
    becomes available once the input reaches about ``delay_in`` samples past it (the FIR's
    look-ahead), and ``flush()`` returns the tail that offline resampling computes from the
    zero padding after the end. Timestamps never shift: output ``m`` is at time ``m / rate_out``.
    """

    def __init__(self, sampling_rate: float, target_rate: float) -> None:
        self.up, self.down = resample_ratio(sampling_rate, target_rate)
        up, down = self.up, self.down
        max_rate = max(up, down)
        half_len = 10 * max_rate
        h = _kaiser_lowpass(2 * half_len + 1, 1.0 / max_rate) * up
        # Same alignment as scipy.signal.resample_poly: output m is upfirdn output m + pre_remove.
        pre_pad = down - half_len % down
        self._h = np.concatenate([np.zeros(pre_pad), h])
        self._pre_remove = (half_len + pre_pad) // down
        taps = -(-len(self._h) // up)
        padded = np.concatenate([self._h, np.zeros(taps * up - len(self._h))])
        self._phases = np.ascontiguousarray(padded.reshape(taps, up).T)  # [p, t] = h[p + t*up]
        self._tap_offsets = np.arange(taps)[None, :]
        self._n_in = 0
        self._n_out = 0
        self._hist = np.zeros(0)  # input samples [hist_start, n_in)
        self._hist_start = 0
        self.delay_in = int(np.ceil((half_len + pre_pad) / up))  # input samples of look-ahead (about)

    def _outputs(self, j: np.ndarray) -> np.ndarray:
        """upfirdn outputs j (indices into the padded-filter convolution) from the history."""
        # y[j] = sum_t h[p + t*up] * x[i_hi - t] with i_hi = j*down // up and phase p = j*down % up:
        # one polyphase row per output, summed row by row (the same order whatever the number of
        # rows), so chunking cannot change a result.
        jd = j * self.down
        i = (jd // self.up)[:, None] - self._tap_offsets
        pos = i - self._hist_start + 1  # hist is read with one zero in front: x[-1] (and below) is 0
        ok = (i >= 0) & (i < self._n_in)
        hist = np.concatenate([[0.0], self._hist, [0.0]])
        x = hist[np.where(ok, pos, 0)]
        return (self._phases[jd % self.up] * x).sum(axis=1)

    def __call__(self, x) -> np.ndarray:
        """Resample the next chunk; returns every output that the input so far determines."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"resampler takes a 1-D chunk, got shape {x.shape}")
        self._hist = np.concatenate([self._hist, x])
        self._n_in += x.shape[0]
        # upfirdn output j needs inputs up to j*down/up: final once j*down < n_in*up.
        j_end = (self._n_in * self.up + self.down - 1) // self.down
        m_end = max(self._n_out, j_end - self._pre_remove)
        y = self._emit(m_end)
        return y

    def _emit(self, m_end: int) -> np.ndarray:
        m = np.arange(self._n_out, m_end) + self._pre_remove
        # _outputs holds a few (outputs x taps) arrays: a long chunk goes through in row blocks
        # (results unchanged, each row is summed alone) so memory does not grow with the chunk
        rows = max(1, _RESAMPLE_BLOCK // self._phases.shape[1])
        y = (np.zeros(0) if not m.size else self._outputs(m) if m.size <= rows
             else np.concatenate([self._outputs(m[k:k + rows]) for k in range(0, m.size, rows)]))
        self._n_out = m_end
        # Keep only the inputs later outputs can still reach.
        i_lo = ((m_end + self._pre_remove) * self.down - len(self._h)) // self.up
        drop = max(0, min(i_lo - self._hist_start, len(self._hist)))
        if drop:
            self._hist = self._hist[drop:]
            self._hist_start += drop
        return y

    def flush(self) -> np.ndarray:
        """The remaining outputs, computed with zeros after the end (``resample_poly``'s padding)."""
        total = -(-(self._n_in * self.up) // self.down)
        return self._emit(max(self._n_out, total))
