"""Stage 3: a student on a labelled task, scratch, probe or fine-tune.

Regression (heart rate, bpm: ``regression_fit``, scored by MAE) or classification (rhythm:
``classification_fit``, class-balanced cross-entropy, scored by macro F1); one training loop.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from wearable.metrics import macro_f1
from wearable.models.cmssl import CMSSLStudent

from .pretrain import optimizer_step

__all__ = ["MODES", "regression_fit", "regression_mae", "classification_fit", "classification_f1"]

log = logging.getLogger(__name__)

MODES = ("scratch", "probe", "finetune")
_SCALE = 10.0  # bpm per loss unit: the Huber loss is quadratic only within ~10 bpm


@torch.no_grad()
def _outputs(model: nn.Module, x: np.ndarray, batch_size: int = 512) -> torch.Tensor:
    model.eval()
    return torch.cat([model(torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size], dtype=np.float32)))
                      for i in range(0, len(x), batch_size)])


def regression_mae(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Mean absolute error of ``model``'s single output against ``y`` (the target's unit)."""
    pred = _outputs(model, x, batch_size).reshape(-1).numpy()
    return float(np.mean(np.abs(pred - np.asarray(y, dtype=np.float64))))


def classification_f1(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Macro F1 (0-1) of ``model``'s arg-max class against ``y``."""
    logits = _outputs(model, x, batch_size)
    return macro_f1(np.asarray(y), logits.argmax(1).numpy(), logits.shape[1])


def regression_fit(model: CMSSLStudent, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                   *, mode: str = "scratch", steps: int = 600, evals: int = 10, batch_size: int = 64,
                   lr: float = 3e-3, seed: int = 0, progress: bool = True) -> dict[str, float]:
    """Train ``model`` in place on ``train`` = (x, y bpm); keep the weights with the best val MAE.

    ``mode``: "scratch" and "finetune" train every weight (the caller decides whether the
    encoder was pretrained), "probe" trains only ``head`` on a frozen encoder (BatchNorm in eval
    mode). A fixed number of ``steps`` for every label fraction, so 10 % of the labels get the
    same optimisation budget as 100 %. The head's bias starts at the mean training target.
    """
    y = np.asarray(train[1], dtype=np.float32)
    with torch.no_grad():
        model.head.bias.fill_(float(y.mean()))

    def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.smooth_l1_loss(out.reshape(-1) / _SCALE, target / _SCALE)

    best = _fit(model, (train[0], torch.from_numpy(y)), loss, lambda: -regression_mae(model, *val), mode=mode,
                steps=steps, evals=evals, batch_size=batch_size, lr=lr, seed=seed, progress=progress)
    return {"val_mae": -best[0], "best_step": best[1]}


def classification_fit(model: CMSSLStudent, train: tuple[np.ndarray, np.ndarray],
                       val: tuple[np.ndarray, np.ndarray], *, mode: str = "scratch", steps: int = 600,
                       evals: int = 10, batch_size: int = 64, lr: float = 3e-3, seed: int = 0,
                       progress: bool = True) -> dict[str, float]:
    """As ``regression_fit`` for class labels ``y`` (0..num_classes-1): keeps the best val macro F1.

    The cross-entropy weighs each class by the inverse of its training count, so a small label
    subset that happens to be unbalanced does not teach the majority class only.
    """
    y = torch.from_numpy(np.asarray(train[1], dtype=np.int64))
    counts = torch.bincount(y, minlength=model.config.num_classes).float()
    weight = torch.where(counts > 0, counts.sum() / counts.clamp_min(1.0) / len(counts), torch.zeros(()))

    def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out, target, weight=weight)

    best = _fit(model, (train[0], y), loss, lambda: classification_f1(model, *val), mode=mode, steps=steps,
                evals=evals, batch_size=batch_size, lr=lr, seed=seed, progress=progress)
    return {"val_f1": best[0], "best_step": best[1]}


def _fit(model: CMSSLStudent, train: tuple[np.ndarray, torch.Tensor], loss_fn, score_fn, *, mode: str, steps: int,
         evals: int, batch_size: int, lr: float, seed: int, progress: bool) -> tuple[float, int]:
    """The shared loop: AdamW + one-cycle for ``steps`` random batches; keeps the best ``score_fn()`` weights."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; accepted: {', '.join(MODES)}")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(train[0], dtype=np.float32))
    y = train[1]
    for p in model.encoder.parameters():
        p.requires_grad_(mode != "probe")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    best = (float("-inf"), copy.deepcopy(model.state_dict()), 0)
    every = max(1, steps // evals)
    for step in tqdm(range(steps), disable=not progress, unit="batch", dynamic_ncols=True, desc=mode):
        model.train()
        if mode == "probe":
            model.encoder.eval()
        idx = torch.randint(0, len(x), (min(batch_size, len(x)),), generator=gen)
        optimizer_step(loss_fn(model(x[idx]), y[idx]), optimizer, scheduler)
        if (step + 1) % every == 0 or step + 1 == steps:
            score = score_fn()
            log.debug("%s step %d: val score %.4f", mode, step + 1, score)
            if score > best[0]:
                best = (score, copy.deepcopy(model.state_dict()), step + 1)
    model.load_state_dict(best[1])
    for p in model.parameters():
        p.requires_grad_(True)
    return best[0], best[2]
