"""Fold BatchNorm into the convolution before it.

litert-torch keeps an eval-mode BatchNorm as separate MUL/ADD ops (80 ops instead of 38 on
the trial DS-CNN, 3.4x the NPU cycles), and ``torch.fx`` based fusion fails on blocks that
iterate over ``torch.split`` outputs (shared/notes/conversion.md, trap 4). So we fold by a
plain module walk: inside every ``nn.Sequential`` (where registration order is execution
order), a ``Conv1d``/``Conv2d`` immediately followed by a ``BatchNorm1d``/``BatchNorm2d`` with
running statistics becomes one convolution with bias, and the BatchNorm an ``nn.Identity``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["fold_batchnorm", "count_batchnorm"]

_PAIRS = ((nn.Conv1d, nn.BatchNorm1d), (nn.Conv2d, nn.BatchNorm2d))


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """An eval-mode copy of ``model`` with Conv→BatchNorm pairs folded; ``(copy, n_folded)``.

    The input model is not modified. BatchNorm layers that cannot be folded (not directly
    after a convolution in an ``nn.Sequential``, or without running statistics) are left
    in place; ``count_batchnorm`` tells how many remain.

    >>> net = nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4), nn.ReLU())
    >>> folded, n = fold_batchnorm(net)
    >>> n, type(folded[1]).__name__
    (1, 'Identity')
    """
    folded = copy.deepcopy(model).eval()
    return folded, _fold_children(folded)


def count_batchnorm(model: nn.Module) -> int:
    """Number of BatchNorm modules in ``model``."""
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _fold_children(module: nn.Module) -> int:
    n = 0
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = module._modules[a], module._modules[b]
            if _foldable(conv, bn):
                module._modules[a] = _fold_pair(conv, bn)
                module._modules[b] = nn.Identity()
                n += 1
    for child in module.children():
        n += _fold_children(child)
    return n


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (any(type(conv) is c and type(bn) is b for c, b in _PAIRS)
            and bn.track_running_stats and bn.running_mean is not None
            and bn.num_features == conv.out_channels)


@torch.no_grad()
def _fold_pair(conv: nn.Conv1d | nn.Conv2d, bn: nn.BatchNorm1d | nn.BatchNorm2d) -> nn.Module:
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(conv.out_channels, dtype=torch.float64)
    gamma = bn.weight.detach().double() if bn.affine else torch.ones_like(b)
    beta = bn.bias.detach().double() if bn.affine else torch.zeros_like(b)
    scale = gamma / torch.sqrt(bn.running_var.double() + bn.eps)
    fused = copy.deepcopy(conv)
    fused.weight = nn.Parameter((w * scale.reshape(-1, *([1] * (w.dim() - 1)))).to(conv.weight.dtype))
    fused.bias = nn.Parameter(((b - bn.running_mean.double()) * scale + beta).to(conv.weight.dtype))
    return fused
