"""Depthwise-separable 1-D CNN: the small reference classifier of the foundation pipeline.

Only Conv1d, BatchNorm (folded at export), ReLU, mean pooling and Linear: every op maps to a
TFLite Micro int8 kernel (no GELU, no upsampling; see shared/notes/conversion.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ._registry import register_model

__all__ = ["DSCNNConfig", "DSCNNRhythmConfig", "DSCNN", "dscnn_tiny", "dscnn_rhythm"]


@dataclass(frozen=True)
class DSCNNConfig:
    sampling_rate_hz: float = 100.0
    window_samples: int = 1000
    in_channels: int = 1
    num_classes: int = 5
    stem_channels: int = 16
    stem_kernel: int = 7
    stem_stride: int = 2
    # (out_channels, stride) of each depthwise-separable block
    blocks: tuple[tuple[int, int], ...] = ((24, 2), (32, 2), (48, 2), (64, 2))
    kernel_size: int = 9
    dropout: float = 0.1
    # "relu6" bounds every activation to [0, 6]: int8 ranges calibrated on a few hundred windows then
    # cover what the model meets later (an unbounded ReLU's tail clipped the rhythm model's logits)
    activation: str = "relu"

    def __post_init__(self) -> None:
        if self.sampling_rate_hz <= 0:
            raise ValueError(f"sampling_rate_hz must be > 0, got {self.sampling_rate_hz}")
        if self.window_samples <= 0 or self.num_classes < 2:
            raise ValueError("window_samples must be > 0 and num_classes >= 2")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(_ACTIVATIONS)}, got {self.activation!r}")
        # JSON round trips turn tuples into lists; keep the dataclass hashable
        object.__setattr__(self, "blocks", tuple(tuple(b) for b in self.blocks))


_ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6}


def _conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                  activation: str = "relu") -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm1d(c_out),
        _ACTIVATIONS[activation](),
    )


class DSCNN(nn.Module):
    def __init__(self, config: DSCNNConfig) -> None:
        super().__init__()
        self.config = config
        c = config.stem_channels
        act = config.activation
        layers = [_conv_bn_relu(config.in_channels, c, config.stem_kernel, config.stem_stride, activation=act)]
        for c_out, stride in config.blocks:
            layers.append(_conv_bn_relu(c, c, config.kernel_size, stride, groups=c, activation=act))  # depthwise
            layers.append(_conv_bn_relu(c, c_out, 1, activation=act))  # pointwise
            c = c_out
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(c, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x).mean(dim=-1)
        return self.head(self.dropout(features))

    def extra_repr(self) -> str:
        return str(asdict(self.config))


@register_model(DSCNNConfig)
def dscnn_tiny(**cfg) -> DSCNN:
    """About 10k parameters; 10 s at 100 Hz in, one class logit vector out."""
    return DSCNN(DSCNNConfig(**cfg))


@dataclass(frozen=True)
class DSCNNRhythmConfig(DSCNNConfig):
    """The DS-CNN sized for rhythm on handheld ECG: 9 s windows, four Challenge 2017 classes, twice
    the stem width, a fifth block and ReLU6 (about 45k parameters, 2.2 M MACs, 74 KB as int8)."""

    window_samples: int = 900
    num_classes: int = 4
    stem_channels: int = 32
    blocks: tuple[tuple[int, int], ...] = ((48, 2), (64, 2), (96, 2), (128, 2), (128, 1))
    activation: str = "relu6"


@register_model(DSCNNRhythmConfig)
def dscnn_rhythm(**cfg) -> DSCNN:
    """The shipped rhythm model for single-lead handheld ECG (normal, af, other, noisy)."""
    return DSCNN(DSCNNRhythmConfig(**cfg))
