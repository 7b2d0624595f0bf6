"""Building blocks of the tiny InceptionFormer, chosen to survive full int8 and TFLite Micro.

Every normalization is a BatchNorm directly after a convolution inside an ``nn.Sequential``,
so ``quantize.fold_batchnorm`` removes all of them (LayerNorm does not fold and quantizes
poorly). Activations are ReLU, hard-swish or ``x * sigmoid(1.702 x)``: TFLite Micro has no
GELU kernel (shared/notes/conversion.md, trap 1). Attention is reshape/transpose + BATCH_MATMUL
+ SOFTMAX on tensors of at most 4 dimensions. Positions come from depthwise convolutions
(no learned table), so a model is tied to nothing but the window length it was built for.
Tensors are ``(batch, channels, tokens)`` throughout.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "ATTENTIONS", "FUSIONS", "SigmoidGELU", "act_make", "conv_bn", "InceptionMixer", "InceptionBlock",
           "attention_core", "Attention", "AttentionBlock", "PositionConv", "PatchFusion"]

ATTENTIONS = ("mhsa", "sra", "window")
FUSIONS = ("separable", "depthwise")


class SigmoidGELU(nn.Module):
    """``x * sigmoid(1.702 x)``: GELU's shape from ops every int8 runtime has (MUL, LOGISTIC)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {"relu": nn.ReLU, "hardswish": nn.Hardswish, "sigmoid_gelu": SigmoidGELU}


def act_make(name: str) -> nn.Module:
    """A fresh activation module by name (one of ``ACTIVATIONS``)."""
    return ACTIVATIONS[name]()


def conv_bn(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1,
            act: str | None = None) -> nn.Sequential:
    """Conv1d → BatchNorm1d (→ activation); odd kernels with ``kernel // 2`` padding, so a
    stride-2 layer gives ``ceil(T / 2)`` tokens."""
    layers: list[nn.Module] = [
        nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm1d(c_out),
    ]
    if act is not None:
        layers.append(act_make(act))
    return nn.Sequential(*layers)


