"""Structured (channel) pruning of a deployable ECG-CL task model with torch-pruning.

Unstructured PackNet masks leave the tensor shapes as they were, so an MCU runs the same
number of MACs. For deployment, ``channels_prune`` removes whole channels: torch-pruning
(``torch-pruning==1.6.1``) traces the model, groups every layer coupled to a channel (the
residual adds, branch merges and transposed convolutions tie a branch's width across the
whole backbone) and removes the lowest-L1 channels of each group. One ratio for every group
keeps the result describable by the registered config (``channels``, ``hidden``), so the
pruned model is a plain ``ecgcl_tiny``/``ecgcl_seg_tiny`` that ``quantize.export`` rebuilds
from its checkpoint. Fine-tune it afterwards (``wearable.training.fit``).
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch

from wearable.models.ecgcl import ECGCL

__all__ = ["channels_prune"]


def channels_prune(model: ECGCL, ratio: float) -> ECGCL:
    """A copy of ``model`` with ``ratio`` of the channels of every coupled group removed (L1 magnitude).

    The decoder's output layer keeps its classes. Raises ``ValueError`` for a ratio outside
    [0, 1) or if the pruned widths do not fit the config (they always should: one ratio).
    """
    import torch_pruning as tp  # deferred: only deployment needs it

    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"pruning ratio must be in [0, 1), got {ratio}")
    cfg = model.config
    work = copy.deepcopy(model).eval()
    example = torch.zeros(1, cfg.in_channels, cfg.window_samples)
    pruner = tp.pruner.MagnitudePruner(work, example, importance=tp.importance.MagnitudeImportance(p=1),
                                       pruning_ratio=ratio, ignored_layers=[work.decoder.out])
    pruner.step()
    stages = work.backbone.stages[-1]  # the last stage has every branch
    channels = tuple(int(branch[0].body[1][0].out_channels) for branch in stages)
    hidden = int(work.decoder.body[0].out_channels) if cfg.head == "classification" else cfg.hidden
    pruned = ECGCL(replace(cfg, channels=channels, hidden=hidden))
    try:
        pruned.load_state_dict(work.state_dict())
    except RuntimeError as exc:
        raise ValueError(f"torch-pruning gave widths the config cannot describe: {exc}") from None
    return pruned.eval()
