"""Stages 1 and 2 of ``python -m wearable.ssl.run``: tokenizer (fixed or beat-aligned) and encoder pretraining."""

from __future__ import annotations

import argparse
from dataclasses import asdict

import torch

from wearable.models import create
from wearable.models.cmssl import VQTokenizer, VQTokenizerConfig

from .beats import beats_align
from .contrastive import contrastive_pretrain
from .masked import masked_pretrain
from .pretrain import codes_predict, student_pretrain, tokenizer_train

__all__ = ["MODEL", "PPG", "ENCODERS", "FAMILIES", "paired_align", "tokenize", "pretrain"]

MODEL = "cmssl_student_ppg"
PPG = 1  # channel of the PPG in bidmc paired windows (0 is ECG)
ENCODERS = {"plain": {}, "residual": {"residual": True}, "se": {"se": True},
            "residual+se": {"residual": True, "se": True}}
# pretraining families: cmssl = fixed patches, cmsslbeat = patches cut at the ECG's R peaks
FAMILIES = ("cmssl", "cmsslbeat", "ntxent", "masked")


def paired_align(paired: dict, args: argparse.Namespace, say) -> dict:
    """Beat-aligned copies of the paired splits (R peaks of the ECG channel); prints the detector's check."""
    out = {}
    for split, x in paired.items():
        out[split], stats = beats_align(x, 0, sampling_rate=args.sampling_rate, patch_samples=32)
        say(f"beat-aligned patches, {split}: {stats['beats_per_window']:.1f} R peaks per window, median detected "
            f"HR {stats['median_hr_bpm']:.1f} bpm, {stats['fallback_windows']} windows kept fixed patches")
    return out


def tokenize(args: argparse.Namespace, paired: dict, seed: int, progress: bool, say, tag: str = "") -> dict:
    """Stage 1: the tokenizer on ECG + PPG; returns its history and the code indices of every paired window."""
    torch.manual_seed(seed)  # weight init
    cfg = VQTokenizerConfig(sampling_rate_hz=args.sampling_rate, window_samples=args.window, num_codes=args.num_codes)
    tokenizer = VQTokenizer(cfg)
    say(f"tokenizer{tag} seed {seed}\nepoch  loss    nmse_ecg nmse_ppg used  perplexity restarts")

    def line(r: dict) -> None:
        say(f"{r['epoch']:5d}  {r['loss']:.4f}  {r['nmse_ch0']:.3f}    {r['nmse_ch1']:.3f}    "
            f"{r['fraction_used']:.2f}  {r['perplexity']:10.1f} {r['restarts']:8d}")

    hist = tokenizer_train(tokenizer, paired["train"], paired["val"], epochs=args.epochs, seed=seed,
                           progress=progress, on_epoch=line)
    torch.save({"config": asdict(cfg), "state_dict": tokenizer.state_dict()},
               args.out / f"tokenizer{tag.replace(' ', '_')}_seed{seed}.pt")
    return {"history": hist, "codes": {s: codes_predict(tokenizer, x) for s, x in paired.items()}}


def pretrain(family: str, encoder: str, args: argparse.Namespace, paired: dict, codes: dict | None, seed: int,
             progress: bool, say) -> tuple[dict, list]:
    """Stage 2 (cmssl, cmsslbeat) or a baseline (ntxent, masked) on the raw PPG of the paired windows.

    Every family trains on the same PPG windows; cmssl and cmsslbeat differ only in ``codes``
    (the targets of the fixed or the beat-aligned tokenizer). Returns the encoder weights.
    """
    torch.manual_seed(seed)
    student = create(MODEL, sampling_rate_hz=args.sampling_rate, window_samples=args.window, **ENCODERS[encoder])
    ppg = paired["train"][:, PPG:PPG + 1]
    tag = f"{family} [{encoder}] seed {seed}"
    if family in ("cmssl", "cmsslbeat"):
        hist = student_pretrain(student, ppg, codes["train"], args.num_codes,
                                val=(paired["val"][:, PPG:PPG + 1], codes["val"]), epochs=args.epochs,
                                seed=seed, progress=progress,
                                on_epoch=lambda r: say(f"{tag} epoch {r['epoch']}: code CE {r['loss']:.3f}, "
                                                       f"val code accuracy {r['code_accuracy']:.3f}"))
    elif family == "ntxent":
        hist = contrastive_pretrain(student, ppg, epochs=args.epochs, seed=seed, progress=progress,
                                    on_epoch=lambda r: say(f"{tag} epoch {r['epoch']}: loss {r['loss']:.3f}"))
    else:
        hist = masked_pretrain(student, ppg, ratio=args.mask_ratio, epochs=args.epochs, seed=seed, progress=progress,
                               on_epoch=lambda r: say(f"{tag} epoch {r['epoch']}: masked-patch NMSE "
                                                      f"{r['loss']:.3f}"))
    weights = {k: v.clone() for k, v in student.encoder.state_dict().items()}
    torch.save({"config": asdict(student.config), "encoder": weights},
               args.out / f"encoder_{family}_{encoder}_seed{seed}.pt")
    return weights, hist
