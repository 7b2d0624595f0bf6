"""``ContinualNet``: one ECG-CL backbone shared by tasks through PackNet-style binary masks.

Every convolution kernel of the backbone has an ``owner`` map (uint8, same shape): 0 means
free, ``t`` means task ``t`` (1-based, in the order the tasks were added) kept the weight
and froze it. Task ``t`` reads every weight with ``1 <= owner <= t``, plus, while it is
still learning and not yet pruned, the free ones; weights of later tasks are invisible to
it. That is the task's binary mask; the task id selects it, the task's own BatchNorm
parameters/statistics and its own decoder. ``isolation=False`` gives the plain
fine-tuning baseline: the same network with all weights shared and trainable.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from wearable.models._ecgcl_blocks import ECGCLBackbone
from wearable.models.ecgcl import HEADS, ECGCLConfig, decoder_build

__all__ = ["ContinualNet", "TaskInfo"]

_TRAIN, _FINETUNE, _FROZEN = "train", "finetune", "frozen"


@dataclass
class TaskInfo:
    """What the network knows about one task; ``phase``: "train" -> "finetune" -> "frozen"."""

    name: str
    index: int  # 1-based owner id
    head: str
    labels: tuple[str, ...]
    phase: str = _TRAIN


def _key(name: str) -> str:  # ModuleDict/ParameterDict keys cannot hold dots
    return name.replace(".", "__")


class ContinualNet(nn.Module):
    """Shared backbone, per-task masks, BatchNorm state and decoders; ``forward(x, task)``."""

    def __init__(self, config: ECGCLConfig, *, isolation: bool = True) -> None:
        super().__init__()
        self.config = config
        self.isolation = isolation
        self.backbone = ECGCLBackbone(config.in_channels, config.channels, config.kernel_size, config.blocks)
        self.decoders = nn.ModuleDict()
        self.norms = nn.ModuleDict()  # task -> ModuleDict of BatchNorm copies (its own affine + statistics)
        self.tasks: dict[str, TaskInfo] = {}
        # Masked: every convolution kernel (none has a bias; BatchNorm lives per task).
        self.masked = [n for n, m in self.backbone.named_modules()
                       if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))]
        self._bn_names = [n for n, m in self.backbone.named_modules() if isinstance(m, nn.BatchNorm1d)]
        for name in self.masked:
            weight = self.backbone.get_submodule(name).weight
            self.register_buffer(f"owner_{_key(name)}", torch.zeros(weight.shape, dtype=torch.uint8))

    # ------------------------------------------------------------------ tasks
    def task_add(self, name: str, head: str, labels: tuple[str, ...] | list[str]) -> TaskInfo:
        """Add a task with a fresh decoder; its BatchNorm starts from the previous task's."""
        if name in self.tasks:
            raise ValueError(f"task {name!r} already added")
        if head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
        if any(t.phase != _FROZEN for t in self.tasks.values()):
            raise ValueError("finish (freeze) the current task before adding another")
        if len(self.tasks) >= 255:
            raise ValueError("at most 255 tasks (uint8 owner maps)")
        info = TaskInfo(name, len(self.tasks) + 1, head, tuple(labels))
        previous = self.norms[_key(list(self.tasks)[-1])] if self.tasks else None
        norms = copy.deepcopy(previous) if previous is not None else nn.ModuleDict(
            {_key(n): copy.deepcopy(self.backbone.get_submodule(n)) for n in self._bn_names})
        self.norms[_key(name)] = norms
        self.decoders[_key(name)] = decoder_build(self.config, head, len(labels))
        self.tasks[name] = info
        return info

    def task(self, name: str) -> TaskInfo:
        if name not in self.tasks:
            raise KeyError(f"unknown task {name!r}; tasks: {', '.join(self.tasks) or 'none'}")
        return self.tasks[name]

    def owner(self, name: str) -> torch.Tensor:
        """The owner map of backbone weight ``name`` (a module path from ``self.masked``)."""
        return getattr(self, f"owner_{_key(name)}")

    def mask(self, task: str, name: str) -> torch.Tensor:
        """Binary mask (float) of backbone weight ``name`` as task ``task`` reads it."""
        info, owner = self.task(task), self.owner(name)
        if not self.isolation:
            return torch.ones(owner.shape)
        keep = (owner >= 1) & (owner <= info.index)
        if info.phase == _TRAIN:
            keep |= owner == 0
        return keep.float()

    def trainable(self, task: str, name: str) -> torch.Tensor:
        """Bool map of the weights of ``name`` that task ``task`` may change now."""
        info, owner = self.task(task), self.owner(name)
        if not self.isolation:
            return torch.full(owner.shape, info.phase != _FROZEN)
        if info.phase == _TRAIN:
            return owner == 0
        if info.phase == _FINETUNE:
            return owner == info.index
        return torch.zeros(owner.shape, dtype=torch.bool)

    # ------------------------------------------------------------------ forward
    def task_parameters(self, task: str) -> dict[str, torch.Tensor]:
        """Backbone parameters and buffers as task ``task`` sees them (masked kernels, its BatchNorm)."""
        params: dict[str, torch.Tensor] = {}
        for name in self.masked:
            params[f"{name}.weight"] = self.backbone.get_submodule(name).weight * self.mask(task, name)
        norms = self.norms[_key(task)]
        for name in self._bn_names:
            for attr, value in list(norms[_key(name)].named_parameters()) + list(norms[_key(name)].named_buffers()):
                params[f"{name}.{attr}"] = value
        return params

    def forward(self, x: torch.Tensor, task: str) -> torch.Tensor:
        info = self.task(task)
        output = "high" if info.head == "segmentation" else "low"
        features = functional_call(self.backbone, self.task_parameters(task), (x, output))
        return self.decoders[_key(task)](features)

    def task_view(self, task: str) -> nn.Module:
        """A module whose ``forward(x)`` is ``self(x, task)`` (shares everything with self)."""
        return _TaskView(self, task)

    def learnable(self, task: str) -> list[nn.Parameter]:
        """What an optimizer for ``task`` gets: backbone kernels (gradient-masked), its BatchNorm and decoder."""
        return ([self.backbone.get_submodule(n).weight for n in self.masked]
                + list(self.norms[_key(task)].parameters()) + list(self.decoders[_key(task)].parameters()))

    @torch.no_grad()
    def gradients_mask(self, task: str) -> None:
        """Zero the gradients of every backbone weight ``task`` may not change (call after backward)."""
        for name in self.masked:
            weight = self.backbone.get_submodule(name).weight
            if weight.grad is not None:
                weight.grad.mul_(self.trainable(task, name))


class _TaskView(nn.Module):
    def __init__(self, net: ContinualNet, task: str) -> None:
        super().__init__()
        self.net = net
        self.task = task
        self.config = net.config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.task)