class InceptionMixer(nn.Module):
    """InceptionNeXt token mixer in 1-D: the channels are split into an identity group and one
    group per kernel length, each group filtered along time by a depthwise conv of its length.

    Built as ONE depthwise conv of the longest kernel whose taps are masked per channel (a
    centred 1-tap kernel on the identity group, a centred k-tap kernel on each branch):
    slicing channels apart and concatenating them again made the ONNX exporter drop the
    dynamic batch dimension and gave litert-torch ~40 extra SLICE/TRANSPOSE/CONCATENATION ops
    (each with its own quantization parameters in the flatbuffer). The extra multiply-adds
    (every channel runs the longest kernel) are ~0.25 M per 10 s window. Masked taps get zero
    gradient (a hook), so with Adam/AdamW they stay exactly zero; the BatchNorm after the conv
    folds as usual.
    """

    def __init__(self, channels: int, kernels: tuple[int, ...], branch_ratio: float) -> None:
        super().__init__()
        g = max(1, int(channels * branch_ratio))
        if g * len(kernels) >= channels:
            raise ValueError(f"branch_ratio {branch_ratio} leaves no identity channels of {channels}")
        self.sizes = [channels - g * len(kernels)] + [g] * len(kernels)
        k_max = max(kernels)
        self.conv = conv_bn(channels, channels, k_max, groups=channels)
        mask = torch.zeros(channels, 1, k_max)
        gain = torch.ones(channels, 1, 1)
        start, mid = 0, k_max // 2
        for size, k in zip(self.sizes, (1,) + tuple(kernels)):
            mask[start:start + size, 0, mid - k // 2:mid + k // 2 + 1] = 1.0
            gain[start:start + size] = math.sqrt(k_max / k)  # default init assumed fan-in k_max
            start += size
        self.register_buffer("mask", mask, persistent=False)
        weight = self.conv[0].weight
        with torch.no_grad():
            weight.mul_(mask * gain)
            weight[:self.sizes[0], 0, mid] = 1.0  # the identity group starts as the identity
        weight.register_hook(self._mask_grad)

    def _mask_grad(self, grad: torch.Tensor) -> torch.Tensor:
        return grad * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _mlp(channels: int, ratio: float, act: str) -> nn.Sequential:
    hidden = max(8, int(round(channels * ratio)))
    # The closing BatchNorm (folded away at export) doubles as the layer scale of the residual.
    return nn.Sequential(conv_bn(channels, hidden, act=act), conv_bn(hidden, channels))


class InceptionBlock(nn.Module):
    """``x + mlp(mixer(x))`` (MetaFormer with an Inception mixer; norms live inside the branches)."""

    def __init__(self, channels: int, *, kernels: tuple[int, ...], branch_ratio: float, mlp_ratio: float,
                 act: str) -> None:
        super().__init__()
        self.mixer = InceptionMixer(channels, kernels, branch_ratio)
        self.mlp = _mlp(channels, mlp_ratio, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.mixer(x))


def attention_core(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head scaled dot-product attention on ``(n, D, T)`` tensors, 4-D at most.

    ``q`` is ``(n, D, Tq)``, ``k``/``v`` are ``(n, D, Tk)``; returns ``(n, D, Tq)``. Scores are
    ``q^T k`` so that only ``q`` is transposed; softmax runs on the last axis (the TFLite op's).
    """
    # -1 for the batch: a size read from the tensor would be baked in by the exporters (the
    # ONNX export traces at batch 1 with a dynamic batch dimension).
    _, d_all, tq = q.shape
    tk = k.shape[-1]
    d = d_all // heads
    q = q.reshape(-1, heads, d, tq).transpose(2, 3) * (1.0 / math.sqrt(d))  # (n, h, Tq, d)
    attn = torch.softmax(torch.matmul(q, k.reshape(-1, heads, d, tk)), dim=-1)  # (n, h, Tq, Tk)
    out = torch.matmul(v.reshape(-1, heads, d, tk), attn.transpose(2, 3))  # (n, h, d, Tq)
    return out.reshape(-1, d_all, tq)


class Attention(nn.Module):
    """Self-attention over tokens: full (``mhsa``), spatial-reduction (``sra``: keys and values
    from a stride-``reduction`` depthwise conv, as in PVT) or non-overlapping windows of
    up to ``window`` tokens (``window``; the largest window size that divides the token count).
    """

    def __init__(self, channels: int, *, kind: str, dim: int, heads: int, reduction: int, window: int) -> None:
        super().__init__()
        if kind not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {kind!r}")
        if dim % heads:
            raise ValueError(f"attention dim {dim} is not divisible by {heads} heads")
        self.kind, self.dim, self.heads, self.window = kind, dim, heads, window
        # Separate q, k and v convs rather than one split in three: channel slices made the ONNX
        # exporter drop the dynamic batch dimension (see InceptionMixer).
        self.q, self.k, self.v = conv_bn(channels, dim), conv_bn(channels, dim), conv_bn(channels, dim)
        if kind == "sra":
            self.reduce = conv_bn(channels, channels, reduction + 1 - reduction % 2, stride=reduction,
                                  groups=channels)
        self.proj = conv_bn(dim, channels)  # its BatchNorm is the residual's layer scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.q(x)
        kv = self.reduce(x) if self.kind == "sra" else x
        k, v = self.k(kv), self.v(kv)
        if self.kind == "window":
            return self.proj(self._windowed(q, k, v))
        return self.proj(attention_core(q, k, v, self.heads))

    def _windowed(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        _, d, t = q.shape
        # Windows of the largest size <= ``window`` that divides the token count: padding and
        # cropping back would need a slice, which loses the ONNX export's dynamic batch.
        w = max(n for n in range(1, min(self.window, t) + 1) if t % n == 0)

        def split(z: torch.Tensor) -> torch.Tensor:  # (b, d, t) -> (b * t/w, d, w), 4-D at most
            return z.reshape(-1, d, t // w, w).transpose(1, 2).reshape(-1, d, w)

        out = attention_core(split(q), split(k), split(v), self.heads)
        return out.reshape(-1, t // w, d, w).transpose(1, 2).reshape(-1, d, t)


class AttentionBlock(nn.Module):
    """``x + attn(x)``, then ``x + mlp(x)``."""

    def __init__(self, channels: int, *, attention: str, dim: int, heads: int, reduction: int, window: int,
                 mlp_ratio: float, act: str) -> None:
        super().__init__()
        self.attn = Attention(channels, kind=attention, dim=dim, heads=heads, reduction=reduction, window=window)
        self.mlp = _mlp(channels, mlp_ratio, act) if mlp_ratio > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x if self.mlp is None else x + self.mlp(x)


class PositionConv(nn.Module):
    """Conditional position encoding (CPVT): ``x + BN(depthwise_conv(x))`` before attention."""

    def __init__(self, channels: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = conv_bn(channels, channels, kernel, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


def PatchFusion(c_in: int, c_out: int, act: str, kind: str = "separable") -> nn.Sequential:  # noqa: N802 (a module factory)
    """Stride-2 patch fusion between stages: half the tokens, ``c_out`` channels.

    ``separable``: depthwise stride-2 conv (kernel 3) then a pointwise conv to the wider token
    (a dense kernel-3 conv to 256 channels alone would take ~100 KB of the 160 KB flash budget).
    ``depthwise``: one depthwise stride-2 conv with channel multiplier ``c_out / c_in`` (each
    input channel fused into ``c_out / c_in`` wider-token channels, TFLite's depth_multiplier):
    the 128 -> 256 pointwise conv costs 32 K int8 weights + 28 bytes of bias and per-channel
    quantization parameters per output channel, the largest single item of the tiny variant;
    the stage's attention mixes channels right after.
    """
    if kind not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {kind!r}")
    if kind == "depthwise":
        if c_out % c_in:
            raise ValueError(f"depthwise fusion needs c_out ({c_out}) to be a multiple of c_in ({c_in})")
        return nn.Sequential(conv_bn(c_in, c_out, 3, stride=2, groups=c_in, act=act))
    return nn.Sequential(conv_bn(c_in, c_in, 3, stride=2, groups=c_in), conv_bn(c_in, c_out, act=act))
