"""Masked-reconstruction baseline: the same student encoder learns to fill in hidden PPG patches.

A random ``ratio`` of each window's patches (the encoder's output columns, ``patch_samples``
long) is set to zero (the band-passed signal's mean) and a throw-away linear decoder (one
1x1 convolution from the F features of a column to the ``patch_samples`` samples of its
patch, as in SimMIM) reconstructs them. The loss is the mean squared error over the masked
patches only: the visible ones could be copied through and would teach nothing.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch
from torch import nn

from wearable.models.cmssl import CMSSLStudent

from .pretrain import pretrain_epochs

__all__ = ["patches_mask", "patches_hide", "masked_mse", "masked_pretrain"]

log = logging.getLogger(__name__)


def patches_mask(batch: int, num_patches: int, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """Boolean ``(batch, num_patches)``, True where hidden: ``round(ratio * P)`` patches per window (at least 1)."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"mask ratio must lie in (0, 1), got {ratio}")
    k = min(num_patches, max(1, int(round(ratio * num_patches))))
    ranks = torch.rand(batch, num_patches, generator=generator).argsort(dim=1).argsort(dim=1)
    return ranks < k


def patches_hide(x: torch.Tensor, mask: torch.Tensor, patch_samples: int) -> torch.Tensor:
    """``x`` ``(B, C, W)`` with the samples of every masked patch set to zero."""
    keep = (~mask).repeat_interleave(patch_samples, dim=1).unsqueeze(1).to(x.dtype)
    return x * keep


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the masked patches only; ``pred``/``target`` ``(B, P, S)``, ``mask`` ``(B, P)``."""
    err = (pred - target).pow(2).mean(dim=-1)  # (B, P)
    m = mask.to(err.dtype)
    return (err * m).sum() / m.sum().clamp_min(1.0)


def _patches(x: torch.Tensor, patch_samples: int) -> torch.Tensor:
    """``(B, C, W)`` -> ``(B, P, C * S)``: the samples of each patch, channel after channel."""
    b, c, w = x.shape
    return x.reshape(b, c, w // patch_samples, patch_samples).permute(0, 2, 1, 3).reshape(b, w // patch_samples, -1)


def masked_pretrain(student: CMSSLStudent, x: np.ndarray, *, ratio: float = 0.5, epochs: int = 10,
                    batch_size: int = 64, lr: float = 3e-3, seed: int = 0, progress: bool = True,
                    on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Train ``student.encoder`` (+ a throw-away 1x1 decoder) to reconstruct masked patches of ``x``.

    Returns one report per epoch: the masked-patch MSE relative to the signal's variance
    (1.0 = no better than predicting zero).
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    s = student.config.patch_samples
    decoder = nn.Conv1d(student.config.feature_channels, student.config.in_channels * s, 1)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    var = float(xt.var().clamp_min(1e-8))

    def loss(idx: torch.Tensor) -> torch.Tensor:
        xb = xt[idx]
        mask = patches_mask(len(xb), xb.shape[-1] // s, ratio, gen)
        pred = decoder(student.encoder(patches_hide(xb, mask, s))).transpose(1, 2)  # (B, P, C*S)
        return masked_mse(pred, _patches(xb, s), mask) / var

    return pretrain_epochs(student, [*student.encoder.parameters(), *decoder.parameters()], len(xt), loss,
                           epochs=epochs, batch_size=batch_size, lr=lr, generator=gen, desc="masked",
                           progress=progress, on_epoch=on_epoch)
