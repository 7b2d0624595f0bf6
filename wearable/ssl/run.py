"""Run the CM-SSL pipeline on BIDMC and print the label-efficiency table for PPG-only heart rate.

Stage 1: VQ tokenizer on paired ECG + PPG windows (train split), codebook usage and perplexity
per epoch. Stage 2: PPG-only student trained on the frozen tokenizer's code indices. Stage 3:
heart rate (monitor HR, MAE bpm, subject-wise test split) from PPG with the student trained
from scratch, linear-probed and fine-tuned from the pretrained encoder, at each label fraction
and seed. Writes report.json, tokenizer.pt and student_pretrained.pt to --out.

    python -m wearable.ssl.run --data-dir ../shared/data --out runs/cmssl
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from wearable.cli_util import UsageError, check_writable_dir
from wearable.data import load_windows
from wearable.models import create
from wearable.models.cmssl import VQTokenizer, VQTokenizerConfig

from .downstream import regression_fit, regression_mae
from .pretrain import codes_predict, student_pretrain, tokenizer_train

__all__ = ["main"]

MODEL = "cmssl_student_ppg"
PPG = 1  # channel of the PPG in bidmc windows (0 is ECG)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wearable.ssl.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("WEARABLE_DATA_DIR"),
                   help="folder with bidmc/ (default $WEARABLE_DATA_DIR)")
    p.add_argument("--out", default="runs/cmssl", help="output folder (default runs/cmssl)")
    p.add_argument("--epochs", type=int, default=8, help="pretraining epochs of the tokenizer and of the student")
    p.add_argument("--steps", type=int, default=600, help="downstream optimisation steps per run (batch 64)")
    p.add_argument("--fractions", default="0.1,1.0", help="label fractions, comma-separated (default 0.1,1.0)")
    p.add_argument("--seeds", default="0", help="downstream seeds, comma-separated (default 0)")
    p.add_argument("--num-codes", type=int, default=64, help="codebook size (default 64)")
    p.add_argument("--sampling-rate", type=float, default=64.0, help="Hz (default 64)")
    p.add_argument("--window", type=int, default=512, help="samples per window (default 512 = 8 s)")
    p.add_argument("--limit", type=int, default=None, help="cap windows per split (quick runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _floats(text: str, name: str, lo: float, hi: float) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--{name} must be comma-separated numbers, got {text!r}") from None
    if not vals or any(not lo < v <= hi for v in vals):
        raise UsageError(f"--{name} values must lie in ({lo}, {hi}], got {text!r}")
    return vals


def _check(args: argparse.Namespace) -> None:
    if not args.data_dir or not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir {args.data_dir!r} is not a folder (pass the folder holding bidmc/)")
    for name in ("epochs", "steps", "num_codes", "window"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1")
    if args.window % 32:
        raise UsageError("--window must be a multiple of 32 (the patch length)")
    args.fractions = _floats(args.fractions, "fractions", 0.0, 1.0)
    args.seeds = [int(s) for s in _floats(args.seeds, "seeds", -1.0, 1e9)]
    args.out = check_writable_dir(args.out)
    args.out.mkdir(parents=True, exist_ok=True)


def _subset(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random ``fraction`` of the labelled windows (windows, not subjects: see README)."""
    n = max(1, int(round(fraction * len(x))))
    pick = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
    return x[pick], y[pick]


