"""Training recipe for rhythm models on whole recordings (Challenge 2017): random crops, class
balance, wearable augmentation, best epoch by the record-level challenge score on validation.

Each step draws a batch of recordings with probability ``count(label) ** -balance_power`` (0.5:
between plain shuffling and equal classes), cuts one window at a random position out of each (the
time-shift augmentation; a recording shorter than the window is padded at its start with zeros,
which only a few 9 s recordings need), perturbs it with ``wearable.data.ecg_windows_augment``
(polarity, gain, baseline, noise, NSTDB em/ma/bw) and trains with label-smoothed cross-entropy
under a one-cycle AdamW schedule. After every epoch the validation recordings are classified the
way the runtime does it (``record_probs``: windows of ``runtime.record_window_starts``, the
``runtime.record`` vote) and the weights of the epoch with the best challenge score are kept.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from wearable.data import NoiseBank, challenge_score, ecg_windows_augment
from wearable.runtime.record import record_labels, record_probs

__all__ = ["RhythmRecipe", "record_probs", "record_labels", "rhythm_fit", "torch_predict"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RhythmRecipe:
    epochs: int = 30
    samples_per_epoch: int = 8192
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.05
    balance_power: float = 0.5
    p_noise: float = 0.3
    seed: int = 0


def _crops(signals: tuple[np.ndarray, ...], idx: np.ndarray, rng: np.random.Generator, w: int) -> np.ndarray:
    out = np.zeros((len(idx), w), dtype=np.float32)
    for row, i in enumerate(idx):
        s = signals[i]
        if s.size <= w:
            out[row, w - s.size:] = s
        else:
            a = int(rng.integers(0, s.size - w + 1))
            out[row] = s[a:a + w]
    return out


def torch_predict(model: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(model(torch.from_numpy(x)), dim=-1).numpy()
    return predict


def rhythm_fit(model: nn.Module, train, val, *, labels: tuple[str, ...], window: int, hop: int, sampling_rate: float,
               recipe: RhythmRecipe = RhythmRecipe(), noise: NoiseBank | None = None,
               progress: bool = True) -> dict:
    """Train ``model`` in place on ``train`` (``Challenge2017Signals``), keep the best-validation epoch;
    returns ``{"best_epoch", "best_val_score", "history"}``."""
    from wearable.training.loop import seed_everything

    seed_everything(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    counts = np.bincount(train.y, minlength=len(labels)).astype(np.float64)
    p = np.maximum(counts, 1.0)[train.y] ** -recipe.balance_power
    p /= p.sum()
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps = max(1, recipe.samples_per_epoch // recipe.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=recipe.epochs * steps)
    best: dict = {"best_epoch": 0, "best_val_score": -1.0, "history": []}
    state = None
    truth = [labels[i] for i in val.y]
    bar = tqdm(total=recipe.epochs * steps, disable=not progress, unit="batch", dynamic_ncols=True)
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        running = 0.0
        for _ in range(steps):
            idx = rng.choice(len(train.y), recipe.batch_size, p=p)
            xb = ecg_windows_augment(_crops(train.signals, idx, rng, window), rng, sampling_rate=sampling_rate,
                                     noise=noise, p_noise=recipe.p_noise)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(torch.from_numpy(xb[:, None, :])), torch.from_numpy(train.y[idx]))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training diverged at epoch {epoch} (loss {loss.item()})")
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += loss.item()
            bar.update(1)
        model.eval()
        probs = record_probs(torch_predict(model), val.signals, window=window, hop=hop)
        score = challenge_score(truth, record_labels(probs, val.signals, labels, window=window))
        best["history"].append({"epoch": epoch, "loss": round(running / steps, 4),
                                "val_score": round(score["score"], 4)})
        log.info("epoch %d: loss %.4f, val challenge score %.4f", epoch, running / steps, score["score"])
        if score["score"] > best["best_val_score"]:
            best.update(best_epoch=epoch, best_val_score=score["score"])
            state = copy.deepcopy(model.state_dict())
    bar.close()
    if state is not None:
        model.load_state_dict(state)
    return best
