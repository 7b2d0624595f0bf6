"""Stages 1 and 2: VQ tokenizer training with codebook health, pseudo-labels, student pretraining."""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from wearable.models.cmssl import CMSSLStudent, VQTokenizer, codebook_usage

__all__ = ["tokenizer_train", "codes_predict", "student_pretrain", "pretrain_epochs", "tokenizer_evaluate"]

log = logging.getLogger(__name__)


def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    for i in range(0, n, batch_size):
        yield order[i:i + batch_size]


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scheduler=None) -> float:
    """One backward pass and update (and scheduler step); the loss as a float."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return loss.item()


def _nmse(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-channel MSE over the channel's variance, ``(C,)``: ECG (mV) and PPG (scaled) weigh alike."""
    err = (recon - x).pow(2).mean(dim=(0, 2))
    return err / x.var(dim=(0, 2)).clamp_min(1e-8)


@torch.no_grad()
def tokenizer_evaluate(tokenizer: VQTokenizer, x: np.ndarray, batch_size: int = 512) -> dict[str, float]:
    """Normalised reconstruction error per channel and codebook usage on ``x`` ``(N, C, W)``."""
    tokenizer.eval()
    errs, codes = [], []
    for i in range(0, len(x), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size], dtype=np.float32))
        recon, idx, _ = tokenizer(xb)
        errs.append((recon - xb).pow(2).sum(dim=(0, 2)))
        codes.append(idx)
    var = torch.from_numpy(np.asarray(x, dtype=np.float64).var(axis=(0, 2))).float()
    nmse = torch.stack(errs).sum(0) / (len(x) * x.shape[-1]) / var.clamp_min(1e-8)
    out = {f"nmse_ch{c}": float(v) for c, v in enumerate(nmse)}
    out.update(codebook_usage(torch.cat(codes), tokenizer.config.num_codes))
    return out


def tokenizer_train(tokenizer: VQTokenizer, train_x: np.ndarray, val_x: np.ndarray, *, epochs: int = 10,
                    batch_size: int = 64, lr: float = 2e-3, seed: int = 0, progress: bool = True,
                    on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Fit ``tokenizer`` on paired windows; return one report per epoch (loss, NMSE, usage).

    The codebook gets no gradient (EMA updates inside the quantizer); the loss is the sum of
    the per-channel normalised reconstruction errors plus the commitment term.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(train_x, dtype=np.float32))
    params = [p for p in tokenizer.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    history = []
    steps = -(-len(x) // batch_size)
    bar = tqdm(total=epochs * steps, disable=not progress, unit="batch", dynamic_ncols=True, desc="tokenizer")
    for epoch in range(epochs):
        tokenizer.train()
        restarts0, running = tokenizer.quantizer.restarts, 0.0
        for idx in _batches(len(x), batch_size, gen):
            recon, _, commit = tokenizer(x[idx])
            running += optimizer_step(_nmse(recon, x[idx]).sum() + commit, optimizer)
            bar.update(1)
        report = {"epoch": epoch + 1, "loss": running / steps,
                  "restarts": tokenizer.quantizer.restarts - restarts0, **tokenizer_evaluate(tokenizer, val_x)}
        history.append(report)
        bar.set_postfix(used=f"{report['fraction_used']:.2f}", ppl=f"{report['perplexity']:.1f}")
        log.info("tokenizer epoch %d: %s", epoch + 1, report)
        if on_epoch:
            on_epoch(report)
    bar.close()
    return history


@torch.no_grad()
def codes_predict(tokenizer: VQTokenizer, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Code index of every patch of every window: int64 ``(N, num_patches)`` (the pseudo-labels)."""
    tokenizer.eval()
    out = [tokenizer.tokenize(torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size], dtype=np.float32)))
           for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()


def student_pretrain(student: CMSSLStudent, x: np.ndarray, codes: np.ndarray, num_codes: int, *,
                     val: tuple[np.ndarray, np.ndarray] | None = None, epochs: int = 10, batch_size: int = 64,
                     lr: float = 3e-3, seed: int = 0, progress: bool = True,
                     on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Train ``student.encoder`` (+ a throw-away 1x1 code head) by cross-entropy on ``codes``.

    ``x`` is the student's modality ``(N, C, W)``, ``codes`` ``(N, W // patch)``. Returns one
    report per epoch: training loss and, with ``val``, the code accuracy on it.
    """
    if codes.shape[1] != x.shape[-1] // student.config.patch_samples:
        raise ValueError(f"{codes.shape[1]} codes per window do not match the student's "
                         f"{x.shape[-1] // student.config.patch_samples} patches")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = nn.Conv1d(student.config.feature_channels, num_codes, 1)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.ascontiguousarray(codes, dtype=np.int64))

    def loss(idx: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(head(student.encoder(xt[idx])), yt[idx])

    def add_val(report: dict) -> None:
        if val is not None:
            report["code_accuracy"] = _code_accuracy(student, head, *val)

    return pretrain_epochs(student, [*student.encoder.parameters(), *head.parameters()], len(xt), loss,
                           epochs=epochs, batch_size=batch_size, lr=lr, generator=gen, desc="student",
                           progress=progress, on_epoch=on_epoch, add_to_report=add_val)


def pretrain_epochs(student: CMSSLStudent, params: list, n: int, batch_loss: Callable[[torch.Tensor], torch.Tensor],
                    *, epochs: int, batch_size: int, lr: float, generator: torch.Generator, desc: str,
                    progress: bool = True, on_epoch: Callable[[dict], None] | None = None,
                    full_batches_only: bool = False,
                    add_to_report: Callable[[dict], None] | None = None) -> list[dict]:
    """The loop every pretraining objective shares: AdamW + one-cycle over shuffled batches of ``n``.

    ``batch_loss(indices)`` gives a batch's loss; ``full_batches_only`` drops the last partial
    batch (NT-Xent depends on the batch size). Returns one ``{"epoch", "loss", ...}`` per epoch.
    """
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    steps = max(1, n // batch_size) if full_batches_only else -(-n // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps)
    bar = tqdm(total=epochs * steps, disable=not progress, unit="batch", dynamic_ncols=True, desc=desc)
    history = []
    for epoch in range(epochs):
        student.train()
        running = 0.0
        for idx in list(_batches(n, batch_size, generator))[:steps]:
            running += optimizer_step(batch_loss(idx), optimizer, scheduler)
            bar.update(1)
        report = {"epoch": epoch + 1, "loss": running / steps}
        if add_to_report is not None:
            add_to_report(report)
        history.append(report)
        bar.set_postfix({k: f"{v:.3f}" for k, v in report.items() if k != "epoch"})
        log.info("%s epoch %d: %s", desc, epoch + 1, report)
        if on_epoch:
            on_epoch(report)
    bar.close()
    return history


@torch.no_grad()
def _code_accuracy(student: CMSSLStudent, head: nn.Module, x: np.ndarray, codes: np.ndarray) -> float:
    student.eval()
    hits = 0
    for i in range(0, len(x), 512):
        logits = head(student.encoder(torch.from_numpy(np.ascontiguousarray(x[i:i + 512], dtype=np.float32))))
        hits += int((logits.argmax(1).numpy() == codes[i:i + 512]).sum())
    return hits / max(codes.size, 1)
