"""Load a TFLite model in whichever TFLite runtime is installed, and run int8 tensors through it.

Needs numpy (1.x or 2.x) and ONE of these runtimes, tried in this order:

============== ================================================ =======================
backend        interpreter class                                typical environment
============== ================================================ =======================
ai_edge_litert ``ai_edge_litert.interpreter.Interpreter``       export / training host
tflite_runtime ``tflite_runtime.interpreter.Interpreter``       Raspberry Pi (numpy<2)
tensorflow     ``tensorflow.lite.Interpreter`` (deprecated)     a TensorFlow install
============== ================================================ =======================

Nothing here imports torch, and a runtime module is imported only when an interpreter is
made, so ``import wearable.runtime`` stays cheap on a Pi.

>>> interp = load_interpreter("artifacts/dscnn_tiny/model_int8.tflite")  # doctest: +SKIP
>>> x_q = quantize(x, interp.get_input_details()[0])                    # doctest: +SKIP
>>> y = dequantize(invoke(interp, x_q)[0], interp.get_output_details()[0])  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from os import PathLike, fspath
from typing import Any, Callable, Sequence

import numpy as np

__all__ = [
    "BACKENDS",
    "RuntimeUnavailableError",
    "available_backends",
    "backend_version",
    "load_interpreter",
    "invoke",
    "int8_predictor",
    "quantize",
    "quantize_with",
    "dequantize",
    "dequantize_with",
    "quant_params",
]


class RuntimeUnavailableError(ImportError):
    """No usable TFLite runtime (or not the one asked for) is installed."""


def _litert_class() -> Any:
    return importlib.import_module("ai_edge_litert.interpreter").Interpreter


def _tflite_runtime_class() -> Any:
    # tflite-runtime 2.14 wheels are built against numpy 1.x: with numpy 2 they import, then
    # fail inside Interpreter() with "_ARRAY_API not found" (shared/notes/conversion.md, trap 5).
    if int(np.__version__.split(".")[0]) >= 2:
        raise RuntimeUnavailableError(
            f"tflite_runtime needs numpy<2 (numpy {np.__version__} is installed); "
            "use ai_edge_litert or a numpy<2 environment")
    return importlib.import_module("tflite_runtime.interpreter").Interpreter


def _tensorflow_class() -> Any:
    return importlib.import_module("tensorflow").lite.Interpreter


# backend name -> (top-level module that must be installed, distribution name, class getter)
BACKENDS: dict[str, tuple[str, str, Callable[[], Any]]] = {
    "ai_edge_litert": ("ai_edge_litert", "ai-edge-litert", _litert_class),
    "tflite_runtime": ("tflite_runtime", "tflite-runtime", _tflite_runtime_class),
    "tensorflow": ("tensorflow", "tensorflow", _tensorflow_class),
}


def available_backends() -> list[str]:
    """Installed backends, most preferred first (found without importing them)."""
    return [name for name, (module, _, _) in BACKENDS.items() if importlib.util.find_spec(module) is not None]


def backend_version(backend: str) -> str | None:
    """Installed version of a backend's distribution, or None."""
    from importlib import metadata

    _check_backend(backend)
    try:
        return metadata.version(BACKENDS[backend][1])
    except metadata.PackageNotFoundError:
        return None


