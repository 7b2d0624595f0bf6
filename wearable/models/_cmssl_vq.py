"""Cross-modal VQ-VAE tokenizer: patch encoder/decoder over paired ECG + PPG, one shared codebook.

The tokenizer only runs at pretraining time (it makes the students' pseudo-labels), so it is
free to use ops that TFLite Micro lacks (transposed convolutions); it is not registered.
Codebook collapse is the known failure of VQ-VAEs, hence EMA codebook updates (no codebook
gradient, van den Oord et al. 2017 appendix) and dead-code restarts from encoder outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["VQTokenizerConfig", "VectorQuantizerEMA", "VQTokenizer", "codebook_usage"]


def codebook_usage(indices: np.ndarray | torch.Tensor, num_codes: int) -> dict[str, float]:
    """Fraction of the ``num_codes`` codes used at least once, and the perplexity exp(H(p)).

    >>> codebook_usage(np.array([0, 0, 1, 1]), 4)
    {'fraction_used': 0.5, 'perplexity': 2.0}
    """
    idx = torch.as_tensor(np.asarray(indices)).reshape(-1).long()
    counts = torch.bincount(idx, minlength=num_codes).double()
    p = counts / max(counts.sum().item(), 1.0)
    entropy = -(p[p > 0] * p[p > 0].log()).sum().item()
    return {"fraction_used": float((counts > 0).sum().item() / num_codes), "perplexity": float(math.exp(entropy))}


class VectorQuantizerEMA(nn.Module):
    """Nearest-code quantizer with EMA codebook, straight-through gradient and dead-code restarts.

    Input and output ``(B, D, T)``; also returns the code indices ``(B, T)`` and the
    commitment loss. In training mode each call updates the codebook: EMA of the assigned
    vectors' counts and sums (Laplace-smoothed), then every code whose EMA count fell below
    ``dead_threshold`` is moved onto a random encoder output of the batch, so unused codes come
    back instead of staying dead. The codebook is initialised from the first training batch.
    """

    def __init__(self, num_codes: int, dim: int, *, decay: float = 0.99, commitment: float = 0.25,
                 dead_threshold: float = 0.5, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_codes, self.dim, self.decay, self.commitment = num_codes, dim, decay, commitment
        self.dead_threshold, self.eps = dead_threshold, eps
        self.register_buffer("codebook", torch.randn(num_codes, dim))
        self.register_buffer("cluster_size", torch.ones(num_codes))
        self.register_buffer("embed_sum", self.codebook.clone())
        self.register_buffer("initialized", torch.tensor(False))
        self.restarts = 0  # dead codes restarted since construction (for the usage report)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, d, t = z.shape
        flat = z.permute(0, 2, 1).reshape(-1, d)
        if self.training and not bool(self.initialized):
            self._init_from(flat.detach())
        idx = self.assign(flat)
        if self.training:
            self._ema_update(flat.detach(), idx)
            self._restart_dead(flat.detach())
        q = self.codebook[idx]
        loss = self.commitment * F.mse_loss(flat, q.detach())
        q = flat + (q - flat).detach()  # straight-through: the decoder's gradient reaches the encoder
        return q.reshape(b, t, d).permute(0, 2, 1), idx.reshape(b, t), loss

    def assign(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code (squared Euclidean) for each row of ``flat`` ``(n, D)``."""
        dist = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.t()
                + self.codebook.pow(2).sum(1)[None, :])
        return dist.argmin(dim=1)

    @torch.no_grad()
    def _init_from(self, flat: torch.Tensor) -> None:
        pick = torch.randint(0, flat.shape[0], (self.num_codes,))
        self.codebook.copy_(flat[pick])
        self.embed_sum.copy_(flat[pick])
        self.cluster_size.fill_(1.0)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, idx: torch.Tensor) -> None:
        onehot = F.one_hot(idx, self.num_codes).type(flat.dtype)
        self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n
        self.codebook.copy_(self.embed_sum / smoothed[:, None])

    @torch.no_grad()
    def _restart_dead(self, flat: torch.Tensor) -> None:
        dead = torch.nonzero(self.cluster_size < self.dead_threshold).reshape(-1)
        if dead.numel() == 0:
            return
        pick = torch.randint(0, flat.shape[0], (dead.numel(),))
        # a little noise: two restarts onto the same vector would otherwise stay twins
        fresh = flat[pick] + 0.01 * flat.std() * torch.randn(dead.numel(), self.dim)
        self.codebook[dead] = fresh
        self.embed_sum[dead] = fresh  # with cluster_size 1 the EMA keeps the code where it was put
        self.cluster_size[dead] = 1.0
        self.restarts += int(dead.numel())


@dataclass(frozen=True)
class VQTokenizerConfig:
    sampling_rate_hz: float = 64.0
    window_samples: int = 512
    in_channels: int = 2  # ECG, PPG
    patch_samples: int = 32  # fixed patches: 0.5 s at 64 Hz
    hidden: int = 64
    code_dim: int = 32
    num_codes: int = 64
    context_kernel: int = 3  # neighbouring patches the encoder sees (odd)
    decay: float = 0.99
    commitment: float = 0.25
    dead_threshold: float = 1.0  # EMA assignments per batch (Jukebox)

    def __post_init__(self) -> None:
        if self.window_samples % self.patch_samples:
            raise ValueError(f"window_samples {self.window_samples} is not a multiple of patch_samples "
                             f"{self.patch_samples}")
        if self.context_kernel % 2 == 0 or self.num_codes < 2:
            raise ValueError("context_kernel must be odd and num_codes >= 2")

    @property
    def num_patches(self) -> int:
        return self.window_samples // self.patch_samples


class VQTokenizer(nn.Module):
    """Patch encoder -> shared codebook -> patch decoder; reconstructs every input channel.

    ``forward(x)`` with ``x`` ``(B, C, W)`` returns the reconstruction ``(B, C, W)``, the code
    indices ``(B, W // patch_samples)`` and the commitment loss; ``tokenize(x)`` the indices only.
    """

    def __init__(self, config: VQTokenizerConfig = VQTokenizerConfig()) -> None:
        super().__init__()
        self.config = c = config
        pad = c.context_kernel // 2
        # input BatchNorm: ECG (mV, std ~0.2) and scaled PPG (std ~1.5) would otherwise not weigh alike
        self.encoder = nn.Sequential(
            nn.BatchNorm1d(c.in_channels, affine=False),
            nn.Conv1d(c.in_channels, c.hidden, c.patch_samples, stride=c.patch_samples), nn.ReLU(),
            nn.Conv1d(c.hidden, c.hidden, c.context_kernel, padding=pad), nn.ReLU(),
            nn.Conv1d(c.hidden, c.code_dim, 1))
        self.quantizer = VectorQuantizerEMA(c.num_codes, c.code_dim, decay=c.decay, commitment=c.commitment,
                                            dead_threshold=c.dead_threshold)
        self.decoder = nn.Sequential(
            nn.Conv1d(c.code_dim, c.hidden, c.context_kernel, padding=pad), nn.ReLU(),
            nn.ConvTranspose1d(c.hidden, c.in_channels, c.patch_samples, stride=c.patch_samples))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q, idx, commit = self.quantizer(self.encoder(x))
        return self.decoder(q), idx, commit

    @torch.no_grad()
    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        """Code index of every patch, ``(B, num_patches)``; does not touch the codebook."""
        z = self.encoder(x)
        b, d, t = z.shape
        return self.quantizer.assign(z.permute(0, 2, 1).reshape(-1, d)).reshape(b, t)
