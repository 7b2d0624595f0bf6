"""Quantization-aware fine-tuning that mirrors what the int8 converter will do.

Why by hand and not NNCF or torch.ao: the deliverable is made by ai-edge-quantizer from a
float flatbuffer, so the fine-tuned model must stay a plain float ``nn.Module`` that
litert-torch converts as before. We therefore emulate the converter's recipe
(``static_wi8_ai8``) during training and remove the emulation afterwards:

* weights of Conv1d/Conv2d/Linear: symmetric int8 per output channel (scale = max|w| / 127),
  as a parametrization with a straight-through estimator; removed with the rounded
  values kept, so post-training quantization of the result reproduces them exactly;
* activations (the model input and every leaf module's output): asymmetric int8 per tensor
  over the running min/max of everything seen, which is what our calibration does (plain
  min/max, never a moving average that clips).

Functional ops inside ``forward`` (matmul, softmax, additions) are not emulated; the per-
tensor diagnosis of the exported model shows whether that matters for a given model.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["qat_finetune", "fake_quantized"]

log = logging.getLogger(__name__)

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Linear, nn.ConvTranspose1d)
_SKIP = (nn.Dropout, nn.Identity, nn.Flatten)


class _WeightFakeQuant(nn.Module):
    """Per-output-channel symmetric int8 fake quantization (straight-through gradient)."""

    def __init__(self, channel_axis: int) -> None:
        super().__init__()
        self.channel_axis = channel_axis

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        dims = [d for d in range(w.dim()) if d != self.channel_axis]
        scale = w.detach().abs().amax(dim=dims, keepdim=True).clamp_min(1e-12) / 127.0
        q = torch.clamp(torch.round(w / scale), -127, 127) * scale
        return w + (q - w).detach()


class _ActivationFakeQuant:
    """Forward hook: int8 per-tensor fake quantization over the running min/max."""

    def __init__(self) -> None:
        self.lo, self.hi = 0.0, 0.0  # the range always holds 0 (TFLite's zero point is exact)

    def __call__(self, module: nn.Module, args: Any, output: Any) -> Any:
        if not isinstance(output, torch.Tensor) or not output.is_floating_point():
            return output
        return self.apply(output)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or not self.hi > self.lo:
            self.lo = min(self.lo, float(x.detach().min()))
            self.hi = max(self.hi, float(x.detach().max()))
        if not self.hi > self.lo:
            return x
        scale = (self.hi - self.lo) / 255.0
        zero = int(round(-128 - self.lo / scale))
        zero = max(-128, min(127, zero))
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, -128, 127)


@contextlib.contextmanager
def fake_quantized(model: nn.Module, calibration: np.ndarray) -> Iterator[nn.Module]:
    """Inside the block, ``model`` computes with int8 weights and activations (emulated);
    ranges start from ``calibration``. On exit the emulation is removed and the weights keep
    their int8-representable values."""
    handles, input_q = [], _ActivationFakeQuant()
    # leaves first: a parametrized module gains a child (its ParametrizationList)
    leaves = [m for m in model.modules() if not list(m.children()) and not isinstance(m, _SKIP)]
    for module in model.modules():
        if isinstance(module, _WEIGHTED):
            axis = 1 if isinstance(module, nn.ConvTranspose1d) else 0
            parametrize.register_parametrization(module, "weight", _WeightFakeQuant(axis))
    handles += [m.register_forward_hook(_ActivationFakeQuant()) for m in leaves]
    handles.append(model.register_forward_pre_hook(lambda m, args: (input_q.apply(args[0]), *args[1:])))
    try:
        with torch.no_grad():  # start every range from the calibration set
            model.eval()
            for i in range(0, len(calibration), 64):
                model(torch.from_numpy(np.ascontiguousarray(calibration[i:i + 64], dtype=np.float32)))
        yield model
    finally:
        for h in handles:
            h.remove()
        for module in model.modules():
            if isinstance(module, _WEIGHTED) and parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)


def qat_finetune(model: nn.Module, train: Any, val: Any, *, calibration: np.ndarray, epochs: int = 3,
                 lr: float = 3e-4, seed: int = 0, progress: bool = False) -> dict:
    """Fine-tune ``model`` (BatchNorm already folded) in place under int8 emulation.

    ``train``/``val`` are window sets (``x``, ``y``, ``labels``) of a classification or
    segmentation task. Deterministic for a given seed (one thread, deterministic kernels).
    Returns the final validation report of the emulated model.
    """
    from wearable.training.loop import TrainConfig, fit

    if np.issubdtype(np.asarray(train.y).dtype, np.floating):
        raise ValueError("QAT fine-tuning supports classification and segmentation targets only")
    if getattr(train, "mask", None) is not None:
        raise ValueError("QAT fine-tuning supports single-target models only (this task also has a mask)")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with fake_quantized(model, calibration):
            report = fit(model, train, val, config=TrainConfig(epochs=epochs, lr=lr, seed=seed), progress=progress)
    finally:
        torch.set_num_threads(threads)
    model.eval()
    log.info("QAT: %d epochs, val macro F1 %.4f under int8 emulation", epochs, report["macro_f1"])
    return report
