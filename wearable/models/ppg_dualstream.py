"""PPG rhythm class + per-sample artifact mask: dual-stream model and its single-stream baselines.

Classification wants translation invariance (strides and global pooling discard position);
artifact localization is segmentation and wants equivariance (a mask as long as the input
that moves with the artifact). Three registered entries:

- ``ppg_dualstream``: a strided ResNet classification stream (pools freely) and a
  full-resolution dilated localization stream (stride 1, so the mask is equivariant to the
  sample), each with its own features. Outputs ``(class logits (B, K), mask logits (B, 2, W))``.
- ``ppg_singlestream``: one strided 1-D ResNet encoder shared by a classification head and
  a ConvTranspose1d segmentation head (equivariant only up to the encoder stride); same two outputs.
- ``ppg_classifier``: the classification stream alone, widened to about the dual-stream
  model's parameter count, for the "same size" comparison.

Only Conv1d, ConvTranspose1d, BatchNorm (folded at export), ReLU, mean and Linear: every op
has a TFLite Micro int8 kernel (no GELU, no nn.Upsample; see shared/notes/conversion.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._registry import register_model

__all__ = ["PpgDualStreamConfig", "PpgSingleStreamConfig", "PpgClassifierConfig", "PpgDualStream",
           "PpgSingleStream", "PpgClassifier", "ppg_dualstream", "ppg_singlestream", "ppg_classifier"]


def _check(cfg, stride: int) -> None:
    if cfg.sampling_rate_hz <= 0 or cfg.num_classes < 2 or cfg.in_channels < 1:
        raise ValueError("sampling_rate_hz must be > 0, num_classes >= 2, in_channels >= 1")
    if cfg.window_samples <= 0 or cfg.window_samples % stride:
        raise ValueError(f"window_samples must be a positive multiple of the encoder stride {stride}, "
                         f"got {cfg.window_samples}")


@dataclass(frozen=True)
class PpgDualStreamConfig:
    sampling_rate_hz: float = 50.0
    window_samples: int = 512
    in_channels: int = 1
    num_classes: int = 3
    mask_classes: int = 2
    cls_width: int = 14  # classification stream: stem width; 4 strided residual stages double it twice
    loc_width: int = 16  # localization stream: channels at full resolution
    loc_dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32)  # receptive field 2.6 s at 50 Hz: >= one beat

    def __post_init__(self) -> None:
        object.__setattr__(self, "loc_dilations", tuple(int(d) for d in self.loc_dilations))
        _check(self, 32)


@dataclass(frozen=True)
class PpgSingleStreamConfig:
    sampling_rate_hz: float = 50.0
    window_samples: int = 512
    in_channels: int = 1
    num_classes: int = 3
    mask_classes: int = 2
    width: int = 16

    def __post_init__(self) -> None:
        _check(self, 16)


@dataclass(frozen=True)
class PpgClassifierConfig:
    sampling_rate_hz: float = 50.0
    window_samples: int = 512
    in_channels: int = 1
    num_classes: int = 3
    width: int = 15  # 15 gives about the parameter count of the default ppg_dualstream

    def __post_init__(self) -> None:
        _check(self, 32)


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=dilation * (kernel // 2),
                                   dilation=dilation, bias=False), nn.BatchNorm1d(c_out))


class _ResBlock(nn.Module):
    """Basic 1-D ResNet block (two convs, identity or strided 1x1 shortcut)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, dilation: int = 1, kernel: int = 5) -> None:
        super().__init__()
        self.conv1 = _conv_bn(c_in, c_out, kernel, stride, dilation)
        self.conv2 = _conv_bn(c_out, c_out, kernel, 1, dilation)
        self.short = nn.Identity() if stride == 1 and c_in == c_out else _conv_bn(c_in, c_out, 1, stride)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.relu(self.conv1(x))) + self.short(x))


def _encoder(c_in: int, width: int, stages: int) -> tuple[nn.Sequential, int]:
    """Stem (stride 2) + ``stages`` - 1 strided residual stages: total stride 2**stages."""
    layers: list[nn.Module] = [_conv_bn(c_in, width, 7, 2), nn.ReLU()]
    c = width
    for k in range(stages - 1):
        c_out = width * (2 if k >= 1 else 1) * (2 if k >= 3 else 1)
        layers.append(_ResBlock(c, c_out, stride=2))
        c = c_out
    return nn.Sequential(*layers), c


class PpgDualStream(nn.Module):
    def __init__(self, config: PpgDualStreamConfig) -> None:
        super().__init__()
        self.config = config
        self.cls_features, c = _encoder(config.in_channels, config.cls_width, 5)
        self.cls_head = nn.Linear(c, config.num_classes)
        w = config.loc_width
        self.loc_stem = nn.Sequential(_conv_bn(config.in_channels, w, 7), nn.ReLU())
        self.loc_blocks = nn.Sequential(*[_ResBlock(w, w, dilation=d, kernel=3) for d in config.loc_dilations])
        self.loc_head = nn.Conv1d(w, config.mask_classes, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.cls_head(self.cls_features(x).mean(dim=-1))
        return logits, self.loc_head(self.loc_blocks(self.loc_stem(x)))


class PpgSingleStream(nn.Module):
    def __init__(self, config: PpgSingleStreamConfig) -> None:
        super().__init__()
        self.config = config
        self.features, c = _encoder(config.in_channels, config.width, 4)  # stride 16
        self.cls_head = nn.Linear(c, config.num_classes)
        ups: list[nn.Module] = []
        for _ in range(4):  # each ConvTranspose1d doubles the length back: 16x in all
            c_out = max(c // 2, config.width // 2)
            ups += [nn.ConvTranspose1d(c, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm1d(c_out), nn.ReLU()]
            c = c_out
        self.seg_head = nn.Sequential(*ups, nn.Conv1d(c, config.mask_classes, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.cls_head(h.mean(dim=-1)), self.seg_head(h)


class PpgClassifier(nn.Module):
    def __init__(self, config: PpgClassifierConfig) -> None:
        super().__init__()
        self.config = config
        self.cls_features, c = _encoder(config.in_channels, config.width, 5)
        self.cls_head = nn.Linear(c, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls_head(self.cls_features(x).mean(dim=-1))


@register_model(PpgDualStreamConfig)
def ppg_dualstream(**cfg) -> PpgDualStream:
    """Classification stream + full-resolution localization stream; two outputs."""
    return PpgDualStream(PpgDualStreamConfig(**cfg))


@register_model(PpgSingleStreamConfig)
def ppg_singlestream(**cfg) -> PpgSingleStream:
    """Shared strided ResNet encoder, classification head + ConvTranspose1d mask head; two outputs."""
    return PpgSingleStream(PpgSingleStreamConfig(**cfg))


@register_model(PpgClassifierConfig)
def ppg_classifier(**cfg) -> PpgClassifier:
    """Classification only, about the parameter count of the default ``ppg_dualstream``."""
    return PpgClassifier(PpgClassifierConfig(**cfg))
