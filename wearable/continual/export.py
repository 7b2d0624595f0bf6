"""One task of a ``ContinualNet`` as a plain deployable model (``ecgcl_tiny``/``ecgcl_seg_tiny``).

The exported model holds the task's masked backbone kernels (weights of later tasks and
released weights are zeros), the task's BatchNorm and its decoder, so ``quantize.export``
and ``Checkpoint.build`` rebuild it from its registered config alone.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from wearable.models.ecgcl import ECGCL

from .net import ContinualNet, _key

__all__ = ["task_export", "TASK_MODELS"]

# registered model name of each decoder kind
TASK_MODELS = {"classification": "ecgcl_tiny", "segmentation": "ecgcl_seg_tiny"}


@torch.no_grad()
def task_export(net: ContinualNet, task: str) -> ECGCL:
    """A standalone ``ECGCL`` (eval mode) whose ``forward(x)`` equals ``net(x, task)``."""
    info = net.task(task)
    config = replace(net.config, head=info.head, num_classes=len(info.labels))
    model = ECGCL(config)
    wanted = model.state_dict()  # the other task kind's last merge is not part of this model
    state = {f"backbone.{k}": v.detach().clone() for k, v in net.task_parameters(task).items()
             if f"backbone.{k}" in wanted}
    state.update({f"decoder.{k}": v.detach().clone() for k, v in net.decoders[_key(task)].state_dict().items()})
    model.load_state_dict(state)
    return model.eval()
