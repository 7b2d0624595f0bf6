"""Run the CM-SSL pipeline on BIDMC and print the label-efficiency and robustness tables (PPG-only HR).

Stage 1: VQ tokenizer on paired ECG + PPG windows (train split), codebook usage and perplexity
per epoch. Stage 2: PPG-only student trained on the frozen tokenizer's code indices. Baselines
pretrain the same student encoder on the same PPG windows with NT-Xent (SimCLR) or masked-patch
reconstruction. Stage 3: heart rate (task bidmc/hr_ppg: monitor HR, MAE bpm, subject-wise test
split) with the student trained from scratch or linear-probed / fine-tuned from each pretrained
encoder, at each label fraction and downstream seed (pretraining runs once per encoder with seed
0, or with every seed under --reseed-pretraining, so that the spread covers pretraining too).
Every downstream model is also scored on the test windows with synthetic motion bursts at each
--snrs. --encoders repeats everything for encoder variants (residual / squeeze-and-excitation
ablation). Writes report.json and the pretrained weights to --out; --export also writes the
checkpoint (+ metrics.json) and full-int8 export of the fine-tuned CM-SSL student (first
encoder and seed, largest label fraction).

    python -m wearable.ssl.run --data-dir ../shared/data --out runs/cmssl --seeds 0,1,2 --export
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from wearable.cli_util import UsageError, check_writable_dir
from wearable.data import load_windows
from wearable.models import create
from wearable.models.cmssl import VQTokenizer, VQTokenizerConfig

from ._report import efficiency_table, robustness_table, student_export
from .contrastive import contrastive_pretrain
from .downstream import regression_fit, regression_mae
from .masked import masked_pretrain
from .pretrain import codes_predict, student_pretrain, tokenizer_train
from .robustness import ppg_motion_add

__all__ = ["main", "METHODS", "ENCODERS"]

MODEL = "cmssl_student_ppg"
PPG = 1  # channel of the PPG in bidmc paired windows (0 is ECG)
METHODS = ("scratch", "cmssl_probe", "cmssl_finetune", "ntxent_probe", "ntxent_finetune", "masked_probe",
           "masked_finetune")
DEFAULT_METHODS = ("scratch", "cmssl_finetune", "ntxent_finetune", "masked_finetune")
ENCODERS = {"plain": {}, "residual": {"residual": True}, "se": {"se": True},
            "residual+se": {"residual": True, "se": True}}
EXPORTED = "cmssl_finetune"  # the model exported with --export


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wearable.ssl.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("WEARABLE_DATA_DIR"),
                   help="folder with bidmc/ (default $WEARABLE_DATA_DIR)")
    p.add_argument("--out", default="runs/cmssl", help="output folder (default runs/cmssl)")
    p.add_argument("--epochs", type=int, default=8, help="pretraining epochs of every pretraining stage (default 8)")
    p.add_argument("--steps", type=int, default=600, help="downstream optimisation steps per run (batch 64)")
    p.add_argument("--fractions", default="0.01,0.1,1.0",
                   help="label fractions, comma-separated (default 0.01,0.1,1.0)")
    p.add_argument("--seeds", default="0", help="downstream seeds, comma-separated (default 0)")
    p.add_argument("--num-codes", type=int, default=64, help="codebook size (default 64)")
    p.add_argument("--mask-ratio", type=float, default=0.5, help="masked patches per window (default 0.5)")
    p.add_argument("--snrs", default="20,10,5,0",
                   help="motion-artifact SNRs in dB for the robustness table, comma-separated ('' for none)")
    p.add_argument("--sampling-rate", type=float, default=64.0, help="Hz (default 64)")
    p.add_argument("--window", type=int, default=512, help="samples per window (default 512 = 8 s)")
    p.add_argument("--limit", type=int, default=None, help="cap windows per split (quick runs)")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help=f"downstream methods, comma-separated (default {','.join(DEFAULT_METHODS)}; "
                        f"accepted: {','.join(METHODS)})")
    p.add_argument("--encoders", default="plain",
                   help=f"student encoder variants, comma-separated (default plain; accepted: {','.join(ENCODERS)})")
    p.add_argument("--reseed-pretraining", action="store_true",
                   help="pretrain again (tokenizer included) for every downstream seed, with that seed")
    p.add_argument("--export", action="store_true",
                   help=f"checkpoint and int8-export the {EXPORTED} student (first encoder and seed, largest fraction)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _floats(text: str, name: str, lo: float, hi: float) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--{name} must be comma-separated numbers, got {text!r}") from None
    if any(not lo < v <= hi for v in vals):
        raise UsageError(f"--{name} values must lie in ({lo}, {hi}], got {text!r}")
    return vals


def _names(text: str, name: str, accepted) -> list[str]:
    vals = list(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    bad = sorted(set(vals) - set(accepted))
    if bad or not vals:
        raise UsageError(f"unknown --{name} {bad or vals}; accepted: {', '.join(accepted)}")
    return vals


def _check(args: argparse.Namespace) -> None:
    if not args.data_dir or not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir {args.data_dir!r} is not a folder (pass the folder holding bidmc/)")
    for name in ("epochs", "steps", "num_codes", "window"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1")
    if args.window % 32:
        raise UsageError("--window must be a multiple of 32 (the patch length)")
    if not 0.0 < args.mask_ratio < 1.0:
        raise UsageError("--mask-ratio must lie in (0, 1)")
    args.fractions = _floats(args.fractions, "fractions", 0.0, 1.0)
    args.seeds = [int(s) for s in _floats(args.seeds, "seeds", -1.0, 1e9)]
    args.snrs = _floats(args.snrs, "snrs", -1e3, 1e3)
    if not args.fractions or not args.seeds:
        raise UsageError("--fractions and --seeds need at least one value")
    args.methods = _names(args.methods, "methods", METHODS)
    args.encoders = _names(args.encoders, "encoders", ENCODERS)
    args.out = check_writable_dir(args.out)
    args.out.mkdir(parents=True, exist_ok=True)


def _subset(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random ``fraction`` of the labelled windows (windows, not subjects: see README)."""
    n = max(1, int(round(fraction * len(x))))
    pick = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
    return x[pick], y[pick]