def run(args: argparse.Namespace, say=print) -> dict:
    torch.set_num_threads(1)
    spec = dict(sampling_rate_hz=args.sampling_rate, window_samples=args.window, data_dir=args.data_dir,
                limit=args.limit)
    w = args.window
    paired = {s: load_windows("bidmc", "paired", split=s, hop_samples=w // 4, **spec).x for s in ("train", "val")}
    hr = {s: load_windows("bidmc", "hr", split=s, hop_samples=w // 2, **spec) for s in ("train", "val", "test")}
    say(f"paired windows: train {len(paired['train'])}, val {len(paired['val'])}; "
        f"hr windows: " + ", ".join(f"{s} {len(v)}" for s, v in hr.items()))
    progress = not args.quiet

    # Stage 1
    tok_cfg = VQTokenizerConfig(sampling_rate_hz=args.sampling_rate, window_samples=w, num_codes=args.num_codes)
    tokenizer = VQTokenizer(tok_cfg)
    say("epoch  loss    nmse_ecg nmse_ppg used  perplexity restarts")
    tok_hist = tokenizer_train(tokenizer, paired["train"], paired["val"], epochs=args.epochs, progress=progress,
                               on_epoch=lambda r: say(f"{r['epoch']:5d}  {r['loss']:.4f}  {r['nmse_ch0']:.3f}    "
                                                      f"{r['nmse_ch1']:.3f}    {r['fraction_used']:.2f}  "
                                                      f"{r['perplexity']:10.1f} {r['restarts']:8d}"))
    torch.save({"config": asdict(tok_cfg), "state_dict": tokenizer.state_dict()}, args.out / "tokenizer.pt")

    # Stage 2
    codes = {s: codes_predict(tokenizer, x) for s, x in paired.items()}
    student = create(MODEL, sampling_rate_hz=args.sampling_rate, window_samples=w)
    stu_hist = student_pretrain(student, paired["train"][:, PPG:PPG + 1], codes["train"], args.num_codes,
                                val=(paired["val"][:, PPG:PPG + 1], codes["val"]), epochs=args.epochs,
                                progress=progress,
                                on_epoch=lambda r: say(f"student epoch {r['epoch']}: code CE {r['loss']:.3f}, "
                                                       f"val code accuracy {r['code_accuracy']:.3f}"))
    pretrained = {k: v.clone() for k, v in student.encoder.state_dict().items()}
    torch.save({"config": asdict(student.config), "encoder": pretrained}, args.out / "student_pretrained.pt")

    # Stage 3
    ppg = {s: (v.x[:, PPG:PPG + 1], v.y) for s, v in hr.items()}
    mean_mae = float(np.mean(np.abs(ppg["test"][1] - ppg["train"][1].mean())))
    results = []
    for seed in args.seeds:  # seeds outermost: a cut-short run still has every fraction of seed 0
        for fraction in args.fractions:
            train = _subset(*ppg["train"], fraction, seed)
            for method, mode in (("scratch", "scratch"), ("cmssl_probe", "probe"), ("cmssl_finetune", "finetune")):
                torch.manual_seed(seed)
                model = create(MODEL, sampling_rate_hz=args.sampling_rate, window_samples=w)
                if method != "scratch":
                    model.encoder.load_state_dict(pretrained)
                fit = regression_fit(model, train, ppg["val"], mode=mode, steps=args.steps, seed=seed,
                                     lr=1e-2 if mode == "probe" else 3e-3, progress=progress)
                row = {"method": method, "fraction": fraction, "seed": seed, "n_train": len(train[0]),
                       "test_mae_bpm": regression_mae(model, *ppg["test"]), **fit}
                results.append(row)
                say(f"{method:15s} labels {fraction:5.0%} seed {seed}: val MAE {row['val_mae']:.2f}, "
                    f"test MAE {row['test_mae_bpm']:.2f} bpm")
    report = {"data": {k: v for k, v in spec.items() if k != "data_dir"}, "tokenizer": tok_hist,
              "student": stu_hist, "downstream": results, "test_mae_predict_train_mean": mean_mae,
              "steps": args.steps, "epochs": args.epochs}
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    say("")
    say(table(results, args.fractions, mean_mae))
    return report


def table(results: list[dict], fractions: list[float], mean_mae: float) -> str:
    """Markdown table of test MAE (mean ± std over seeds) per method and label fraction."""
    lines = ["| PPG-only HR, test MAE (bpm) | " + " | ".join(f"{f:.0%} labels" for f in fractions) + " |",
             "|---|" + "---|" * len(fractions)]
    for method in ("scratch", "cmssl_probe", "cmssl_finetune"):
        cells = []
        for f in fractions:
            v = [r["test_mae_bpm"] for r in results if r["method"] == method and r["fraction"] == f]
            cells.append(f"{np.mean(v):.2f} ± {np.std(v):.2f} (n={len(v)})" if v else "-")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines.append(f"| predict train mean | " + " | ".join(f"{mean_mae:.2f}" for _ in fractions) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
