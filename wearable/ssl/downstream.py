"""Stage 3: a student on a labelled regression task (heart rate, bpm): scratch, probe or fine-tune."""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from wearable.models.cmssl import CMSSLStudent

from .pretrain import optimizer_step

__all__ = ["MODES", "regression_fit", "regression_mae"]

log = logging.getLogger(__name__)

MODES = ("scratch", "probe", "finetune")
_SCALE = 10.0  # bpm per loss unit: the Huber loss is quadratic only within ~10 bpm


@torch.no_grad()
def regression_mae(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Mean absolute error of ``model``'s single output against ``y`` (the target's unit)."""
    model.eval()
    pred = torch.cat([model(torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size], dtype=np.float32)))
                      for i in range(0, len(x), batch_size)]).reshape(-1).numpy()
    return float(np.mean(np.abs(pred - np.asarray(y, dtype=np.float64))))


def regression_fit(model: CMSSLStudent, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                   *, mode: str = "scratch", steps: int = 600, evals: int = 10, batch_size: int = 64,
                   lr: float = 3e-3, seed: int = 0, progress: bool = True) -> dict[str, float]:
    """Train ``model`` in place on ``train`` = (x, y bpm); keep the weights with the best val MAE.

    ``mode``: "scratch" and "finetune" train every weight (the caller decides whether the
    encoder was pretrained), "probe" trains only ``head`` on a frozen encoder (BatchNorm in eval
    mode). A fixed number of ``steps`` for every label fraction, so 10 % of the labels get the
    same optimisation budget as 100 %. The head's bias starts at the mean training target.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; accepted: {', '.join(MODES)}")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(train[0], dtype=np.float32))
    y = torch.from_numpy(np.ascontiguousarray(train[1], dtype=np.float32))
    with torch.no_grad():
        model.head.bias.fill_(float(y.mean()))
    for p in model.encoder.parameters():
        p.requires_grad_(mode != "probe")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    best = (float("inf"), copy.deepcopy(model.state_dict()), 0)
    every = max(1, steps // evals)
    for step in tqdm(range(steps), disable=not progress, unit="batch", dynamic_ncols=True, desc=mode):
        model.train()
        if mode == "probe":
            model.encoder.eval()
        idx = torch.randint(0, len(x), (min(batch_size, len(x)),), generator=gen)
        optimizer_step(F.smooth_l1_loss(model(x[idx]).reshape(-1) / _SCALE, y[idx] / _SCALE), optimizer, scheduler)
        if (step + 1) % every == 0 or step + 1 == steps:
            mae = regression_mae(model, *val)
            log.debug("%s step %d: val MAE %.2f", mode, step + 1, mae)
            if mae < best[0]:
                best = (mae, copy.deepcopy(model.state_dict()), step + 1)
    model.load_state_dict(best[1])
    for p in model.parameters():
        p.requires_grad_(True)
    return {"val_mae": best[0], "best_step": best[2]}