def _tokenize(args: argparse.Namespace, paired: dict, seed: int, progress: bool, say) -> dict:
    """Stage 1: the tokenizer on ECG + PPG; returns the code indices of every paired window."""
    torch.manual_seed(seed)  # weight init
    cfg = VQTokenizerConfig(sampling_rate_hz=args.sampling_rate, window_samples=args.window, num_codes=args.num_codes)
    tokenizer = VQTokenizer(cfg)
    say(f"tokenizer seed {seed}\nepoch  loss    nmse_ecg nmse_ppg used  perplexity restarts")

    def line(r: dict) -> None:
        say(f"{r['epoch']:5d}  {r['loss']:.4f}  {r['nmse_ch0']:.3f}    {r['nmse_ch1']:.3f}    "
            f"{r['fraction_used']:.2f}  {r['perplexity']:10.1f} {r['restarts']:8d}")

    hist = tokenizer_train(tokenizer, paired["train"], paired["val"], epochs=args.epochs, seed=seed,
                           progress=progress, on_epoch=line)
    torch.save({"config": asdict(cfg), "state_dict": tokenizer.state_dict()}, args.out / f"tokenizer_seed{seed}.pt")
    return {"history": hist, "codes": {s: codes_predict(tokenizer, x) for s, x in paired.items()}}


def _pretrain(family: str, encoder: str, args: argparse.Namespace, paired: dict, codes: dict | None, seed: int,
              progress: bool, say) -> tuple[dict, list]:
    """Stage 2 (cmssl) or a baseline (ntxent, masked) on the PPG of the paired windows; the encoder weights."""
    torch.manual_seed(seed)
    student = create(MODEL, sampling_rate_hz=args.sampling_rate, window_samples=args.window, **ENCODERS[encoder])
    ppg = paired["train"][:, PPG:PPG + 1]
    tag = f"{family} [{encoder}] seed {seed}"
    if family == "cmssl":
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


