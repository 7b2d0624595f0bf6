"""Tiny InceptionFormer for single-lead ECG: InceptionNeXt token mixers in the early stages,
self-attention in the late ones, stride-2 patch fusion between stages (issue 4).

Layout for a 10 s window at 100 Hz (1000 samples): a stride-4 convolutional stem (250 tokens),
then per stage a stride-2 patch fusion and its blocks: 125 tokens × 32, 63 × 64, 32 × 128,
16 × 256 for the tiny variant. Early stages mix tokens with InceptionNeXt mixers (identity +
depthwise kernels 3/11/31 on channel groups); attention stages start with a depthwise
position convolution and use ``attention`` = ``mhsa`` (full), ``sra`` (keys/values from a
stride-2 reduced sequence) or ``window`` (8-token windows). See ``_inception_blocks`` for why
each op was chosen (full int8 + TFLite Micro).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ._inception_blocks import (ACTIVATIONS, ATTENTIONS, FUSIONS, AttentionBlock, InceptionBlock, PatchFusion, PositionConv,
                                conv_bn)
from ._registry import register_model

__all__ = ["LITE_160KB", "InceptionFormerConfig", "InceptionFormer3StageConfig", "InceptionFormer", "inceptionformer_tiny", "inceptionformer_3stage"]

_STAGE_KINDS = ("inception", "attention")


@dataclass(frozen=True)
class InceptionFormerConfig:
    sampling_rate_hz: float = 100.0
    window_samples: int = 1000
    in_channels: int = 1
    num_classes: int = 3
    stem_channels: int = 16
    stem_strides: tuple[int, ...] = (2, 2)  # strides of the stem's two convolutions (kernels 7 and 5)
    widths: tuple[int, ...] = (32, 64, 128, 256)
    depths: tuple[int, ...] = (1, 1, 1, 1)
    stage_kinds: tuple[str, ...] = ("inception", "inception", "attention", "attention")
    # MLP hidden width / token width (0: no MLP); small in the late stages, where one 1x1 conv
    # at 256 channels costs 64 KB of the 160 KB int8 flash budget.
    mlp_ratios: tuple[float, ...] = (2.0, 2.0, 0.5, 0.0)
    # patch fusion into each stage (see PatchFusion): "separable" or "depthwise" (channel
    # multiplier); the 128 -> 256 pointwise fusion alone is 36 KB of int8 flash. See LITE_160KB
    # for the configuration that fits 160 KB.
    fusions: tuple[str, ...] = ("separable", "separable", "separable", "separable")
    position_convs: bool = True  # a depthwise position conv at the start of every attention stage
    kernels: tuple[int, ...] = (3, 11, 31)
    branch_ratio: float = 0.125  # channels per depthwise branch (InceptionNeXt's default)
    attention: str = "mhsa"
    # width of q, k and v in every attention stage: 32 costs 27 KB more int8 flash than 16
    # (weights and per-channel quantization parameters of q/k/v/proj at 128 and 256 channels)
    attention_dim: int = 32
    head_dim: int = 16
    sra_reduction: int = 2
    window_tokens: int = 8
    act: str = "hardswish"
    dropout: float = 0.1

    def __post_init__(self) -> None:
        # JSON round trips turn tuples into lists; keep the dataclass hashable
        for name in ("widths", "depths", "stage_kinds", "mlp_ratios", "kernels", "fusions", "stem_strides"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.sampling_rate_hz <= 0:
            raise ValueError(f"sampling_rate_hz must be > 0, got {self.sampling_rate_hz}")
        if self.window_samples <= 0 or self.num_classes < 2 or self.in_channels < 1:
            raise ValueError("window_samples must be > 0, num_classes >= 2 and in_channels >= 1")
        n = len(self.widths)
        if n == 0 or not len(self.depths) == len(self.stage_kinds) == len(self.mlp_ratios) == len(self.fusions) == n:
            raise ValueError("widths, depths, stage_kinds, mlp_ratios and fusions need one entry per stage")
        if any(f not in FUSIONS for f in self.fusions):
            raise ValueError(f"fusions entries must be in {FUSIONS}, got {self.fusions}")
        if any(k not in _STAGE_KINDS for k in self.stage_kinds):
            raise ValueError(f"stage_kinds entries must be in {_STAGE_KINDS}, got {self.stage_kinds}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {self.attention!r}")
        if self.act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {tuple(ACTIVATIONS)}, got {self.act!r}")
        if self.head_dim < 1 or self.attention_dim % self.head_dim:
            raise ValueError(f"attention_dim {self.attention_dim} must be a multiple of head_dim {self.head_dim}")
        if len(self.stem_strides) != 2 or min(self.stem_strides) < 1:
            raise ValueError(f"stem_strides must be two strides >= 1, got {self.stem_strides}")
        if any(k % 2 == 0 for k in self.kernels):
            raise ValueError(f"kernels must be odd, got {self.kernels}")


# inceptionformer_tiny overrides that fit the 160 KB int8 flash (152,816 bytes, 3.25 M MACs):
# every int8 conv output channel costs 28 bytes besides its weights (int32 bias + float32 scale and
# int64 zero point for weight and bias), so the 256-wide stage dominated. The shipped
# inceptionformer_tiny checkpoint uses it (checkpoints carry their config); the registered default
# stays the plain configuration so that untrained builds keep the reference layout.
LITE_160KB = {"fusions": ("separable", "separable", "separable", "depthwise"), "mlp_ratios": (2.0, 1.0, 0.5, 0.0),
              "attention_dim": 16, "head_dim": 8}


@dataclass(frozen=True)
class InceptionFormer3StageConfig(InceptionFormerConfig):
    """The tiny variant's config without its last stage (its own class, so the registry and
    export can tell the two models apart and ``config_class(name)()`` gives the right defaults)."""

    widths: tuple[int, ...] = (32, 64, 128)
    depths: tuple[int, ...] = (1, 1, 1)
    stage_kinds: tuple[str, ...] = ("inception", "inception", "attention")
    mlp_ratios: tuple[float, ...] = (2.0, 2.0, 1.0)
    fusions: tuple[str, ...] = ("separable", "separable", "separable")


class InceptionFormer(nn.Module):
    def __init__(self, config: InceptionFormerConfig) -> None:  # or a subclass
        super().__init__()
        self.config = c = config
        s1, s2 = c.stem_strides
        self.stem = nn.Sequential(conv_bn(c.in_channels, c.stem_channels, 7, stride=s1, act="relu"),
                                  conv_bn(c.stem_channels, c.stem_channels, 5, stride=s2, act=c.act))
        stages, width = [], c.stem_channels
        for w, depth, kind, ratio, fusion in zip(c.widths, c.depths, c.stage_kinds, c.mlp_ratios, c.fusions):
            layers: list[nn.Module] = [PatchFusion(width, w, c.act, fusion)]
            if kind == "attention" and c.position_convs:
                layers.append(PositionConv(w))
                layers += [AttentionBlock(w, attention=c.attention, dim=c.attention_dim, heads=c.attention_dim // c.head_dim,
                                          reduction=c.sra_reduction, window=c.window_tokens, mlp_ratio=ratio,
                                          act=c.act) for _ in range(depth)]
            else:
                layers += [InceptionBlock(w, kernels=c.kernels, branch_ratio=c.branch_ratio, mlp_ratio=ratio,
                                          act=c.act) for _ in range(depth)]
            stages.append(nn.Sequential(*layers))
            width = w
        self.stages = nn.Sequential(*stages)
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(width, c.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.stages(self.stem(x)).mean(dim=-1)
        return self.head(self.dropout(features))

    def extra_repr(self) -> str:
        return str(asdict(self.config))


@register_model(InceptionFormerConfig)
def inceptionformer_tiny(**cfg) -> InceptionFormer:
    """Four stages of widths 32/64/128/256, attention in the last two (``attention`` selects
    full MHSA, spatial-reduction or window attention)."""
    return InceptionFormer(InceptionFormerConfig(**cfg))


@register_model(InceptionFormer3StageConfig)
def inceptionformer_3stage(**cfg) -> InceptionFormer:
    """The tiny variant without its last stage: widths 32/64/128, attention in the third."""
    return InceptionFormer(InceptionFormer3StageConfig(**cfg))
