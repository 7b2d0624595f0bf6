"""1-D MobileNetV2: the mobile reference point of the ECG model comparison (issue 4).

MobileNetV2 (Sandler et al. 2018) with every 2-D layer made 1-D: a stride-2 stem, the
paper's inverted-residual table (expansion t, width c, repeats n, stride s) scaled by
``width_mult``, a 1x1 conv to ``last_channels``, mean pooling and a linear head. ReLU6 and
Conv→BatchNorm pairs inside ``nn.Sequential`` only (folded at export; RELU6 runs in TFLite
Micro).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ._registry import register_model

__all__ = ["MobileNetV2_1dConfig", "MobileNetV2_1d", "mobilenetv2_1d"]

# (expansion, channels, repeats, first stride): MobileNetV2, table 2
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
             (6, 320, 1, 1))


@dataclass(frozen=True)
class MobileNetV2_1dConfig:  # noqa: N801 (the architecture's name)
    sampling_rate_hz: float = 100.0
    window_samples: int = 1000
    in_channels: int = 1
    num_classes: int = 3
    width_mult: float = 1.0
    kernel_size: int = 3
    last_channels: int = 1280
    dropout: float = 0.2

    def __post_init__(self) -> None:
        if self.sampling_rate_hz <= 0:
            raise ValueError(f"sampling_rate_hz must be > 0, got {self.sampling_rate_hz}")
        if self.window_samples <= 0 or self.num_classes < 2 or self.in_channels < 1 or self.width_mult <= 0:
            raise ValueError("window_samples, in_channels and width_mult must be > 0, num_classes >= 2")
        if self.kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd")


def _divisible(v: float, divisor: int = 8) -> int:
    # The reference implementation's channel rounding (never more than 10 % below v).
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def _cbr(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv1d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm1d(c_out)]
    return nn.Sequential(*layers, nn.ReLU6()) if act else nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int, kernel: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        layers = [_cbr(c_in, hidden)] if expansion != 1 else []
        layers += [_cbr(hidden, hidden, kernel, stride, groups=hidden), _cbr(hidden, c_out, act=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2_1d(nn.Module):  # noqa: N801
    def __init__(self, config: MobileNetV2_1dConfig) -> None:
        super().__init__()
        self.config = c = config
        width = _divisible(32 * c.width_mult)
        layers: list[nn.Module] = [_cbr(c.in_channels, width, c.kernel_size, 2)]
        for t, ch, n, s in _SETTINGS:
            c_out = _divisible(ch * c.width_mult)
            for i in range(n):
                layers.append(InvertedResidual(width, c_out, s if i == 0 else 1, t, c.kernel_size))
                width = c_out
        last = _divisible(c.last_channels * max(1.0, c.width_mult))
        layers.append(_cbr(width, last))
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(last, c.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x).mean(dim=-1)))

    def extra_repr(self) -> str:
        return str(asdict(self.config))


@register_model(MobileNetV2_1dConfig)
def mobilenetv2_1d(**cfg) -> MobileNetV2_1d:
    """MobileNetV2 in 1-D (about 2.2 M parameters at ``width_mult=1``)."""
    return MobileNetV2_1d(MobileNetV2_1dConfig(**cfg))