def run(args: argparse.Namespace, say=print) -> dict:
    torch.set_num_threads(1)
    spec = dict(sampling_rate_hz=args.sampling_rate, window_samples=args.window, data_dir=args.data_dir,
                limit=args.limit)
    w = args.window
    families = sorted({m.partition("_")[0] for m in args.methods} - {"scratch"})
    paired = ({s: load_windows("bidmc", "paired", split=s, hop_samples=w // 4, **spec).x for s in ("train", "val")}
              if families else {})
    hr = {s: load_windows("bidmc", "hr_ppg", split=s, hop_samples=w // 2, **spec) for s in ("train", "val", "test")}
    say("paired windows: " + ", ".join(f"{s} {len(v)}" for s, v in paired.items()) + "; hr_ppg windows: "
        + ", ".join(f"{s} {len(v)}" for s, v in hr.items()))
    progress = not args.quiet
    report: dict = {"data": {k: v for k, v in spec.items() if k != "data_dir"}, "steps": args.steps,
                    "epochs": args.epochs, "command": args.command, "pretraining": {}}
    ppg = {s: (v.x, v.y) for s, v in hr.items()}
    noisy = {snr: ppg_motion_add(ppg["test"][0], snr, sampling_rate=args.sampling_rate) for snr in args.snrs}
    mean_mae = float(np.mean(np.abs(ppg["test"][1] - ppg["train"][1].mean())))
    results, kept = [], None
    tokens: dict[int, dict] = {}  # pretraining seed -> tokenizer history and codes (shared by the encoders)
    for encoder in args.encoders:
        weights: dict[str, dict] = {}
        for seed in args.seeds:  # seeds outermost: a cut-short run still has every fraction of seed 0
            pseed = seed if args.reseed_pretraining else 0
            if "cmssl" in families and pseed not in tokens:
                tokens[pseed] = _tokenize(args, paired, pseed, progress, say)
                report["pretraining"][f"tokenizer_seed{pseed}"] = tokens[pseed]["history"]
            for family in families if (args.reseed_pretraining or not weights) else ():
                weights[family], hist = _pretrain(family, encoder, args, paired,
                                                  tokens[pseed]["codes"] if family == "cmssl" else None, pseed,
                                                  progress, say)
                report["pretraining"][f"{family}_{encoder}_seed{pseed}"] = hist
            for fraction in args.fractions:
                train = _subset(*ppg["train"], fraction, seed)
                for method in args.methods:
                    family, _, mode = method.partition("_")
                    torch.manual_seed(seed)
                    model = create(MODEL, sampling_rate_hz=args.sampling_rate, window_samples=w, **ENCODERS[encoder])
                    if family != "scratch":
                        model.encoder.load_state_dict(weights[family])
                    fit = regression_fit(model, train, ppg["val"], mode=mode or "scratch", steps=args.steps,
                                         seed=seed, lr=1e-2 if mode == "probe" else 3e-3, progress=progress)
                    row = {"model": MODEL, "encoder": encoder, "method": method, "fraction": fraction, "seed": seed,
                           "n_train": len(train[0]), "test_mae_bpm": regression_mae(model, *ppg["test"]), **fit,
                           "test_mae_snr": {f"{s:g}": regression_mae(model, x, ppg["test"][1])
                                            for s, x in noisy.items()}}
                    results.append(row)
                    say(f"{method:15s} [{encoder}] labels {fraction:5.0%} seed {seed}: val MAE {row['val_mae']:.2f}, "
                        f"test MAE {row['test_mae_bpm']:.2f} bpm")
                    if method == EXPORTED and fraction == max(args.fractions) and kept is None:
                        kept = (model, row)
                    _save(args.out, report, results)
    report.update({"downstream": results, "test_mae_predict_train_mean": mean_mae})
    if args.export and kept is not None:
        data = {"source": "bidmc", "task": "hr_ppg", "sampling_rate_hz": args.sampling_rate, "window_samples": w,
                "hop_samples": w // 2, "seed": 0}
        report["export"] = student_export(args.out, *kept, data, ppg, report["command"], say)
    _save(args.out, report, results)
    say("")
    say(efficiency_table(results, args.fractions, mean_mae, args.encoders, args.reseed_pretraining))
    if args.snrs:
        say("")
        say(robustness_table(results, max(args.fractions), args.snrs, args.encoders))
    return report


def _save(out: Path, report: dict, results: list[dict]) -> None:
    """report.json after every downstream run: a long run cut short keeps what it measured."""
    (out / "report.json").write_text(json.dumps({**report, "downstream": results}, indent=1))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.command = "python -m wearable.ssl.run " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None
                                                                                        else argv))
    logging.basicConfig(level=logging.WARNING)
    try:
        _check(args)
        run(args)
    except (UsageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
