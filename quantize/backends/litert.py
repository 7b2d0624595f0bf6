"""litert-torch + ai-edge-quantizer: the primary route to a full-int8 ``.tflite``.

Why this route (measured, shared/notes/conversion.md): it gives full int8 with int8 input
and output, builtin ops only, without TensorFlow, and had the best figures of the trial
(DS-CNN: max logit error 0.14, 100 % argmax agreement, 38 ops; attention model 0.83 / 99 %).
onnx2tf was correct too but pins TensorFlow/numpy versions and exits 0 when its int8 step
failed; PT2E quantization inside litert-torch leaves GELU/LayerNorm/attention in float.

Two traps are handled here or by the caller:
* BatchNorm must already be folded (``quantize.fold_batchnorm``), litert-torch keeps it.
* ai-edge-quantizer's default calibration keeps a moving average of per-batch min/max and
  clipped the logits of the trial model (88.5 % agreement); we pass a plain running min/max.

Calibration cost: the quantizer's calibrator spends ~25 ms of Python per window (recipe lookups
for every op), so 2,000 windows took most of a minute. A running min/max over all windows equals
the min/max over only the windows that hold some tensor's extreme, so ``extreme_windows`` finds
those with a plain pass of the same interpreter (XNNPACK, all tensors kept, one thread) and the
calibrator sees only them: the ranges, and so the int8 model, are identical.
"""

from __future__ import annotations

import contextlib
import os
from importlib import metadata
from typing import Iterator

import numpy as np
import torch
from torch import nn

from .._quiet import quiet

__all__ = ["to_int8", "to_float", "float_to_int8", "calibrate", "quantize_ranges", "extreme_windows", "versions",
           "SETTINGS"]

RECIPE = "static_wi8_ai8"
SETTINGS = {"converter": "litert_torch.convert", "quantizer": "ai_edge_quantizer", "recipe": RECIPE,
            "calibration": "min_max"}
_SIGNATURE = "serving_default"


def to_float(model: nn.Module, example: np.ndarray) -> bytes:
    """Float32 flatbuffer of ``model`` traced with ``example[:1]`` (batch size 1)."""
    sample = torch.from_numpy(np.ascontiguousarray(example[:1], dtype=np.float32))
    with _no_progress(), quiet("litert-torch conversion"):
        import litert_torch  # first import prints torchao/pytree chatter

        edge = litert_torch.convert(model.eval(), (sample,))
        return bytes(edge.model_content())


def to_int8(model: nn.Module, calibration: np.ndarray) -> bytes:
    """Full-int8 flatbuffer: int8 weights, activations, input and output (recipe static_wi8_ai8)."""
    return float_to_int8(to_float(model, calibration), calibration)


def float_to_int8(float_model: bytes, calibration: np.ndarray, *, extremes: np.ndarray | None = None) -> bytes:
    """Quantize the float flatbuffer from ``to_float``; tensor names stay those of the float model.

    ``extremes``: ``extreme_windows(float_model, calibration)`` when the caller has it already.
    """
    return quantize_ranges(float_model, calibrate(float_model, calibration, extremes=extremes))


def calibrate(float_model: bytes, calibration: np.ndarray, *, extremes: np.ndarray | None = None) -> dict:
    """Per-tensor ranges (plain min/max) of ``float_model`` over the calibration windows, keyed by
    its tensor names: ``float_to_int8``'s calibration, for callers that move the ranges onto
    another conversion of the same network (``quantize.stream_export``)."""
    with quiet("ai-edge-quantizer"):
        from ai_edge_litert.interpreter import Interpreter
        from ai_edge_quantizer import calibrator, recipe, recipe_manager
        from ai_edge_quantizer.utils import qsv_utils

        signature = Interpreter(model_content=float_model).get_signature_list()[_SIGNATURE]
        (input_name,) = signature["inputs"]
        manager = recipe_manager.RecipeManager()
        manager.load_quantization_recipe(recipe.static_wi8_ai8())
        calib = calibrator.Calibrator(float_model, num_threads=1, qsv_update_func=qsv_utils.min_max_update)
        windows = np.ascontiguousarray(calibration, dtype=np.float32)
        chosen = extreme_windows(float_model, windows) if extremes is None else extremes
        calib.calibrate({_SIGNATURE: [{input_name: windows[i:i + 1]} for i in chosen]}, manager)
        return calib.get_model_qsvs()


def quantize_ranges(float_model: bytes, ranges: dict) -> bytes:
    """Full int8 (recipe static_wi8_ai8) from per-tensor ranges keyed by ``float_model``'s tensor names."""
    with quiet("ai-edge-quantizer"):
        from ai_edge_quantizer import quantizer, recipe

        q = quantizer.Quantizer(float_model, recipe.static_wi8_ai8())
        result = q.quantize(ranges, enable_progress_bar=False, enable_progress_report=False)
    return bytes(result.quantized_model)


def extreme_windows(float_model: bytes, windows: np.ndarray) -> np.ndarray:
    """Sorted indices of the windows holding the min or max of some tensor (at least two windows).

    Runs the interpreter the quantizer's calibrator builds (XNNPACK, all tensors preserved, one
    thread), so the values, and hence the per-tensor min/max, are the calibrator's own.
    """
    from ai_edge_quantizer.utils import tfl_interpreter_utils

    interp = tfl_interpreter_utils.create_tfl_interpreter(float_model, use_xnnpack=True, num_threads=1,
                                                          preserve_all_tensors=True)
    (inp,) = interp.get_input_details()
    details = [d for d in interp.get_tensor_details() if d["name"] and np.all(d["shape"])
               and np.issubdtype(d["dtype"], np.floating)]
    lo = np.full(len(details), np.inf)
    hi = np.full(len(details), -np.inf)
    arg_lo = np.zeros(len(details), dtype=np.int64)
    arg_hi = np.zeros(len(details), dtype=np.int64)
    for i in range(len(windows)):
        interp.set_tensor(inp["index"], windows[i:i + 1])
        interp.invoke()
        values = [interp.get_tensor(d["index"]) for d in details]
        mins = np.array([v.min() for v in values], dtype=np.float64)
        maxs = np.array([v.max() for v in values], dtype=np.float64)
        low, high = mins < lo, maxs > hi  # strict: the first window reaching an extreme keeps it
        lo[low], arg_lo[low] = mins[low], i
        hi[high], arg_hi[high] = maxs[high], i
    chosen = set(arg_lo.tolist()) | set(arg_hi.tolist()) | set(range(min(2, len(windows))))
    return np.array(sorted(chosen), dtype=np.int64)


def versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in ("torch", "litert-torch", "ai-edge-quantizer", "ai-edge-litert")}


@contextlib.contextmanager
def _no_progress() -> Iterator[None]:
    # litert-torch prints a rich progress log unless LITERT_TORCH_SHOW_PROGRESS is off; it reads
    # the variable on every call, so set it for the conversion only and restore it after.
    key = "LITERT_TORCH_SHOW_PROGRESS"
    old = os.environ.get(key)
    os.environ[key] = "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old
