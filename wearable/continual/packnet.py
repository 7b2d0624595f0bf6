"""Train -> prune -> fine-tune -> freeze, one task at a time (PackNet, Mallya & Lazebnik 2018).

``task_learn`` runs the whole cycle for a task added with ``ContinualNet.task_add``:

1. train the task on the free weights (earlier tasks' weights are read, never changed);
2. ``magnitude_prune``: in every backbone kernel, release the ``ratio`` fraction of the
   free weights with the smallest magnitude (set to zero, left free for later tasks) and
   give the rest to this task;
3. fine-tune only the weights the task kept, then freeze them.

Frozen weights stay bit-identical twice over: their gradients are zeroed before each
optimizer step (so Adam, which gets a zero gradient and no weight decay on the backbone,
moves them by exactly 0) and every step restores them from a snapshot anyway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from wearable.metrics import classification_report
from wearable.training.loop import class_weights, predict, seed_everything

from .net import ContinualNet, _key

__all__ = ["LearnConfig", "PruneStats", "magnitude_prune", "task_learn", "task_evaluate", "epochs_run"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LearnConfig:
    epochs: int = 3
    finetune_epochs: int = 1
    prune_ratio: float = 0.5  # fraction of the task's free weights released after training
    batch_size: int = 64
    lr: float = 3e-3
    finetune_lr: float = 1e-3
    weight_decay: float = 1e-4  # decoder and BatchNorm only: decay would move frozen kernels
    seed: int = 0
    balanced: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.prune_ratio < 1.0:
            raise ValueError(f"prune_ratio must be in [0, 1), got {self.prune_ratio}")
        if self.epochs < 1 or self.finetune_epochs < 0 or self.batch_size < 1:
            raise ValueError("epochs >= 1, finetune_epochs >= 0 and batch_size >= 1 are required")


@dataclass(frozen=True)
class PruneStats:
    """Weights of the backbone before and after pruning one task (counts over all kernels)."""

    free_before: int
    released: int
    kept: int

    @property
    def ratio(self) -> float:
        """Achieved fraction of the task's free weights released."""
        return self.released / self.free_before if self.free_before else 0.0


@torch.no_grad()
def magnitude_prune(net: ContinualNet, task: str, ratio: float) -> PruneStats:
    """Release the smallest-magnitude ``ratio`` of the free weights of each kernel; the task owns the rest.

    Per kernel (layer-wise, as in PackNet): ``round(ratio * n_free)`` weights are zeroed and
    stay free; the task now owns the others and moves to the fine-tune phase.
    """
    info = net.task(task)
    if info.phase != "train":
        raise ValueError(f"task {task!r} is already pruned ({info.phase})")
    free_before = released = 0
    for name in net.masked:
        weight, owner = net.backbone.get_submodule(name).weight, net.owner(name)
        free = owner == 0
        n_free = int(free.sum())
        k = int(round(ratio * n_free))
        if n_free:
            magnitude = torch.where(free, weight.abs(), torch.full_like(weight, float("inf")))
            # stable sort: ties (e.g. weights still at zero) are broken by position, deterministically
            order = torch.sort(magnitude.flatten(), stable=True).indices[:k]
            release = torch.zeros(owner.numel(), dtype=torch.bool)
            release[order] = True
            release = release.view_as(owner)
            weight[release] = 0.0
            owner[free & ~release] = info.index
        free_before += n_free
        released += k
    info.phase = "finetune"
    stats = PruneStats(free_before, released, free_before - released)
    log.info("%s: released %d of %d free weights (%.3f)", task, released, free_before, stats.ratio)
    return stats


def epochs_run(net: ContinualNet, task: str, train, *, epochs: int, lr: float, config: LearnConfig,
               progress: bool = False, desc: str = "") -> float:
    """Train ``task`` for ``epochs`` with gradient masking; return the last epoch's mean loss."""
    generator = seed_everything(config.seed)
    x = torch.from_numpy(np.ascontiguousarray(train.x, dtype=np.float32))
    y = torch.from_numpy(np.ascontiguousarray(train.y, dtype=np.int64))
    weight = class_weights(train.y, len(train.labels)) if config.balanced else None
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    kernels = [net.backbone.get_submodule(n).weight for n in net.masked]
    own = [p for p in net.learnable(task) if all(p is not k for k in kernels)]
    optimizer = torch.optim.Adam([{"params": kernels, "weight_decay": 0.0},
                                  {"params": own, "weight_decay": config.weight_decay}], lr=lr)
    trainable = [net.trainable(task, n) for n in net.masked]
    steps = max(1, -(-len(x) // config.batch_size))
    bar = tqdm(total=epochs * steps, disable=not progress, unit="batch", dynamic_ncols=True, desc=desc)
    loss_mean = float("nan")
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for step in range(steps):
            idx = order[step * config.batch_size:(step + 1) * config.batch_size]
            snapshot = [k.detach().clone() for k in kernels]
            optimizer.zero_grad(set_to_none=False)
            loss = loss_fn(net(x[idx], task), y[idx])
            loss.backward()
            net.gradients_mask(task)
            optimizer.step()
            with torch.no_grad():
                for k, keep, old in zip(kernels, trainable, snapshot):
                    k.copy_(torch.where(keep, k, old))
            total += loss.item()
            bar.update(1)
        loss_mean = total / steps
        bar.set_postfix(loss=f"{loss_mean:.3f}")
    bar.close()
    net.eval()
    return loss_mean


def task_learn(net: ContinualNet, task: str, train, *, config: LearnConfig = LearnConfig(),
               progress: bool = False) -> PruneStats | None:
    """Train, prune, fine-tune and freeze ``task`` (isolation off: train and freeze only)."""
    info = net.task(task)
    epochs_run(net, task, train, epochs=config.epochs, lr=config.lr, config=config, progress=progress,
               desc=f"{task} train")
    stats = None
    if net.isolation:
        stats = magnitude_prune(net, task, config.prune_ratio)
        if config.finetune_epochs:
            epochs_run(net, task, train, epochs=config.finetune_epochs, lr=config.finetune_lr, config=config,
                       progress=progress, desc=f"{task} fine-tune")
    info.phase = "frozen"
    for p in list(net.norms[_key(task)].parameters()) + list(net.decoders[_key(task)].parameters()):
        p.requires_grad_(False)
    return stats


def task_evaluate(net: ContinualNet, task: str, windows) -> dict:
    """Classification report of ``task`` on ``windows`` (per sample for segmentation)."""
    logits = predict(net.task_view(task), windows.x)
    return classification_report(windows.y, logits.argmax(axis=1), windows.labels)

