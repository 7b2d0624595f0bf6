"""ECG-CL multi-resolution backbone with one task decoder (Zhou et al., arXiv 2304.04646).

The registered models are single-task networks: the backbone of ``_ecgcl_blocks`` plus a
segmentation decoder (per-sample logits, from the rate-1/2 branch) or a classification
decoder (window logits, from the lowest branch). The continual-learning network of
``wearable.continual`` shares one backbone between several tasks; exporting one of its
tasks (``wearable.continual.task_export``) gives one of these plain models, which is what
``quantize.export`` converts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ._ecgcl_blocks import ClassificationDecoder, ECGCLBackbone, SegmentationDecoder
from ._registry import register_model

__all__ = ["ECGCLConfig", "ECGCL", "HEADS", "decoder_build", "ecgcl_tiny", "ecgcl_seg_tiny"]

HEADS = ("classification", "segmentation")


@dataclass(frozen=True)
class ECGCLConfig:
    sampling_rate_hz: float = 100.0
    window_samples: int = 256
    in_channels: int = 1
    num_classes: int = 5
    head: str = "classification"  # or "segmentation": (N, K, W) per-sample logits
    # width of each of the four branches (rates 1/2, 1/4, 1/8, 1/16 of the input)
    channels: tuple[int, ...] = (8, 16, 24, 32)
    kernel_size: int = 5
    blocks: int = 1  # residual blocks per branch and stage
    hidden: int = 32  # classification decoder width
    pool: str = "mean"  # classification decoder: "mean" over time or "flatten" (keeps the position)
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.sampling_rate_hz <= 0:
            raise ValueError(f"sampling_rate_hz must be > 0, got {self.sampling_rate_hz}")
        if self.window_samples <= 0 or self.num_classes < 2:
            raise ValueError("window_samples must be > 0 and num_classes >= 2")
        if self.pool not in ("mean", "flatten"):
            raise ValueError(f"pool must be 'mean' or 'flatten', got {self.pool!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))  # JSON gives lists
        if len(self.channels) < 2 or min(self.channels) < 1 or self.blocks < 1 or self.kernel_size % 2 == 0:
            raise ValueError("need >= 2 branches of >= 1 channel, blocks >= 1 and an odd kernel_size")
        stride = 2 ** len(self.channels)  # stem /2, then /2 per extra branch: lengths must divide exactly
        if self.window_samples % stride:
            raise ValueError(f"window_samples must be a multiple of {stride}, got {self.window_samples}")


def decoder_build(config: ECGCLConfig, head: str, num_classes: int) -> nn.Module:
    """A fresh decoder of kind ``head`` for ``config``'s backbone."""
    if head == "segmentation":
        return SegmentationDecoder(config.channels[0], num_classes, config.kernel_size)
    length = config.window_samples // 2 ** len(config.channels)  # time steps of the lowest branch
    return ClassificationDecoder(config.channels[-1], num_classes, config.hidden, config.dropout, config.pool, length)


class ECGCL(nn.Module):
    """Backbone + the decoder named by ``config.head``; input ``(N, in_channels, window_samples)``."""

    def __init__(self, config: ECGCLConfig) -> None:
        super().__init__()
        self.config = config
        self._output = "high" if config.head == "segmentation" else "low"
        self.backbone = ECGCLBackbone(config.in_channels, config.channels, config.kernel_size, config.blocks,
                                      outputs=(self._output,))
        self.decoder = decoder_build(config, config.head, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.backbone(x, self._output))

    def extra_repr(self) -> str:
        return str(asdict(self.config))


@register_model(ECGCLConfig)
def ecgcl_tiny(**cfg) -> ECGCL:
    """ECG-CL backbone + classification decoder (AAMI beats by default), 2.56 s at 100 Hz."""
    return ECGCL(ECGCLConfig(**cfg))


@register_model(ECGCLConfig)
def ecgcl_seg_tiny(**cfg) -> ECGCL:
    """ECG-CL backbone + segmentation decoder (background/QRS by default), 2.56 s at 100 Hz."""
    return ECGCL(ECGCLConfig(**{"head": "segmentation", "num_classes": 2, **cfg}))
