"""Cross-modal self-supervised student (issue 5) and the VQ tokenizer that teaches it.

The student sees one modality (PPG here) and is pretrained to predict, for each fixed patch,
the code index that the frozen cross-modal tokenizer (``VQTokenizer``, ECG + PPG) assigns to
it; downstream, the code head is dropped and ``head`` (global mean pool -> Linear) is trained.
The encoder is depthwise-separable Conv1d + BatchNorm + ReLU whose total stride equals the
tokenizer's patch length, so its feature map has one column per patch: every op maps to a
TFLite Micro int8 kernel (no GELU, no upsampling; see shared/notes/conversion.md). Each block
can add squeeze-and-excitation channel attention (``se``: mean -> FC -> ReLU -> FC -> sigmoid
-> scale) and a residual shortcut (``residual``: strided 1x1 projection + BatchNorm, added
before the block's last ReLU), for the ablation of both.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ._cmssl_vq import VectorQuantizerEMA, VQTokenizer, VQTokenizerConfig, codebook_usage
from ._registry import register_model

__all__ = ["CMSSLStudentConfig", "CMSSLStudent", "cmssl_student_ppg", "VQTokenizer", "VQTokenizerConfig",
           "VectorQuantizerEMA", "codebook_usage"]


@dataclass(frozen=True)
class CMSSLStudentConfig:
    sampling_rate_hz: float = 64.0
    window_samples: int = 512
    in_channels: int = 1
    num_classes: int = 1  # downstream outputs: 1 for heart-rate regression (bpm)
    stem_channels: int = 16
    stem_kernel: int = 7
    stem_stride: int = 2
    # (out_channels, stride) of each depthwise-separable block; stem x blocks = patch length
    blocks: tuple[tuple[int, int], ...] = ((24, 2), (32, 2), (48, 2), (64, 2))
    kernel_size: int = 9
    dropout: float = 0.1
    residual: bool = False  # projection shortcut around each depthwise-separable block
    se: bool = False  # squeeze-and-excitation after each block's pointwise convolution
    se_reduction: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(tuple(b) for b in self.blocks))  # JSON gives lists
        if self.sampling_rate_hz <= 0 or self.num_classes < 1 or self.in_channels < 1:
            raise ValueError("sampling_rate_hz must be > 0, num_classes and in_channels >= 1")
        if self.window_samples % self.patch_samples:
            raise ValueError(f"window_samples {self.window_samples} is not a multiple of the encoder's "
                             f"total stride {self.patch_samples}")

    @property
    def patch_samples(self) -> int:
        """Input samples per output column of the encoder (its total stride)."""
        return self.stem_stride * math.prod(s for _, s in self.blocks)

    @property
    def feature_channels(self) -> int:
        return self.blocks[-1][0] if self.blocks else self.stem_channels


def _conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm1d(c_out),
        nn.ReLU(),
    )


class _SqueezeExcite(nn.Module):
    """Channel attention: scale each channel by a gate computed from the time-averaged features."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(4, channels // reduction)
        self.gate = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x.mean(dim=-1)).unsqueeze(-1)


class _SeparableBlock(nn.Module):
    """Depthwise (strided) -> pointwise, optional SE and residual shortcut, ReLU last."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, *, residual: bool, se: bool,
                 se_reduction: int) -> None:
        super().__init__()
        self.depthwise = _conv_bn_relu(c_in, c_in, kernel, stride, groups=c_in)
        self.pointwise = nn.Sequential(nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out))
        self.se = _SqueezeExcite(c_out, se_reduction) if se else None
        self.shortcut = (nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out))
                         if residual else None)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pointwise(self.depthwise(x))
        if self.se is not None:
            y = self.se(y)
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return self.relu(y)


class CMSSLStudent(nn.Module):
    """``encoder`` (B, C, W) -> (B, F, W / patch); ``forward`` pools it and applies ``head``."""

    def __init__(self, config: CMSSLStudentConfig) -> None:
        super().__init__()
        self.config = config
        c = config.stem_channels
        layers = [_conv_bn_relu(config.in_channels, c, config.stem_kernel, config.stem_stride)]
        for c_out, stride in config.blocks:
            layers.append(_SeparableBlock(c, c_out, config.kernel_size, stride, residual=config.residual,
                                          se=config.se, se_reduction=config.se_reduction))
            c = c_out
        self.encoder = nn.Sequential(*layers)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(c, config.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled encoder features ``(B, F)``: what a linear probe sees."""
        return self.encoder(x).mean(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))

    def extra_repr(self) -> str:
        return str(asdict(self.config))


@register_model(CMSSLStudentConfig)
def cmssl_student_ppg(**cfg) -> CMSSLStudent:
    """About 10k parameters; 8 s of PPG at 64 Hz in, one output per downstream class (1: HR in bpm)."""
    return CMSSLStudent(CMSSLStudentConfig(**cfg))
