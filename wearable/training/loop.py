"""Supervised training loop for classification (N,) and segmentation (N, W) targets."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from wearable.metrics import classification_report

from .checkpoint import nonfinite_tensors

__all__ = ["TrainConfig", "TrainingDiverged", "fit", "predict", "evaluate", "seed_everything", "class_weights",
           "check_loss", "check_weights", "check_rates"]

log = logging.getLogger(__name__)


class Windows(Protocol):  # what wearable.data.WindowSet provides
    x: np.ndarray
    y: np.ndarray
    labels: tuple[str, ...]


class TrainingDiverged(RuntimeError):
    """The loss or a weight became NaN or infinite: the model is unusable and is not to be saved."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    balanced: bool = True  # inverse-frequency class weights: AAMI beats are ~90 % N

    def __post_init__(self) -> None:
        check_rates(self.lr, self.weight_decay)


def check_rates(lr: float, weight_decay: float) -> None:
    """``ValueError`` unless ``lr`` is finite and > 0 and ``weight_decay`` finite and >= 0 (an infinite
    learning rate makes every weight NaN after one step, and AdamW accepts it)."""
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"learning rate must be a finite number > 0, got {lr}")
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight decay must be a finite number >= 0, got {weight_decay}")


def check_loss(value: float, *, epoch: int, step: int) -> None:
    """``TrainingDiverged`` when the loss of a step is NaN or infinite (checked before the step is taken)."""
    if not math.isfinite(value):
        raise TrainingDiverged(f"training diverged: the loss is {value} at epoch {epoch + 1}, batch {step + 1} "
                               "(lower the learning rate)")


def check_weights(model: nn.Module, *, epoch: int) -> None:
    """``TrainingDiverged`` when a weight or buffer of ``model`` is NaN or infinite after ``epoch``."""
    bad = nonfinite_tensors(model.state_dict())
    if bad:
        raise TrainingDiverged(f"training diverged: {len(bad)} weight tensors ({', '.join(bad[:3])}) are NaN or "
                               f"infinite after epoch {epoch + 1} (lower the learning rate)")


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (weight init, dropout) and return a generator for shuffling."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    return torch.Generator().manual_seed(seed)


def fit(model: nn.Module, train: Windows, val: Windows, *, config: TrainConfig = TrainConfig(),
        progress: bool = True) -> dict:
    """Train ``model`` in place; return the validation report of the final epoch.

    Raises ``TrainingDiverged`` as soon as a loss, or after an epoch a weight, is NaN or infinite.
    """
    generator = seed_everything(config.seed)
    x = torch.from_numpy(np.ascontiguousarray(train.x, dtype=np.float32))
    y = torch.from_numpy(np.ascontiguousarray(train.y, dtype=np.int64))
    _check_shapes(model, train)
    weight = class_weights(train.y, len(train.labels)) if config.balanced else None
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, -(-len(x) // config.batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr,
                                                    total_steps=config.epochs * steps_per_epoch)
    bar = tqdm(total=config.epochs * steps_per_epoch, disable=not progress, unit="batch", dynamic_ncols=True)
    report: dict = {}
    with bar:
        for epoch in range(config.epochs):
            model.train()
            order = torch.randperm(len(x), generator=generator)
            running = 0.0
            for step in range(steps_per_epoch):
                idx = order[step * config.batch_size:(step + 1) * config.batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(x[idx]), y[idx])
                value = loss.item()
                check_loss(value, epoch=epoch, step=step)
                loss.backward()
                optimizer.step()
                scheduler.step()
                running += value
                bar.update(1)
                bar.set_description(f"epoch {epoch + 1}/{config.epochs} loss {running / (step + 1):.3f}")
            check_weights(model, epoch=epoch)
            report = evaluate(model, val)
            bar.set_postfix(val_acc=f"{report['accuracy']:.3f}", val_f1=f"{report['macro_f1']:.3f}")
            log.info("epoch %d: loss %.4f, val accuracy %.4f, macro F1 %.4f", epoch + 1,
                     running / steps_per_epoch, report["accuracy"], report["macro_f1"])
    return report


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Float logits for ``x`` (N, C, W): (N, K) or (N, K, W)."""
    model.eval()
    out = [model(torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size], dtype=np.float32))).numpy()
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def evaluate(model: nn.Module, windows: Windows) -> dict:
    """Classification report (accuracy, macro F1, per-class Se/+P) of the argmax prediction."""
    logits = predict(model, windows.x)
    return classification_report(windows.y, logits.argmax(axis=1), windows.labels)


def class_weights(y: np.ndarray, num_classes: int, power: float = 0.5) -> torch.Tensor:
    """Loss weights (inverse class frequency) ** ``power``; an absent class weighs 0.

    The default square root: full inverse frequency (power 1) overshoots on rare classes here.
    """
    counts = np.bincount(np.asarray(y).ravel(), minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / num_classes, 0.0)
    return torch.tensor(weights ** power, dtype=torch.float32)


def _check_shapes(model: nn.Module, data: Windows) -> None:
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(np.ascontiguousarray(data.x[:1], dtype=np.float32)))
    expected = (1, len(data.labels)) + tuple(data.y.shape[1:])
    if tuple(out.shape) != expected:
        kind = "per-sample (segmentation)" if data.y.ndim == 2 else "per-window (classification)"
        raise ValueError(f"model output shape {tuple(out.shape)} does not fit the {kind} targets {expected}")
