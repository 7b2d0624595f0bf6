"""Training recipe of the ECG rhythm comparison: class-balanced sampling, augmentation, best-epoch
selection on the validation records.

MIT-BIH DS1 holds few AF windows (515 of 12,442 at a 2.5 s hop), so a plain shuffled epoch
shows a model mostly normal sinus rhythm. Each epoch here draws ``samples_per_epoch`` windows
with probability proportional to ``count(class) ** -balance_power`` (1.0: every class equally
often), augments them the way single-lead wearable ECG varies between people and electrode
placements (gain, baseline wander, broadband noise, a small time shift) and trains with
label-smoothed cross-entropy under a one-cycle AdamW schedule. The weights of the epoch with
the best validation macro F1 are kept (the validation records are DS1 records, never DS2).
Every model of the comparison gets the same recipe.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

__all__ = ["Recipe", "ecg_augment", "sampling_weights", "recipe_fit", "recipe_qat", "qat_finetune"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    epochs: int = 12
    samples_per_epoch: int = 4096
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.1
    balance_power: float = 1.0  # sampling probability ~ count(class) ** -power
    augment: bool = True
    seed: int = 0


def sampling_weights(y: np.ndarray, num_classes: int, power: float) -> np.ndarray:
    """Per-window sampling probabilities: ``count(class) ** -power``, normalized to sum 1."""
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    per_class = np.where(counts > 0, np.maximum(counts, 1.0) ** -power, 0.0)
    weights = per_class[y]
    return weights / weights.sum()


def ecg_augment(x: torch.Tensor, generator: torch.Generator, sampling_rate_hz: float) -> torch.Tensor:
    """Randomly perturbed copy of a batch ``(n, 1, T)`` of normalized ECG windows.

    Gain x0.7-1.4 (electrode contact, body size), baseline wander (a 0.05-0.5 Hz sinusoid of up
    to 0.3 window std), white noise up to 0.1 std (EMG, electronics) and a circular shift of up
    to 1 s (the rhythm label holds for the whole window; the seam looks like one odd beat
    interval at most, so shifts stay small).
    """
    n, _, t = x.shape
    u = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    std = x.std(dim=-1, keepdim=True).clamp_min(1e-3)
    gain = 0.7 * 2.0 ** u(n, 1, 1)
    time = torch.arange(t, dtype=x.dtype) / sampling_rate_hz
    freq, phase = 0.05 + 0.45 * u(n, 1, 1), 2 * np.pi * u(n, 1, 1)
    wander = 0.3 * u(n, 1, 1) * std * torch.sin(2 * np.pi * freq * time + phase)
    noise = 0.1 * u(n, 1, 1) * std * torch.randn(x.shape, generator=generator)
    out = x * gain + wander + noise
    shift = int(u(1).item() * sampling_rate_hz) * (1 if u(1).item() < 0.5 else -1)
    return torch.roll(out, shifts=shift, dims=-1)


def recipe_fit(model: nn.Module, x: np.ndarray, y: np.ndarray, val, *, recipe: Recipe = Recipe(),
               sampling_rate_hz: float, progress: bool = True) -> dict:
    """Train ``model`` in place with ``recipe``; load the best-validation-epoch weights into it
    and return ``{"best_epoch", "best_val_macro_f1", "history"}``."""
    from wearable.training.loop import evaluate, seed_everything

    generator = seed_everything(recipe.seed)
    num_classes = len(val.labels)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    probs = torch.from_numpy(sampling_weights(y, num_classes, recipe.balance_power))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps = max(1, recipe.samples_per_epoch // recipe.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=recipe.epochs * steps)
    best: dict = {"best_epoch": 0, "best_val_macro_f1": -1.0, "history": []}
    state = None
    bar = tqdm(total=recipe.epochs * steps, disable=not progress, unit="batch", dynamic_ncols=True)
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        running = 0.0
        for _ in range(steps):
            idx = torch.multinomial(probs, recipe.batch_size, replacement=True, generator=generator)
            xb = ecg_augment(xt[idx], generator, sampling_rate_hz) if recipe.augment else xt[idx]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yt[idx])
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += loss.item()
            bar.update(1)
        report = evaluate(model, val)
        best["history"].append({"epoch": epoch, "loss": round(running / steps, 4),
                                "val_macro_f1": round(report["macro_f1"], 4)})
        log.info("epoch %d: loss %.4f, val macro F1 %.4f", epoch, running / steps, report["macro_f1"])
        if report["macro_f1"] > best["best_val_macro_f1"]:
            best.update(best_epoch=epoch, best_val_macro_f1=report["macro_f1"])
            state = copy.deepcopy(model.state_dict())
    bar.close()
    if state is not None:
        model.load_state_dict(state)
    return best


def recipe_qat(model: nn.Module, x: np.ndarray, y: np.ndarray, val, *, calibration: np.ndarray,
               recipe: Recipe, sampling_rate_hz: float, progress: bool = True) -> dict:
    """Quantization-aware fine-tuning with this recipe (balanced sampling, augmentation), in place
    (``qat_finetune``). The export's own QAT fallback trains on the 200 shipped calibration windows
    without class balance, which collapsed this model to "normal"."""
    return qat_finetune(model, calibration, lambda folded: recipe_fit(
        folded, x, y, val, recipe=recipe, sampling_rate_hz=sampling_rate_hz, progress=progress))


def qat_finetune(model: nn.Module, calibration: np.ndarray, fit) -> dict:
    """Fine-tune ``model`` in place under an emulation of the converter's int8; ``fit(folded)``
    trains the folded copy with any recipe and returns its report.

    ``quantize.qat.fake_quantized`` emulates the converter's int8 on a BatchNorm-folded copy;
    the fine-tuned weights are written back into ``model`` with every BatchNorm set to pass
    through plus the folded bias (mean 0, variance ``1 - eps``, scale 1), so the checkpoint
    keeps the registered architecture and export's folding reproduces the int8-representable
    weights exactly.
    """
    from quantize import fold_batchnorm
    from quantize.qat import fake_quantized

    from wearable.models._inception_blocks import InceptionMixer

    folded, _ = fold_batchnorm(model)
    for mixer in (m for m in folded.modules() if isinstance(m, InceptionMixer)):
        mixer.conv[0].weight.register_hook(mixer._mask_grad)  # folding made a new Parameter
    with fake_quantized(folded, calibration):
        report = fit(folded)
    _unfold_into(model, folded.eval())
    return report


@torch.no_grad()
def _unfold_into(model: nn.Module, folded: nn.Module) -> None:
    fmods = dict(folded.named_modules())
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            module.weight.copy_(fmods[name].weight)
            if module.bias is not None:
                module.bias.copy_(fmods[name].bias)
        elif isinstance(module, nn.BatchNorm1d):
            parent, _, index = name.rpartition(".")
            conv = fmods[f"{parent}.{int(index) - 1}"]
            module.weight.fill_(1.0)
            module.bias.copy_(conv.bias)
            module.running_mean.zero_()
            module.running_var.fill_(1.0 - module.eps)