def load_interpreter(model: str | PathLike | bytes, *, backend: str | None = None, num_threads: int = 1,
                     default_delegates: bool = True, reference_kernels: bool = False) -> Any:
    """A TFLite interpreter for ``model`` (a path or the flatbuffer bytes), tensors allocated.

    ``backend`` is one of ``BACKENDS``; None picks the first installed one in that order. The
    returned object has the usual ``get_input_details``/``set_tensor``/``invoke`` API; the
    name of the backend that made it is in its ``wearable_backend`` attribute.

    ``default_delegates=False`` keeps the runtime from applying its default delegate
    (XNNPACK on CPU), which may round some outputs a step differently. ``reference_kernels``
    goes further and selects the reference int8 kernels (``BUILTIN_REF``, no delegate): those
    are what TFLite Micro implements, and they agree bit for bit across ai-edge-litert,
    tflite-runtime 2.14 and TFLite Micro, while the optimized builtin kernels drift by a few
    steps on deep residual graphs. Golden vectors are made and replayed that way.
    """
    if backend is None:
        found = available_backends()
        if not found:
            raise RuntimeUnavailableError(
                f"no TFLite runtime installed; install one of: {', '.join(v[1] for v in BACKENDS.values())}")
        backend = found[0]
    _check_backend(backend)
    module = BACKENDS[backend][0]
    try:
        cls = BACKENDS[backend][2]()
    except ModuleNotFoundError as exc:
        if exc.name is None or not module.startswith(exc.name.split(".")[0]):
            raise
        raise RuntimeUnavailableError(
            f"backend {backend!r} is not installed (pip install {BACKENDS[backend][1]})") from None
    kwargs: dict[str, Any] = {"num_threads": num_threads}
    if reference_kernels or not default_delegates:
        resolver = importlib.import_module(cls.__module__).OpResolverType
        kwargs["experimental_op_resolver_type"] = (resolver.BUILTIN_REF if reference_kernels
                                                   else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    if isinstance(model, (bytes, bytearray, memoryview)):
        interp = cls(model_content=bytes(model), **kwargs)
    else:
        interp = cls(model_path=fspath(model), **kwargs)
    interp.allocate_tensors()
    try:
        interp.wearable_backend = backend
    except AttributeError:  # a class with __slots__; the attribute is a convenience only
        pass
    return interp


def invoke(interp: Any, *inputs: np.ndarray) -> list[np.ndarray]:
    """Run the model once per input row; return one array per model output.

    Each input must have the exact shape of the model input, or, for a model with batch
    size 1, shape ``(n, *input_shape[1:])``: the n rows are then run one at a time and the
    outputs stacked to ``(n, *output_shape[1:])``. Inputs are passed as given (int8 for a
    full-integer model); see ``quantize``.
    """
    in_details = interp.get_input_details()
    out_details = interp.get_output_details()
    if len(inputs) != len(in_details):
        raise ValueError(f"model has {len(in_details)} input(s), got {len(inputs)}")
    arrays = [np.asarray(x) for x in inputs]
    rows = None
    for x, d in zip(arrays, in_details):
        shape = tuple(int(s) for s in d["shape"])
        if x.dtype != d["dtype"]:
            raise ValueError(f"input {d['name']!r} is {np.dtype(d['dtype']).name}, got {x.dtype.name}")
        if x.shape == shape:
            n = None
        elif shape and shape[0] == 1 and x.shape[1:] == shape[1:]:
            n = x.shape[0]
        else:
            raise ValueError(f"input {d['name']!r} has shape {shape}, got {x.shape}")
        if rows is not None and n != rows:
            raise ValueError("all inputs must have the same number of rows")
        rows = n
    if rows is None:
        return _invoke_once(interp, arrays, in_details, out_details)
    outs = [_invoke_once(interp, [x[i:i + 1] for x in arrays], in_details, out_details) for i in range(rows)]
    return [np.concatenate([o[k] for o in outs], axis=0) for k in range(len(out_details))]


def _invoke_once(interp: Any, arrays: Sequence[np.ndarray], in_details: list, out_details: list) -> list[np.ndarray]:
    for x, d in zip(arrays, in_details):
        interp.set_tensor(d["index"], np.ascontiguousarray(x))
    interp.invoke()
    return [np.array(interp.get_tensor(d["index"])) for d in out_details]


def int8_predictor(model: str | PathLike | bytes, *, backend: str | None = None):
    """``f(x float32 (n, C, W)) -> dequantized outputs`` of a full-int8 model's first output, run
    with the builtin reference kernels (what TFLite Micro reproduces; XNNPACK may round differently)."""
    interp = load_interpreter(model, backend=backend, default_delegates=False)
    d_in, d_out = interp.get_input_details()[0], interp.get_output_details()[0]

    def run(x: np.ndarray) -> np.ndarray:
        return dequantize(invoke(interp, quantize(np.asarray(x, np.float32), d_in))[0], d_out)

    return run


def quant_params(detail: dict) -> tuple[float, int]:
    """``(scale, zero_point)`` of a per-tensor quantized tensor from its details dict."""
    qp = detail.get("quantization_parameters") or {}
    scales = np.asarray(qp.get("scales", []), dtype=np.float64).ravel()
    zeros = np.asarray(qp.get("zero_points", []), dtype=np.int64).ravel()
    if scales.size == 0 and "quantization" in detail:
        scale, zero = detail["quantization"]
        scales, zeros = np.array([scale], dtype=np.float64), np.array([zero], dtype=np.int64)
    if scales.size != 1 or scales[0] == 0:
        raise ValueError(f"tensor {detail.get('name')!r} is not per-tensor quantized")
    return float(np.float32(scales[0])), int(zeros[0]) if zeros.size else 0


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float array -> the integer dtype of ``detail``, rounding half away from zero as TFLite does."""
    scale, zero = quant_params(detail)
    return quantize_with(x, scale, zero, np.dtype(detail["dtype"]))


def quantize_with(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """``quantize`` with the parameters already looked up (the streaming hot path)."""
    lo, hi = _int_range(np.dtype(dtype))
    v = np.divide(x, scale, dtype=np.float64)
    # trunc(v ± 0.5) == sign(v) * floor(|v| + 0.5) bit for bit, in place: one temporary, not four
    v += np.copysign(0.5, v)
    np.trunc(v, out=v)
    v += zero_point
    np.maximum(v, lo, out=v)  # == np.clip, without its Python-level dispatch
    np.minimum(v, hi, out=v)
    return v.astype(dtype)


@functools.lru_cache(maxsize=None)
def _int_range(dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)  # ~5 µs to build: a tenth of a small model's invoke
    return int(info.min), int(info.max)


def dequantize(q: np.ndarray, detail: dict) -> np.ndarray:
    """Integer array -> float32 ``(q - zero_point) * scale``."""
    return dequantize_with(q, *quant_params(detail))


def dequantize_with(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """``dequantize`` with the parameters already looked up (the streaming hot path)."""
    return ((np.asarray(q, dtype=np.float64) - zero_point) * scale).astype(np.float32)


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown TFLite backend {backend!r}; accepted: {', '.join(BACKENDS)}")
