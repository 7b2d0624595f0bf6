"""NT-Xent (SimCLR) baseline: the same student encoder pretrained contrastively on one modality."""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from wearable.models.cmssl import CMSSLStudent

from .pretrain import pretrain_epochs

__all__ = ["nt_xent", "windows_augment", "contrastive_pretrain"]

log = logging.getLogger(__name__)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """SimCLR's normalised-temperature cross-entropy over the 2B views ``z1``/``z2`` ``(B, D)``.

    Each view's positive is the other view of its window; the other 2B - 2 views are its
    negatives. Mean over all 2B anchors.
    """
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    sim = z @ z.t() / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))  # a view is not its own pair
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, target)


def windows_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One random view of each window ``(B, C, W)``: time warp, circular shift, scaling, noise."""
    b, c, w = x.shape
    rand = lambda *s: torch.rand(*s, generator=generator)  # noqa: E731
    out = torch.empty_like(x)
    for i in range(b):  # time warp: stretch by 0.9-1.1, keep the first W samples (edge-padded)
        length = int(round(w * (0.9 + 0.2 * rand(1).item())))
        warped = F.interpolate(x[i:i + 1], size=length, mode="linear", align_corners=False)[0]
        out[i] = F.pad(warped, (0, max(0, w - length)), mode="replicate")[:, :w] if length < w else warped[:, :w]
        out[i] = torch.roll(out[i], int(rand(1).item() * w * 0.2) - int(w * 0.1), dims=-1)
    scale = 0.8 + 0.4 * rand(b, 1, 1)
    noise = 0.05 * x.std() * torch.randn(b, c, w, generator=generator)
    return out * scale + noise


def contrastive_pretrain(student: CMSSLStudent, x: np.ndarray, *, epochs: int = 10, batch_size: int = 128,
                         lr: float = 3e-3, temperature: float = 0.2, seed: int = 0, progress: bool = True,
                         on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Train ``student.encoder`` (+ a throw-away 2-layer projection head) with NT-Xent on ``x``."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    f = student.config.feature_channels
    proj = nn.Sequential(nn.Linear(f, f), nn.ReLU(), nn.Linear(f, 32))
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def loss(idx: torch.Tensor) -> torch.Tensor:
        xb = xt[idx]
        return nt_xent(proj(student.features(windows_augment(xb, gen))),
                       proj(student.features(windows_augment(xb, gen))), temperature)

    return pretrain_epochs(student, [*student.encoder.parameters(), *proj.parameters()], len(xt), loss,
                           epochs=epochs, batch_size=batch_size, lr=lr, generator=gen, desc="nt-xent",
                           progress=progress, on_epoch=on_epoch, full_batches_only=True)
