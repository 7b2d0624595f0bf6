"""Building blocks of the ECG-CL multi-resolution backbone (Zhou et al., arXiv 2304.04646).

Only Conv1d (+BatchNorm, folded at export), ConvTranspose1d, ReLU, add, channel split,
mean pooling and Linear: every op has a TFLite Micro int8 kernel. Up-sampling is a
transposed convolution with kernel == stride (no ``nn.Upsample``: it becomes GATHER ops,
see shared/notes/conversion.md, trap 2). Transposed convolutions carry no BatchNorm because
``quantize.fold_batchnorm`` only folds Conv->BN pairs; they have no bias either, so every
weight of the backbone is a convolution kernel that a continual-learning mask can cover.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["conv_bn", "ResidualBlock", "BranchPartition", "BranchMerge", "ECGCLBackbone", "SegmentationDecoder",
           "ClassificationDecoder"]


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    """Conv1d without bias, BatchNorm, optional ReLU; 'same' padding for odd kernels."""
    layers: list[nn.Module] = [nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
                               nn.BatchNorm1d(c_out)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """Two-layer residual convolution block: relu(x + bn(conv(relu(bn(conv(x))))))."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels, kernel), conv_bn(channels, channels, kernel, relu=False))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.body(x))


class BranchPartition(nn.Module):
    """Split the lowest branch's filters: half stay at its resolution, half go one level down.

    The filters are two groups of convolutions (rather than one convolution and a channel
    split): mathematically the same, one op fewer in TFLite, and structured pruning can
    narrow each group on its own.
    """

    def __init__(self, channels: int, next_channels: int, kernel: int) -> None:
        super().__init__()
        self.keep = conv_bn(channels, channels, kernel)
        self.down = conv_bn(channels, next_channels, kernel, stride=2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.keep(x), self.down(x)


def _down_path(c_in: int, c_out: int, levels: int) -> nn.Sequential:
    """``levels`` stride-2 convolutions (HRNet style); the last one without ReLU (it is summed)."""
    layers = [conv_bn(c_in, c_in, 3, stride=2) for _ in range(levels - 1)]
    layers.append(conv_bn(c_in, c_out, 3, stride=2, relu=False))
    return nn.Sequential(*layers)


class BranchMerge(nn.Module):
    """Join branches into the resolutions listed in ``outputs``.

    Output branch ``j`` = relu(sum over input branches ``i``): identity for ``i == j``,
    strided convolutions for higher-resolution inputs (``i < j``), a transposed convolution
    with kernel = stride = ``2**(i-j)`` for lower-resolution inputs (``i > j``).
    """

    def __init__(self, channels: tuple[int, ...], outputs: tuple[int, ...]) -> None:
        super().__init__()
        self.outputs = outputs
        self.paths = nn.ModuleDict()
        for j in outputs:
            for i, c_in in enumerate(channels):
                if i < j:
                    self.paths[f"{i}to{j}"] = _down_path(c_in, channels[j], j - i)
                elif i > j:
                    s = 2 ** (i - j)
                    self.paths[f"{i}to{j}"] = nn.ConvTranspose1d(c_in, channels[j], s, stride=s, bias=False)
        self.relu = nn.ReLU()

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for j in self.outputs:
            acc = xs[j]
            for i, x in enumerate(xs):
                if i != j:
                    acc = acc + self.paths[f"{i}to{j}"](x)
            out.append(self.relu(acc))
        return out


class ECGCLBackbone(nn.Module):
    """Four stages; stage ``k`` runs ``k`` parallel branches at 1/2, 1/4, 1/8, 1/16 of the input rate.

    Each stage: ``blocks`` residual blocks per branch, a branch merge (stages 2-4), then a
    branch partition of the lowest branch that opens the next stage's new branch. The last
    merge computes only the branch asked for: ``forward(x, "high")`` gives the rate-1/2
    features for segmentation, ``forward(x, "low")`` the lowest branch for classification;
    ``outputs`` lists the ones built.
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...], kernel: int, blocks: int,
                 outputs: tuple[str, ...] = ("high", "low")) -> None:
        super().__init__()
        self.channels = channels
        n = len(channels)
        self.stem = conv_bn(in_channels, channels[0], kernel, stride=2)
        self.stages = nn.ModuleList()
        self.merges = nn.ModuleList()
        self.partitions = nn.ModuleList()
        for k in range(1, n + 1):
            self.stages.append(nn.ModuleList(
                nn.Sequential(*[ResidualBlock(channels[b], kernel) for _ in range(blocks)]) for b in range(k)))
            if 1 < k < n:
                self.merges.append(BranchMerge(channels[:k], tuple(range(k))))
            if k < n:
                self.partitions.append(BranchPartition(channels[k - 1], channels[k], kernel))
        # a single-task model builds only the last merge it uses (no dead weights to export or prune)
        self.heads = nn.ModuleDict({name: BranchMerge(channels, (0,) if name == "high" else (n - 1,))
                                    for name in outputs})

    def forward(self, x: torch.Tensor, output: str) -> torch.Tensor:
        """Features of branch 0 (``output="high"``, rate 1/2) or of the lowest branch ("low")."""
        xs = [self.stem(x)]
        n = len(self.channels)
        for k in range(1, n + 1):
            xs = [blocks(b) for blocks, b in zip(self.stages[k - 1], xs)]
            if 1 < k < n:
                xs = self.merges[k - 2](xs)
            if k < n:
                keep, down = self.partitions[k - 1](xs[-1])
                xs = xs[:-1] + [keep, down]
        return self.heads[output](xs)[0]


class SegmentationDecoder(nn.Module):
    """Per-sample logits at the input length from the rate-1/2 branch (transposed conv x2 up)."""

    def __init__(self, channels: int, num_classes: int, kernel: int) -> None:
        super().__init__()
        self.body = conv_bn(channels, channels, kernel)
        self.up = nn.ConvTranspose1d(channels, channels, 2, stride=2)
        self.relu = nn.ReLU()
        self.out = nn.Conv1d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.relu(self.up(self.body(x))))


class ClassificationDecoder(nn.Module):
    """Window logits from the lowest branch: 1x1 conv, then mean over time (``pool="mean"``) or
    flatten (``pool="flatten"``, needs ``length``: the branch's time steps), then linear.

    The mean is blind to where in the window a feature occurs; flattening keeps the position,
    which a beat classifier needs to tell the centre beat from its neighbours.
    """

    def __init__(self, channels: int, num_classes: int, hidden: int, dropout: float, pool: str = "mean",
                 length: int | None = None) -> None:
        super().__init__()
        if pool not in ("mean", "flatten") or (pool == "flatten" and not length):
            raise ValueError(f"pool must be 'mean' or 'flatten' (with a length), got {pool!r}")
        self.pool = pool
        self.body = conv_bn(channels, hidden, 1)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden * (length if pool == "flatten" else 1), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        h = h.mean(dim=-1) if self.pool == "mean" else h.flatten(1)
        return self.out(self.dropout(h))
