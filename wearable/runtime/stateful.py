"""Run an exported stateful streaming model (``python -m quantize.stream_export``) on sample chunks.

The step model takes ``block_samples`` new samples plus its state tensors and returns its
outputs for that block plus the new states; ``StatefulStream`` carries the states between
calls, so each sample goes through every layer once. Push chunks of any size; outputs come
out block by block, ``delay_samples`` late: output sample ``j`` belongs to input sample
``j - delay_samples`` (the non-causal 'same' padding of the offline model turned into a
delay). The first ``warmup_samples`` input samples are not equal to the offline model's
(see ``wearable.models.streaming``). The output does not depend on how the input was chunked.

Needs numpy and one TFLite runtime (``wearable.runtime.interpreter``); never imports torch.

>>> stream = StatefulStream("artifacts/ecgcl_seg_tiny_stream")   # doctest: +SKIP
>>> y = stream.push(samples)    # (K, n) float logits for the blocks completed so far  # doctest: +SKIP
"""

from __future__ import annotations

from os import PathLike
from typing import Any

import numpy as np

from .artifact import Artifact, ArtifactError, load_artifact, read_artifact_file
from .interpreter import dequantize, load_interpreter, quant_params, quantize_with

__all__ = ["StatefulStream", "FLOAT_MODEL_FILE"]

FLOAT_MODEL_FILE = "model_float.tflite"


class StatefulStream:
    """Feed samples ``(n,)`` or ``(C, n)`` at the model rate (preprocessed, float); ``push`` returns
    the new per-sample outputs of the first model output as float ``(K, m)``, ``m`` a multiple of
    the block (0 while a block is incomplete). ``samples_out`` counts outputs emitted so far.

    ``precision="float"`` runs the float32 streaming model of the same export (the exactness
    check); ``"int8"`` (default) the full-int8 one, states kept as int8.
    """

    def __init__(self, artifact: str | PathLike | Artifact, *, precision: str = "int8", backend: str | None = None,
                 reference_kernels: bool = False, num_threads: int = 1) -> None:
        art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
        stream = art.manifest.get("stream")
        if not isinstance(stream, dict):
            raise ArtifactError(f"{art.path}: not a stateful streaming export (no 'stream' in the manifest)")
        if precision not in ("int8", "float"):
            raise ValueError(f"precision must be 'int8' or 'float', got {precision!r}")
        model: Any = art.model
        if precision == "float":
            entry = art.manifest.get("files", {}).get(FLOAT_MODEL_FILE)
            if not isinstance(entry, dict):
                raise ArtifactError(f"{art.path}: the manifest lists no {FLOAT_MODEL_FILE}")
            model = read_artifact_file(art.path, FLOAT_MODEL_FILE, entry)
        self.artifact = art
        self.block = int(stream["block_samples"])
        self.delay_samples = int(stream["delay_samples"])
        self.warmup_samples = int(stream["warmup_samples"])
        self.channels = int(art.manifest["in_channels"])
        self._interp = load_interpreter(model, backend=backend, num_threads=num_threads,
                                        reference_kernels=reference_kernels, default_delegates=False)
        by_index = {d["index"]: d for d in [*self._interp.get_input_details(), *self._interp.get_output_details()]}
        key = "float" if precision == "float" else "int8"
        io = stream["tensors"][key]
        self._in = [by_index[i] for i in io["inputs"]]
        self._out = [by_index[i] for i in io["outputs"]]
        self._n_outputs = len(self._out) - (len(self._in) - 1)
        self._int8 = precision == "int8"
        if self._int8:
            self._x_q = quant_params(self._in[0])
            for d_in, d_out in zip(self._in[1:], self._out[self._n_outputs:]):
                if quant_params(d_in) != quant_params(d_out):  # the export ties them; a stale file would not
                    raise ArtifactError(f"{art.path}: state {d_in['name']} has other quantization parameters "
                                        "as input than as output; re-export")
        self.reset()

    def reset(self) -> None:
        """Zero states (zero point for int8), empty pending input."""
        self._states = [np.full(tuple(d["shape"]), quant_params(d)[1] if self._int8 else 0, dtype=d["dtype"])
                        for d in self._in[1:]]
        self._pending = np.zeros((self.channels, 0), dtype=np.float64)
        self.samples_in = 0
        self.samples_out = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[0] != self.channels:
            raise ValueError(f"samples must be (n,) or ({self.channels}, n), got {np.shape(samples)}")
        if not np.all(np.isfinite(x)):
            raise ValueError("samples contain NaN or inf; mark gaps upstream (StreamRuntime does)")
        self.samples_in += x.shape[1]
        pending = np.concatenate([self._pending, x], axis=1) if self._pending.size else x
        n_blocks = pending.shape[1] // self.block
        outs = []
        for b in range(n_blocks):
            outs.append(self._step(pending[:, b * self.block:(b + 1) * self.block]))
        self._pending = pending[:, n_blocks * self.block:].copy()
        k = int(self._out[0]["shape"][1])
        y = np.concatenate(outs, axis=1) if outs else np.zeros((k, 0), dtype=np.float32)
        self.samples_out += y.shape[1]
        return y

    def _step(self, block: np.ndarray) -> np.ndarray:
        interp, d_x = self._interp, self._in[0]
        if self._int8:
            xq = quantize_with(block[None], *self._x_q, np.dtype(d_x["dtype"]))
        else:
            xq = block[None].astype(np.float32)
        interp.set_tensor(d_x["index"], xq)
        for d, s in zip(self._in[1:], self._states):
            interp.set_tensor(d["index"], s)
        interp.invoke()
        self._states = [interp.get_tensor(d["index"]) for d in self._out[self._n_outputs:]]
        y = interp.get_tensor(self._out[0]["index"])[0]
        return dequantize(y, self._out[0]) if self._int8 else y.astype(np.float32)

    def run(self, signal: np.ndarray) -> np.ndarray:
        """``reset`` then ``push`` the whole ``signal``: the stream's outputs, ``delay_samples`` late."""
        self.reset()
        return self.push(signal)

