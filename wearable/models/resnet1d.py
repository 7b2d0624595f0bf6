"""1-D ResNet-18: the heavyweight reference point of the ECG model comparison (issue 4).

The ResNet-18 topology (He et al. 2016) with every 2-D layer made 1-D: a stride-2 stem conv
and a stride-2 max pool, four stages of two basic blocks (two convs each) at widths 64, 128,
256, 512 (``base_width`` scales them), mean pooling and a linear head. Every BatchNorm sits
right after a conv inside an ``nn.Sequential`` (folded at export); ReLU only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ._inception_blocks import conv_bn
from ._registry import register_model

__all__ = ["ResNet1dConfig", "ResNet1d", "resnet18_1d"]


@dataclass(frozen=True)
class ResNet1dConfig:
    sampling_rate_hz: float = 100.0
    window_samples: int = 1000
    in_channels: int = 1
    num_classes: int = 3
    base_width: int = 64
    layers: tuple[int, ...] = (2, 2, 2, 2)
    stem_kernel: int = 7
    kernel_size: int = 3
    dropout: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))  # JSON gives lists
        if self.sampling_rate_hz <= 0:
            raise ValueError(f"sampling_rate_hz must be > 0, got {self.sampling_rate_hz}")
        if self.window_samples <= 0 or self.num_classes < 2 or self.in_channels < 1 or self.base_width < 1:
            raise ValueError("window_samples, in_channels and base_width must be > 0, num_classes >= 2")
        if self.kernel_size % 2 == 0 or self.stem_kernel % 2 == 0:
            raise ValueError("kernel sizes must be odd")


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(c_in, c_out, kernel, stride=stride, act="relu"),
                                  conv_bn(c_out, c_out, kernel))
        self.shortcut = conv_bn(c_in, c_out, 1, stride=stride) if stride != 1 or c_in != c_out else nn.Identity()
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ResNet1d(nn.Module):
    def __init__(self, config: ResNet1dConfig) -> None:
        super().__init__()
        self.config = c = config
        width = c.base_width
        self.stem = nn.Sequential(conv_bn(c.in_channels, width, c.stem_kernel, stride=2, act="relu"),
                                  nn.MaxPool1d(3, stride=2, padding=1))
        blocks, c_in = [], width
        for i, n in enumerate(c.layers):
            c_out = c.base_width * 2 ** i
            for j in range(n):
                blocks.append(BasicBlock(c_in, c_out, 2 if (j == 0 and i > 0) else 1, c.kernel_size))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(c_in, c.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.blocks(self.stem(x)).mean(dim=-1)))

    def extra_repr(self) -> str:
        return str(asdict(self.config))


@register_model(ResNet1dConfig)
def resnet18_1d(**cfg) -> ResNet1d:
    """ResNet-18 in 1-D (about 3.9 M parameters at ``base_width=64``)."""
    return ResNet1d(ResNet1dConfig(**cfg))
