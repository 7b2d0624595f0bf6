"""Training loop for two targets at once: a window class and a per-sample mask.

``fit`` in ``loop.py`` handles one target; here the loss is
``(1 - seg_weight) * CE(class) + seg_weight * CE(mask)`` on a model that returns
``(class logits (B, K), mask logits (B, M, W))``. A classification-only model (one output)
trains with ``seg_weight=0`` and no mask.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .loop import check_loss, check_rates, check_weights, seed_everything

__all__ = ["MultitaskConfig", "fit_multitask", "predict_multitask"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MultitaskConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    seg_weight: float = 0.5  # share of the mask loss; 0 trains the class only, 1 the mask only

    def __post_init__(self) -> None:
        check_rates(self.lr, self.weight_decay)


def fit_multitask(model: nn.Module, x: np.ndarray, y: np.ndarray, mask: np.ndarray | None, *,
                  config: MultitaskConfig = MultitaskConfig(), progress: bool = True) -> list[float]:
    """Train ``model`` in place on windows ``x`` with classes ``y`` and masks ``mask``; return the epoch losses.

    A class of -1 leaves that window out of the class loss (it still trains the mask). Raises
    ``TrainingDiverged`` as soon as a loss, or after an epoch a weight, is NaN or infinite.
    """
    if not 0.0 <= config.seg_weight <= 1.0:
        raise ValueError(f"seg_weight must be in [0, 1], got {config.seg_weight}")
    if mask is None and config.seg_weight > 0:
        raise ValueError("seg_weight > 0 needs masks")
    generator = seed_everything(config.seed)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    mt = None if mask is None else torch.from_numpy(np.ascontiguousarray(mask, dtype=np.int64))
    ce = nn.CrossEntropyLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = max(1, -(-len(xt) // config.batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.epochs * steps)
    bar = tqdm(total=config.epochs * steps, disable=not progress, unit="batch", dynamic_ncols=True)
    losses = []
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(xt), generator=generator)
        running = 0.0
        for step in range(steps):
            idx = order[step * config.batch_size:(step + 1) * config.batch_size]
            out = model(xt[idx])
            logits, mask_logits = out if isinstance(out, (tuple, list)) else (out, None)
            labelled = yt[idx] >= 0  # y = -1: a window with a mask but no class (e.g. real PPG)
            cls = ce(logits[labelled], yt[idx][labelled]) if labelled.any() else logits.sum() * 0.0
            loss = (1 - config.seg_weight) * cls
            if config.seg_weight > 0:
                loss = loss + config.seg_weight * ce(mask_logits, mt[idx])
            value = loss.item()
            check_loss(value, epoch=epoch, step=step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += value
            bar.update(1)
            bar.set_description(f"epoch {epoch + 1}/{config.epochs} loss {running / (step + 1):.3f}")
        check_weights(model, epoch=epoch)
        losses.append(running / steps)
        log.info("epoch %d: loss %.4f", epoch + 1, losses[-1])
    bar.close()
    return losses


@torch.no_grad()
def predict_multitask(model: nn.Module, x: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray | None]:
    """Float ``(class logits (N, K), mask logits (N, M, W) or None)`` for windows ``x``."""
    model.eval()
    cls, seg = [], []
    for i in range(0, len(x), batch_size):
        out = model(torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size], dtype=np.float32)))
        logits, mask_logits = out if isinstance(out, (tuple, list)) else (out, None)
        cls.append(logits.numpy())
        if mask_logits is not None:
            seg.append(mask_logits.numpy())
    return np.concatenate(cls), (np.concatenate(seg) if seg else None)
