"""The streaming runtime: sensor samples in (chunks of any size), timestamped events out.

>>> rt = StreamRuntime(load_artifact("artifacts/dscnn_tiny"), sampling_rate=360, resample=True)  # doctest: +SKIP
>>> events = rt.push(chunk) + rt.push(next_chunk) + rt.flush()                                   # doctest: +SKIP

Pipeline: input checks (per push) -> ``Preprocessor`` (resample, band-pass, clip; run once a
window is due, on everything pushed since, so small chunks stay cheap) -> int8 quantization
to the model's input scale -> one ``RingBuffer`` per channel (capacity = window) -> a window
runs through the interpreter every ``hop_samples`` model samples (the first when ``window``
samples have arrived) -> events.

Time: every timestamp is stream time in seconds derived from sample counts (model sample
``m`` is at ``m / model_rate``; sensor sample ``i`` at ``i / sampling_rate``), never the wall
clock. Events are plain dicts (JSON-ready), by ``type``:

``class``     one per window: ``start``, ``end`` (the window), ``label`` (argmax of this
              window), ``p`` (its probability), ``smoothed`` (mean of the last ``smoothing``
              probability vectors: its argmax, or ``"inconclusive"`` when its probability is
              below ``threshold`` or the window overlaps an input artifact).
``record``    one at ``flush`` for a classification model: the decision of ``runtime.record`` over
              the whole stream (``start`` 0, ``end``, ``label`` or ``"inconclusive"`` with a
              ``reason``, ``p``, ``windows``, ``mean`` and ``burden`` per label: for "af", the AF
              burden). At flush, samples after the last window are classified by one more
              window that ends at the last sample (not for a model with a per-sample mask); a
              stream shorter than one window gives an inconclusive record, never silence.
``rhythm``    an episode ``start``, ``end``, ``label`` of consecutive equal ``smoothed``
              decisions; each decision covers the hop that ended its window (the first one
              its whole window), so episodes tile stream time. Emitted when it ends or on flush.
``artifact``  ``kind``, ``start``, ``end``: input problems (``gap`` from ``gap(n)``,
              ``nonfinite`` NaN/inf samples, ``out_of_range`` finite samples beyond the
              channel kind's ``PHYSICAL_RANGE`` or the ``rails``, ``saturation`` at a rail;
              ``flat``: windows whose raw input is a flat line, consecutive ones merged) and,
              for a segmentation model with a ``clean`` label, runs of the other labels; so
              too for a second, per-sample output that the manifest names (``data.mask_labels``
              with a ``clean`` label: the PPG dual-stream model's motion-artifact mask), merged
              across windows like a segmentation output; a model's run shorter than
              ``ARTIFACT_MIN_S`` is not reported. Those model artifacts do not gate
              the window's class (the model was trained to classify through them).
``beat``      ``t``, ``label`` (segmentation model with a ``qrs`` label: centre of each run of
              at least ``BEAT_MIN_WIDTH_S``, except one within ``BEAT_REFRACTORY_S`` of the last beat).
``hr``        ``t``, ``bpm``: 60 / median RR of the beats in the last ``hr_interval_s``; for a
              regression model whose label is ``hr_bpm``, its ``smoothed`` estimate at the
              window's end (clean windows only).
``estimate``  one per window of a regression model (output ``(1, 1)``): ``start``, ``end``,
              ``label``, ``value`` (this window), ``smoothed`` (mean of the last ``smoothing``
              clean windows' values, or ``"inconclusive"`` when this window overlaps an input
              artifact).

Bad input: NaN/inf samples, and finite ones outside ``[-PHYSICAL_RANGE, PHYSICAL_RANGE]`` of
their channel's kind (ECG: 20 mV; between the ``rails`` when given), are replaced by the last
good value of their channel (0 before any) so filters stay finite, and reported as
``nonfinite`` / ``out_of_range`` artifacts; ``gap(n)`` inserts ``n`` held samples for a sensor
dropout, so later timestamps do not shift; windows that overlap any input artifact are
classified ``inconclusive``. So is a window whose raw sensor samples move no more than
``FLAT_PTP`` peak to peak on a channel (ECG: 1 uV; an electrode off), reported as a ``flat``
artifact over the run of such windows. A zero-length chunk is a no-op; a chunk or gap of any
size is processed in blocks of ``BLOCK_SAMPLES``, so memory beyond the events returned does not
grow with it.
A wrong shape or dtype raises ``ValueError``; a sensor rate that differs from the model's
without ``resample=True`` raises ``RateMismatchError``.

Segmentation (output ``(1, K, W)``, or a ``mask_labels`` second output): the probabilities of
overlapping windows are averaged per sample; after window ``e`` (covering ``[e-W, e)``) the samples ``[e-W, e-W+hop)`` are final,
since no later window covers them. The latency is fixed by the schedule alone: sample ``t``
is final when the window ending at ``e = W + hop * ceil((t + 1 - hop) / hop)`` has run, i.e.
between ``W - hop + 1`` and ``W`` model samples after it arrived (``latency_samples`` = W, the
bound); each sample is the mean over all ``ceil(W / hop)`` windows that cover it (fewer at the
stream's start and end). Beats and artifact runs are emitted in stream order.

Event order does not depend on chunking: within a ``push`` events are released in the order
that sample-by-sample pushing would give (keyed by the input sample count that decided them).
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from typing import Any, Callable

import numpy as np

from .artifact import Artifact
from .interpreter import dequantize_with, load_interpreter, quant_params, quantize_with
from .preprocess import Preprocessor
from .record import INCONCLUSIVE, RecordVote
from .ringbuffer import RingBuffer

__all__ = ["StreamRuntime", "INCONCLUSIVE", "ARTIFACT_INPUT_KINDS", "ARTIFACT_MIN_S", "BEAT_REFRACTORY_S",
           "BEAT_MIN_WIDTH_S", "BLOCK_SAMPLES", "FLAT_PTP", "PHYSICAL_RANGE"]

BEAT_REFRACTORY_S = 0.2  # no second beat within this of the last one (physiological refractory period)
BEAT_MIN_WIDTH_S = 0.03  # a QRS run shorter than this is a noise blip, not a beat (wearable.continual.qrs too)
# A model's artifact run shorter than this is not reported: the PPG mask flickers for a sample or
# two at edges and in clean signal (half its runs on simulated records are 20 ms; motion lasts longer).
ARTIFACT_MIN_S = 0.1
ARTIFACT_INPUT_KINDS = ("gap", "nonfinite", "saturation", "out_of_range")
# A finite sample beyond this magnitude is no reading of its channel's kind and is held like a
# NaN (one 1e308 sample would otherwise ring through the band-pass for minutes): a body-surface
# ECG stays within a few mV and wearable front ends saturate well below 20 mV; no PPG sensor's
# ADC counts past 2**32. ``rails`` replace these bounds (for other units, say).
PHYSICAL_RANGE = {"ecg": 20.0, "ppg": 2.0 ** 32}
# A window whose raw input (sensor samples, held values included) moves no more than this peak to
# peak on some channel is a flat line (electrode off, sensor stuck), not a signal to classify:
# an ECG within 1 uV (below any front end's noise floor), a PPG that does not change at all.
FLAT_PTP = {"ecg": 1e-3, "ppg": 0.0}
# Sensor samples of a push or gap processed at once: memory stays bounded (a few MiB) for a chunk
# or gap of any length, and events do not depend on it (they do not depend on chunking).
BLOCK_SAMPLES = 1 << 16
_PHASE_INPUT, _PHASE_MODEL = 0, 1


def _r(t: float) -> float:
    return round(float(t), 6)


class StreamRuntime:
    """Run an exported artifact over a stream; see the module docstring for events and latency."""

    def __init__(self, artifact: Artifact, *, sampling_rate: float | None = None, resample: bool = False,
                 smoothing: int = 3, threshold: float = 0.5, rails: tuple[float, float] | None = None,
                 policy: str = "overwrite_oldest", backend: str | None = None, interpreter: Any = None,
                 filter_backend: str | None = None, hr_interval_s: float = 10.0, ppg_scale: float = 1.0,
                 on_samples: Callable[[int, np.ndarray], None] | None = None) -> None:
        if smoothing < 1:
            raise ValueError(f"smoothing must be >= 1, got {smoothing}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if rails is not None and not (np.isfinite(rails).all() and rails[0] < rails[1]):
            raise ValueError(f"rails must be finite (low, high) with low < high, got {rails}")
        if "stream" in artifact.manifest:  # a step model with state tensors, not a window model
            raise ValueError(f"{artifact.path} is a stateful streaming export: run it with "
                             "wearable.runtime.StatefulStream")
        self.artifact = artifact
        self.model_rate = artifact.sampling_rate
        self.window, self.hop = artifact.window, artifact.hop
        if self.hop < 1 or self.hop > self.window:
            raise ValueError(f"hop_samples {self.hop} must be in [1, window {self.window}]")
        pre = artifact.preprocessing
        self.pre = Preprocessor(artifact.channels, model_rate=self.model_rate, sampling_rate=sampling_rate,
                                resample=resample, ecg_clip=float(pre.get("ecg_clip_mv", 5.0)),
                                ppg_clip=float(pre.get("ppg_clip", 5.0)), ppg_scale=ppg_scale,
                                filter_backend=filter_backend)
        self.sampling_rate = self.pre.sampling_rate
        self.interp = interpreter if interpreter is not None else load_interpreter(
            artifact.model, backend=backend, default_delegates=True)
        self._in = self.interp.get_input_details()[0]
        outputs = self.interp.get_output_details()
        self._out = outputs[0]
        shape = tuple(int(s) for s in self._in["shape"])
        self.n_channels = self.pre.n_channels
        if shape != (1, self.n_channels, self.window):
            raise ValueError(f"model input shape {shape} does not match the manifest's "
                             f"(1, {self.n_channels}, {self.window})")
        self._in_dtype = np.dtype(self._in["dtype"])
        self._in_scale, self._in_zero = quant_params(self._in)
        self._out_scale, self._out_zero = quant_params(self._out)
        out_shape = tuple(int(s) for s in self._out["shape"])
        self.labels = artifact.labels
        if out_shape == (1, 1):
            self.mode = "regression"  # one output value: softmax over it would always say 1.0
        elif len(out_shape) == 2:
            self.mode = "classification"
        elif len(out_shape) == 3 and out_shape[1:] == (len(self.labels), self.window):
            self.mode = "segmentation"
        else:
            raise ValueError(f"unsupported model output shape {out_shape} (want (1, K) or (1, K, window))")
        # A second, per-sample output named by the manifest's mask_labels (the PPG dual-stream
        # model's motion-artifact mask) is merged like a segmentation model's output.
        self.mask_labels = list(artifact.mask_labels) if self.mode != "segmentation" and len(outputs) > 1 else []
        self._mask = outputs[1] if self.mask_labels else None
        if self._mask is not None:
            mask_shape = tuple(int(s) for s in self._mask["shape"])
            if mask_shape != (1, len(self.mask_labels), self.window):
                raise ValueError(f"mask output shape {mask_shape} does not match the manifest's "
                                 f"mask_labels (1, {len(self.mask_labels)}, {self.window})")
            self._mask_scale, self._mask_zero = quant_params(self._mask)
        self.seg_labels = self.labels if self.mode == "segmentation" else self.mask_labels
        self._no_overlap = self.hop == self.window  # segmentation: every sample is final after one window
        self._seg_artifacts = "clean" in self.seg_labels  # runs of the other labels are artifacts
        self._beat_min = max(1, round(BEAT_MIN_WIDTH_S * self.model_rate))  # samples
        self._artifact_min = round(ARTIFACT_MIN_S * self.model_rate)
        self.rings = [RingBuffer(self.window, dtype=self._in_dtype, policy=policy) for _ in range(self.n_channels)]
        self.smoothing, self.threshold, self.rails = smoothing, threshold, rails
        self.hr_interval_s = hr_interval_s
        self.on_samples = on_samples
        kinds = ["ecg" if k.startswith("ecg") else k for k in artifact.channel_kinds]  # the preprocessor checked them
        bound = np.array([PHYSICAL_RANGE[k] for k in kinds])
        self._lo, self._hi = (-bound, bound) if rails is None else (np.full(len(kinds), float(rails[0])),
                                                                    np.full(len(kinds), float(rails[1])))
        self._flat_ptp = np.array([FLAT_PTP[k] for k in kinds])
        # stream counters
        self.n_in = 0          # sensor samples consumed (gaps included)
        self.n_model = 0       # model-rate samples produced
        self.windows = 0
        self._next_end = self.window
        self._hold = np.zeros(self.n_channels)
        self._runs: dict[str, int | None] = {k: None for k in ARTIFACT_INPUT_KINDS}  # open run start (sensor idx)
        self._flags: deque = deque()  # (start_s, end_s or None) of input artifacts, for window checks
        self._recent: deque = deque(maxlen=smoothing)  # last clean outputs: probability vectors or values
        self._episode: tuple[str, float] | None = None
        self._last_end = 0.0
        # the record decision over the whole stream (classification models; see runtime.record)
        self._vote = RecordVote(self.labels) if self.mode == "classification" else None
        self._seg_acc = np.zeros((len(self.seg_labels), self.window)) if self.seg_labels else None
        self._seg_cnt = np.zeros(self.window)
        self._seg_run: tuple[str, int] | None = None
        self._beats: deque = deque()
        self._pending: list = []
        self._raw: list[np.ndarray] = []  # sensor chunks not yet preprocessed (less than a hop)
        # sensor samples of the windows still to run, for the flat-line check: _recent_raw[:_n_raw]
        # holds sensor samples _raw0, _raw0 + 1, ... (appended in place, moved to the front when full)
        self._recent_raw = np.zeros((0, self.n_channels))
        self._raw0 = self._n_raw = 0
        self._flat: list[int] | None = None  # open flat run: [start, end] in model samples
        self._seq = 0
        self._flushed = False
        self.interpreter_s = 0.0  # time inside set_tensor/invoke/get_tensor (for the benchmark)
        self.dsp_s = 0.0  # time in the numerical kernels of preprocessing: resample, filter, clip, quantize

    # ------------------------------------------------------------------ public API
    @property
    def latency_samples(self) -> int:
        """Worst-case model samples between a sample's arrival and its final segmentation label."""
        return self.window

    def push(self, samples) -> list[dict]:
        """Feed the next chunk, shape ``(n,)`` for one channel or ``(n, C)``; return new events."""
        x = self._check(samples)
        for i in range(0, len(x), BLOCK_SAMPLES):  # events do not depend on chunking: blocks bound memory
            self._push_block(x[i:i + BLOCK_SAMPLES].astype(np.float64, copy=False))
        return self._release()

    def _push_block(self, x: np.ndarray) -> None:
        masks: dict[str, np.ndarray] = {}  # only the kinds present in this chunk (the common case: none)
        if self.rails is not None:
            with np.errstate(invalid="ignore"):
                at_rail = ((x == self._lo) | (x == self._hi)).any(axis=1)  # beyond a rail: out of range
            if at_rail.any():
                masks["saturation"] = at_rail
        # min and max propagate NaN, which fails both comparisons: one pass for the common case
        if (np.minimum.reduce(x, axis=0) >= self._lo).all() and (np.maximum.reduce(x, axis=0) <= self._hi).all():
            self._hold = x[-1].astype(np.float64)
            self._process(x, masks)
            return
        with np.errstate(invalid="ignore"):
            inside = (x >= self._lo) & (x <= self._hi)
        finite = np.isfinite(x)
        for kind, rows in (("nonfinite", ~finite.all(axis=1)), ("out_of_range", (~inside & finite).any(axis=1))):
            if rows.any():
                masks[kind] = rows
        if "saturation" in masks and "nonfinite" in masks:  # a row with a NaN is reported as that
            masks["saturation"] = masks["saturation"] & ~masks["nonfinite"]
        self._process(self._fill(x, ~inside), masks)

    def gap(self, n: int) -> list[dict]:
        """A sensor dropout of ``n`` samples: hold the last value, keep time, report a ``gap`` artifact."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"gap length must be a non-negative integer, got {n!r}")
        for i in range(0, int(n), BLOCK_SAMPLES):
            k = min(BLOCK_SAMPLES, int(n) - i)
            self._process(np.broadcast_to(self._hold, (k, self.n_channels)), {"gap": np.ones(k, dtype=bool)})
        return self._release()

    def flush(self) -> list[dict]:
        """End of stream: resampler tail, last segmentation samples, open episodes and artifacts."""
        if self._flushed:
            return []
        self._flushed = True
        key = self.n_in + 1
        self._drain()
        tail = self.pre.flush()
        if len(tail):
            self._feed_model(self._quantize(tail), tail, key)
        self._tail_window(key)
        if self._flat is not None:
            self._flat_close(key)
        for kind, start in self._runs.items():
            if start is not None:
                self._artifact(kind, start / self.sampling_rate, self.n_in / self.sampling_rate, key, _PHASE_INPUT)
                self._runs[kind] = None
        if self._seg_acc is not None and self.windows:
            s0 = self._next_end - self.hop - self.window + self.hop  # front of the accumulator
            n = int((self._seg_cnt > 0).sum())
            self._seg_finalize(s0, n, key)
            self._seg_close(s0 + n, key)
        if self._episode is not None:
            label, start = self._episode
            self._emit({"type": "rhythm", "start": _r(start), "end": _r(self._last_end), "label": label},
                       key, _PHASE_MODEL)
            self._episode = None
        if self._vote is not None:
            decision = self._vote.decide(n_samples=self.n_model, window_samples=self.window)
            self._emit({"type": "record", "start": 0.0, "end": _r(self.n_in / self.sampling_rate), **decision},
                       key, _PHASE_MODEL)
        return self._release()

    def _tail_window(self, key: int) -> None:
        """Classify the samples after the last window with one window that ends at the last sample
        (the record rule of ``runtime.record``), so a stream's tail is never left unread. Not for
        segmentation or a per-sample mask, whose merge assumes windows on the hop grid."""
        ran_to = self._next_end - self.hop  # end of the last window run, in model samples
        if self.mode != "classification" or self._mask is not None or self.n_model < self.window:
            return
        if self.n_model > ran_to:
            self._run_window(key)

    # ------------------------------------------------------------------ input side
    def _check(self, samples) -> np.ndarray:
        if self._flushed:
            raise RuntimeError("stream already flushed; make a new StreamRuntime")
        x = np.asarray(samples)
        if x.dtype.kind not in "fiub":
            raise ValueError(f"samples must be numbers, got dtype {x.dtype}")
        if x.ndim == 1 and self.n_channels == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.n_channels:
            raise ValueError(f"chunk must have shape (n,) or (n, {self.n_channels}), got {x.shape}")
        return x  # converted to float64 block by block

    def _fill(self, x: np.ndarray, bad: np.ndarray) -> np.ndarray:
        """Replace ``bad`` values (non-finite or out of range) by the last good value of their channel."""
        x = x.copy()
        for c in range(self.n_channels):
            v = x[:, c]
            ok = ~bad[:, c]
            idx = np.where(ok, np.arange(len(v)), -1)
            np.maximum.accumulate(idx, out=idx)
            v[:] = np.where(idx >= 0, v[np.maximum(idx, 0)], self._hold[c])
            self._hold[c] = v[-1]
        return x

    def _process(self, x: np.ndarray, masks: dict[str, np.ndarray]) -> None:
        n0 = self.n_in
        self._input_flags(masks, n0, len(x))
        self.n_in += len(x)
        # Preprocessing is deferred until a window is due: the model sees the same samples and
        # events come out in the same push, but a small chunk costs an append, not a filter call.
        # At most one hop (plus the resampler's look-ahead) of sensor samples waits here.
        self._raw.append(np.array(x, dtype=np.float64))
        if self._available(self.n_in) >= self._next_end:
            self._drain()

    def _available(self, n_in: int) -> int:
        """Model samples that ``n_in`` sensor samples determine (what the preprocessor would emit)."""
        if not self.pre.resamplers:
            return n_in
        r = self.pre.resamplers[0]
        return max(0, -(-(n_in * r.up) // r.down) - r._pre_remove)

    def _drain(self) -> None:
        if not self._raw:
            return
        x = self._raw[0] if len(self._raw) == 1 else np.concatenate(self._raw)
        self._raw.clear()
        self._keep_raw(x)
        t0 = time.perf_counter()
        y = self.pre(x)
        q = self._quantize(y)
        self.dsp_s += time.perf_counter() - t0
        if len(y):
            self._feed_model(q, y)

    def _keep_raw(self, x: np.ndarray) -> None:
        """Append ``x`` to the sensor samples kept for the flat-line check, dropping those before
        the earliest window still to run (a tail window at flush starts after the last hop's)."""
        first = self._sensor_span(max(0, self._next_end - self.hop - self.window), 1)[0]
        n, buf = len(x), self._recent_raw
        if self._n_raw + n > len(buf):
            cut = min(max(0, first - self._raw0), self._n_raw)
            keep = self._n_raw - cut
            if keep + n > len(buf) or 4 * (keep + n) < len(buf):  # grow, or shrink after a huge chunk
                buf = np.empty((2 * (keep + n), self.n_channels))
            buf[:keep] = self._recent_raw[cut:self._n_raw]  # numpy buffers an overlapping copy
            self._recent_raw, self._raw0, self._n_raw = buf, self._raw0 + cut, keep
        buf[self._n_raw:self._n_raw + n] = x
        self._n_raw += n

    def _sensor_span(self, m0: int, m1: int) -> tuple[int, int]:
        """Sensor samples ``[a, b)`` at the times of model samples ``[m0, m1)``."""
        if not self.pre.resamplers:
            return m0, m1
        up, down = self.pre.ratio
        return -(-m0 * down // up), (m1 - 1) * down // up + 1

    def _input_flags(self, masks: dict[str, np.ndarray], n0: int, n: int) -> None:
        fs = self.sampling_rate
        for kind in ARTIFACT_INPUT_KINDS:
            m = masks.get(kind)
            if m is None:
                if self._runs[kind] is None:
                    continue
                m = np.zeros(n, dtype=bool)  # an open run ends at this chunk's first sample
            # run boundaries inside the chunk, with the open run from the previous chunk
            prev = self._runs[kind] is not None
            edges = np.flatnonzero(np.diff(np.concatenate([[prev], m]).astype(np.int8)))
            for e in edges:
                if m[e]:  # run starts at sample n0 + e
                    self._runs[kind] = n0 + e
                    self._flags.append([(n0 + e) / fs, None, kind])
                else:     # run ended before sample n0 + e; decided when that sample arrived
                    start = self._runs[kind]
                    self._artifact(kind, start / fs, (n0 + e) / fs, n0 + e + 1, _PHASE_INPUT)
                    for f in self._flags:
                        if f[1] is None and f[2] == kind:
                            f[1] = (n0 + e) / fs
                    self._runs[kind] = None

    def _key(self, m: int) -> int:
        """Input sample count at which model sample ``m`` became available."""
        if not self.pre.resamplers:
            return m + 1
        r = self.pre.resamplers[0]
        # output m needs upfirdn output m + pre_remove, final once (m + pre) * down < n_in * up
        return ((m + r._pre_remove) * r.down) // r.up + 1

    def _quantize(self, y: np.ndarray) -> np.ndarray:
        return quantize_with(y, self._in_scale, self._in_zero, self._in_dtype)

    # ------------------------------------------------------------------ model side
    def _feed_model(self, q: np.ndarray, y: np.ndarray, key: int | None = None) -> None:
        """Push model samples; run each window they complete (``key``: fixed, else the completing sample's)."""
        if self.on_samples is not None:
            self.on_samples(self.n_model, y)
        i = 0
        n = len(q)
        while i < n:
            k = min(n - i, self._next_end - self.n_model)
            for c, ring in enumerate(self.rings):
                ring.push(q[i:i + k, c])
            self.n_model += k
            i += k
            if self.n_model == self._next_end:
                self._run_window(self._key(self.n_model - 1) if key is None else key)
                self._next_end += self.hop

    def _run_window(self, key: int) -> None:
        e, w, fs = self.n_model, self.window, self.model_rate
        if self.n_channels == 1:
            x = self.rings[0].latest(w).reshape(1, 1, w)
        else:
            x = np.stack([r.latest(w) for r in self.rings])[None]
        t0 = time.perf_counter()
        self.interp.set_tensor(self._in["index"], x)
        self.interp.invoke()
        out = self.interp.get_tensor(self._out["index"])
        mask = None if self._mask is None else self.interp.get_tensor(self._mask["index"])
        self.interpreter_s += time.perf_counter() - t0
        self.windows += 1
        clean = not self._overlaps((e - w) / fs, e / fs)
        if clean and self._is_flat(e - w, e):
            clean = False
            self._flat = [e - w if self._flat is None else self._flat[0], e]
        elif self._flat is not None:
            self._flat_close(key)
        if self.mode == "classification":
            self._classify(self._dequantize(out[0]), e, clean, key)
        elif self.mode == "regression":
            self._regress(float(self._dequantize(out[0])[0]), e, clean, key)
        else:
            self._segment(out[0], self._out_scale, self._out_zero, e, key)
        if mask is not None:
            self._segment(mask[0], self._mask_scale, self._mask_zero, e, key)

    def _is_flat(self, m0: int, m1: int) -> bool:
        a, b = self._sensor_span(m0, m1)
        raw = self._recent_raw[max(0, a - self._raw0):min(b - self._raw0, self._n_raw)]
        if not len(raw):
            return False
        if self.n_channels == 1:  # the ufunc reductions of a flat view, without .max/.min's dispatch
            raw = raw.reshape(-1)
            return float(np.maximum.reduce(raw)) - float(np.minimum.reduce(raw)) <= self._flat_ptp[0]
        ptp = np.maximum.reduce(raw, axis=0) - np.minimum.reduce(raw, axis=0)
        return bool((ptp <= self._flat_ptp).any())

    def _flat_close(self, key: int) -> None:
        """Report the open run of flat windows (consecutive ones merged into one artifact)."""
        start, end = self._flat
        self._flat = None
        self._artifact("flat", start / self.model_rate, end / self.model_rate, key, _PHASE_MODEL)

    def _dequantize(self, q: np.ndarray) -> np.ndarray:
        return dequantize_with(q, self._out_scale, self._out_zero).astype(np.float64)

    def _overlaps(self, t0: float, t1: float) -> bool:
        while self._flags and self._flags[0][1] is not None and self._flags[0][1] <= t0:
            self._flags.popleft()  # ended before every future window starts
        return any(f[0] < t1 and (f[1] is None or f[1] > t0) for f in self._flags)

    def _classify(self, logits: np.ndarray, e: int, clean: bool, key: int) -> None:
        fs, w = self.model_rate, self.window
        p = logits - np.maximum.reduce(logits)  # what .max() and .sum() call, without their dispatch
        np.exp(p, out=p)
        p /= np.add.reduce(p)
        top = int(p.argmax())
        if clean:
            self._vote.add(p)
            self._recent.append(p)
            mean = sum(self._recent) / len(self._recent)  # == np.mean(axis=0) bit for bit, a tenth of its cost
            best = int(mean.argmax())
            smoothed = self.labels[best] if mean[best] >= self.threshold else INCONCLUSIVE
        else:
            smoothed = INCONCLUSIVE
        self._emit({"type": "class", "start": _r((e - w) / fs), "end": _r(e / fs), "label": self.labels[top],
                    "p": round(float(p[top]), 4), "smoothed": smoothed}, key, _PHASE_MODEL)
        start = (e - w) / fs if self.windows == 1 else self._last_end  # the hop before, or a tail window's part
        if self._episode is None:
            self._episode = (smoothed, start)
        elif self._episode[0] != smoothed:
            self._emit({"type": "rhythm", "start": _r(self._episode[1]), "end": _r(start),
                        "label": self._episode[0]}, key, _PHASE_MODEL)
            self._episode = (smoothed, start)
        self._last_end = e / fs

    def _regress(self, value: float, e: int, clean: bool, key: int) -> None:
        fs, w, label = self.model_rate, self.window, self.labels[0]
        smoothed: float | str = INCONCLUSIVE
        if clean:
            self._recent.append(value)
            smoothed = round(sum(self._recent) / len(self._recent), 4)
        self._emit({"type": "estimate", "start": _r((e - w) / fs), "end": _r(e / fs), "label": label,
                    "value": round(value, 4), "smoothed": smoothed}, key, _PHASE_MODEL)
        if label == "hr_bpm" and clean:
            self._emit({"type": "hr", "t": _r(e / fs), "bpm": round(float(smoothed), 2)}, key, _PHASE_MODEL)

    def _segment(self, q: np.ndarray, scale: float, zero: int, e: int, key: int) -> None:
        """Merge one window's int8 per-sample logits ``(K, W)`` into the running average."""
        if self._no_overlap:
            # No overlap: each sample's mean is this window's softmax, whose argmax is that of the
            # int8 values (dequantization keeps their order; distinct steps stay far apart after
            # exp's rounding). With two labels (QRS, the PPG mask) argmax picks 1 only where it is
            # strictly larger.
            self._seg_runs(e - self.window, q[1] > q[0] if len(q) == 2 else q.argmax(axis=0), key)
            return
        logits = dequantize_with(q, scale, zero).astype(np.float64)
        # the ufunc reductions are what .max/.sum call, without their Python-level dispatch
        p = logits - np.maximum.reduce(logits, axis=0, keepdims=True)
        np.exp(p, out=p)
        p /= np.add.reduce(p, axis=0, keepdims=True)
        self._seg_acc += p
        self._seg_cnt += 1
        self._seg_finalize(e - self.window, self.hop, key)

    def _seg_finalize(self, s0: int, n: int, key: int) -> None:
        """Samples ``[s0, s0+n)`` (the front of the accumulator) are final: emit runs, shift left."""
        if n <= 0:
            return
        self._seg_runs(s0, (self._seg_acc[:, :n] / np.maximum(self._seg_cnt[:n], 1)).argmax(axis=0), key)
        # shift left in place (numpy buffers the overlapping copy); np.roll would allocate twice
        self._seg_acc[:, :-n] = self._seg_acc[:, n:]
        self._seg_acc[:, -n:] = 0.0
        self._seg_cnt[:-n] = self._seg_cnt[n:]
        self._seg_cnt[-n:] = 0.0

    def _seg_runs(self, s0: int, labels: np.ndarray, key: int) -> None:
        """Final labels of samples ``s0, s0+1, ...``: extend, close and open runs."""
        changes = np.flatnonzero(labels[1:] != labels[:-1]) + 1
        names = self.seg_labels
        for st, lab in zip([0, *changes.tolist()], [int(labels[0]), *labels[changes].tolist()]):  # run starts
            name = names[lab]
            if self._seg_run is None:
                self._seg_run = (name, s0 + st)
            elif self._seg_run[0] != name:
                self._seg_close(s0 + st, key)
                self._seg_run = (name, s0 + st)

    def _seg_close(self, end: int, key: int) -> None:
        if self._seg_run is None:
            return
        name, start = self._seg_run
        self._seg_run = None
        fs = self.model_rate
        if name == "qrs" and end - start >= self._beat_min:
            t = (start + end - 1) / 2 / fs
            # No beat follows another within the refractory period: a second run there is noise
            # or a split QRS, not a beat.
            if self._beats and t - self._beats[-1] < BEAT_REFRACTORY_S:
                return
            self._emit({"type": "beat", "t": _r(t), "label": name}, key, _PHASE_MODEL)
            self._beats.append(t)
            while self._beats and self._beats[0] < t - self.hr_interval_s:
                self._beats.popleft()
            if len(self._beats) >= 2:
                b = list(self._beats)  # a dozen floats: their median as statistics.median takes it, inline
                rrs = sorted([y - x for x, y in zip(b, b[1:])])
                k = len(rrs) // 2
                rr = rrs[k] if len(rrs) % 2 else (rrs[k - 1] + rrs[k]) / 2
                if rr > 0:
                    self._emit({"type": "hr", "t": _r(t), "bpm": round(60.0 / rr, 2)}, key, _PHASE_MODEL)
        elif self._seg_artifacts and name != "clean" and end - start >= self._artifact_min:
            self._artifact(name, start / fs, end / fs, key, _PHASE_MODEL)

    # ------------------------------------------------------------------ events
    def _artifact(self, kind: str, start: float, end: float, key: int, phase: int) -> None:
        self._emit({"type": "artifact", "kind": kind, "start": _r(start), "end": _r(end)}, key, phase)

    def _emit(self, event: dict, key: int, phase: int) -> None:
        self._pending.append((int(key), phase, self._seq, event))
        self._seq += 1

    def _release(self) -> list[dict]:
        if len(self._pending) > 1:
            self._pending.sort(key=lambda item: item[:3])
        out = [item[3] for item in self._pending]
        self._pending.clear()
        return out
