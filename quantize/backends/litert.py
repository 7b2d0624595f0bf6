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

__all__ = ["to_int8", "to_float", "float_to_int8", "versions", "SETTINGS"]

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


def float_to_int8(float_model: bytes, calibration: np.ndarray) -> bytes:
    """Quantize the float flatbuffer from ``to_float``; tensor names stay those of the float model."""
    with quiet("ai-edge-quantizer"):
        from ai_edge_litert.interpreter import Interpreter
        from ai_edge_quantizer import calibrator, quantizer, recipe, recipe_manager
        from ai_edge_quantizer.utils import qsv_utils

        signature = Interpreter(model_content=float_model).get_signature_list()[_SIGNATURE]
        (input_name,) = signature["inputs"]
        manager = recipe_manager.RecipeManager()
        manager.load_quantization_recipe(recipe.static_wi8_ai8())
        calib = calibrator.Calibrator(float_model, num_threads=1, qsv_update_func=qsv_utils.min_max_update)
        windows = np.ascontiguousarray(calibration, dtype=np.float32)
        calib.calibrate({_SIGNATURE: [{input_name: windows[i:i + 1]} for i in range(len(windows))]}, manager)
        q = quantizer.Quantizer(float_model, recipe.static_wi8_ai8())
        result = q.quantize(calib.get_model_qsvs(), enable_progress_bar=False, enable_progress_report=False)
    return bytes(result.quantized_model)


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
