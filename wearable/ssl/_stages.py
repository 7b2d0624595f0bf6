"""Stages 1 and 2 of ``python -m wearable.ssl.run``: tokenizer (fixed or beat-aligned) and encoder pretraining.

Also the optional synthetic paired windows (``paired_synthetic``) added to the pretraining data.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

import numpy as np
import torch

from wearable.data import ecg_clean, ecg_ppg_simulate, ecg_scale, ppg_clean, ppg_scale
from wearable.data.synthetic import RHYTHMS
from wearable.models import create
from wearable.models.cmssl import VQTokenizer, VQTokenizerConfig

from .beats import beats_align
from .contrastive import contrastive_pretrain
from .masked import masked_pretrain
from .pretrain import codes_predict, student_pretrain, tokenizer_train

__all__ = ["MODEL", "PPG", "CHANNELS", "ENCODERS", "FAMILIES", "paired_align", "paired_synthetic", "tokenize",
           "pretrain"]

MODEL = "cmssl_student_ppg"  # the same architecture serves the ECG student (one input channel)
PPG = 1  # channel of the PPG in bidmc paired windows (0 is ECG)
CHANNELS = {"ecg": 0, "ppg": PPG}  # student modality -> channel of the paired windows
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


def paired_synthetic(n: int, *, sampling_rate: float, window: int, seed: int) -> np.ndarray:
    """``(n, 2, window)`` simulated ECG + PPG windows, preprocessed as BIDMC's paired task does.

    Rhythms cycle through the data layer's ``RHYTHMS`` (sinus, AF, ectopy, brady, tachy); each
    window is its own record with a 2 s lead-in so the causal band-pass has settled; the PPG is
    scaled per window (BIDMC scales per record). Deterministic in ``seed``.
    """
    pad = int(round(2.0 * sampling_rate))
    out = np.empty((n, 2, window), dtype=np.float32)
    for i in range(n):
        rec = ecg_ppg_simulate((window + pad) / sampling_rate, sampling_rate=sampling_rate,
                               rhythm=RHYTHMS[i % len(RHYTHMS)], seed=int(np.random.SeedSequence([seed, 5, i])
                                                                       .generate_state(1)[0]), noise_mv=0.02)
        out[i, 0] = ecg_scale(ecg_clean(rec.ecg, sampling_rate=sampling_rate))[pad:pad + window]
        out[i, 1] = ppg_scale(ppg_clean(rec.ppg, sampling_rate=sampling_rate))[pad:pad + window]
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
             progress: bool, say, modality: str = "ppg") -> tuple[dict, list]:
    """Stage 2 (cmssl, cmsslbeat) or a baseline (ntxent, masked) on one raw channel of the paired windows.

    Every family trains on the same windows of ``modality`` (PPG or ECG); cmssl and cmsslbeat
    differ only in ``codes`` (the targets of the fixed or the beat-aligned tokenizer, which saw
    both channels). Returns the encoder weights.
    """
    torch.manual_seed(seed)
    student = create(MODEL, sampling_rate_hz=args.sampling_rate, window_samples=args.window, **ENCODERS[encoder])
    ch = CHANNELS[modality]
    x = paired["train"][:, ch:ch + 1]
    suffix = "" if modality == "ppg" else f"_{modality}"  # the PPG student keeps its original file names
    tag = f"{family}{suffix.replace('_', ' ')} [{encoder}] seed {seed}"
    if family in ("cmssl", "cmsslbeat"):
        hist = student_pretrain(student, x, codes["train"], args.num_codes,
                                val=(paired["val"][:, ch:ch + 1], codes["val"]), epochs=args.epochs,
                                seed=seed, progress=progress,
                                on_epoch=lambda r: say(f"{tag} epoch {r['epoch']}: code CE {r['loss']:.3f}, "
                                                       f"val code accuracy {r['code_accuracy']:.3f}"))
    elif family == "ntxent":
        hist = contrastive_pretrain(student, x, epochs=args.epochs, seed=seed, progress=progress,
                                    on_epoch=lambda r: say(f"{tag} epoch {r['epoch']}: loss {r['loss']:.3f}"))
    else:
        hist = masked_pretrain(student, x, ratio=args.mask_ratio, epochs=args.epochs, seed=seed, progress=progress,
                               on_epoch=lambda r: say(f"{tag} epoch {r['epoch']}: masked-patch NMSE "
                                                      f"{r['loss']:.3f}"))
    weights = {k: v.clone() for k, v in student.encoder.state_dict().items()}
    torch.save({"config": asdict(student.config), "encoder": weights},
               args.out / f"encoder_{family}{suffix}_{encoder}_seed{seed}.pt")
    return weights, hist
