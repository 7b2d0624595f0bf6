"""Run the CM-SSL pipeline on BIDMC and print the label-efficiency table for PPG-only heart rate.

Stage 1: VQ tokenizer on paired ECG + PPG windows (train split), codebook usage and perplexity
per epoch. Stage 2: PPG-only student trained on the frozen tokenizer's code indices. Stage 3:
heart rate (monitor HR, MAE bpm, subject-wise test split) from PPG with the student trained
from scratch, or linear-probed / fine-tuned from the CM-SSL encoder or from an NT-Xent
(SimCLR) encoder pretrained on the same PPG windows, at each label fraction and seed (the
pretraining runs once, seed 0). Writes report.json and the pretrained weights to --out;
--export also writes a checkpoint and the full-int8 export of the fine-tuned CM-SSL student.

    python -m wearable.ssl.run --data-dir ../shared/data --out runs/cmssl --seeds 0,1,2 --export
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

from wearable.training import save_checkpoint

from .contrastive import contrastive_pretrain
from .downstream import regression_fit, regression_mae
from .pretrain import codes_predict, student_pretrain, tokenizer_train

__all__ = ["main"]

MODEL = "cmssl_student_ppg"
PPG = 1  # channel of the PPG in bidmc windows (0 is ECG)
METHODS = ("scratch", "cmssl_probe", "cmssl_finetune", "ntxent_probe", "ntxent_finetune")
EXPORTED = "cmssl_finetune"  # the model exported with --export (first seed, largest label fraction)


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
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"downstream methods, comma-separated (default all: {','.join(METHODS)})")
    p.add_argument("--export", action="store_true",
                   help=f"checkpoint and int8-export the {EXPORTED} student (first seed, largest fraction)")
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
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = sorted(set(args.methods) - set(METHODS))
    if bad or not args.methods:
        raise UsageError(f"unknown --methods {bad or args.methods}; accepted: {', '.join(METHODS)}")
    args.out = check_writable_dir(args.out)
    args.out.mkdir(parents=True, exist_ok=True)


def _subset(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random ``fraction`` of the labelled windows (windows, not subjects: see README)."""
    n = max(1, int(round(fraction * len(x))))
    pick = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
    return x[pick], y[pick]


def _pretrain_cmssl(args: argparse.Namespace, paired: dict, progress: bool, say) -> tuple[dict, dict]:
    """Stages 1 and 2: the tokenizer on ECG + PPG, then the PPG student on its code indices."""
    w = args.window
    torch.manual_seed(0)  # weight init: pretraining runs once, seed 0
    tok_cfg = VQTokenizerConfig(sampling_rate_hz=args.sampling_rate, window_samples=w, num_codes=args.num_codes)
    tokenizer = VQTokenizer(tok_cfg)
    say("epoch  loss    nmse_ecg nmse_ppg used  perplexity restarts")
    tok_hist = tokenizer_train(tokenizer, paired["train"], paired["val"], epochs=args.epochs, progress=progress,
                               on_epoch=lambda r: say(f"{r['epoch']:5d}  {r['loss']:.4f}  {r['nmse_ch0']:.3f}    "
                                                      f"{r['nmse_ch1']:.3f}    {r['fraction_used']:.2f}  "
                                                      f"{r['perplexity']:10.1f} {r['restarts']:8d}"))
    torch.save({"config": asdict(tok_cfg), "state_dict": tokenizer.state_dict()}, args.out / "tokenizer.pt")
    codes = {s: codes_predict(tokenizer, x) for s, x in paired.items()}
    student = create(MODEL, sampling_rate_hz=args.sampling_rate, window_samples=w)
    stu_hist = student_pretrain(student, paired["train"][:, PPG:PPG + 1], codes["train"], args.num_codes,
                                val=(paired["val"][:, PPG:PPG + 1], codes["val"]), epochs=args.epochs,
                                progress=progress,
                                on_epoch=lambda r: say(f"student epoch {r['epoch']}: code CE {r['loss']:.3f}, "
                                                       f"val code accuracy {r['code_accuracy']:.3f}"))
    encoder = {k: v.clone() for k, v in student.encoder.state_dict().items()}
    torch.save({"config": asdict(student.config), "encoder": encoder}, args.out / "student_pretrained.pt")
    return encoder, {"tokenizer": tok_hist, "student": stu_hist}


def _pretrain_ntxent(args: argparse.Namespace, paired: dict, progress: bool, say) -> tuple[dict, dict]:
    """NT-Xent baseline: the same student encoder, contrastive on PPG windows only."""
    torch.manual_seed(0)
    student = create(MODEL, sampling_rate_hz=args.sampling_rate, window_samples=args.window)
    hist = contrastive_pretrain(student, paired["train"][:, PPG:PPG + 1], epochs=args.epochs, progress=progress,
                                on_epoch=lambda r: say(f"nt-xent epoch {r['epoch']}: loss {r['loss']:.3f}"))
    encoder = {k: v.clone() for k, v in student.encoder.state_dict().items()}
    torch.save({"config": asdict(student.config), "encoder": encoder}, args.out / "student_ntxent.pt")
    return encoder, {"ntxent": hist}


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
    report: dict = {"data": {k: v for k, v in spec.items() if k != "data_dir"}, "steps": args.steps,
                    "epochs": args.epochs}
    encoders = {}
    for family, pretrain in (("cmssl", _pretrain_cmssl), ("ntxent", _pretrain_ntxent)):
        if any(m.startswith(family) for m in args.methods):
            encoders[family], hist = pretrain(args, paired, progress, say)
            report.update(hist)

    # Stage 3
    ppg = {s: (v.x[:, PPG:PPG + 1], v.y) for s, v in hr.items()}
    mean_mae = float(np.mean(np.abs(ppg["test"][1] - ppg["train"][1].mean())))
    results, kept = [], None
    for seed in args.seeds:  # seeds outermost: a cut-short run still has every fraction of seed 0
        for fraction in args.fractions:
            train = _subset(*ppg["train"], fraction, seed)
            for method in args.methods:
                family, _, mode = method.partition("_")
                torch.manual_seed(seed)
                model = create(MODEL, sampling_rate_hz=args.sampling_rate, window_samples=w)
                if family != "scratch":
                    model.encoder.load_state_dict(encoders[family])
                fit = regression_fit(model, train, ppg["val"], mode=mode or "scratch", steps=args.steps, seed=seed,
                                     lr=1e-2 if mode == "probe" else 3e-3, progress=progress)
                row = {"method": method, "fraction": fraction, "seed": seed, "n_train": len(train[0]),
                       "test_mae_bpm": regression_mae(model, *ppg["test"]), **fit}
                results.append(row)
                say(f"{method:15s} labels {fraction:5.0%} seed {seed}: val MAE {row['val_mae']:.2f}, "
                    f"test MAE {row['test_mae_bpm']:.2f} bpm")
                if method == EXPORTED and fraction == max(args.fractions) and kept is None:
                    kept = (model, row)
    report.update({"downstream": results, "test_mae_predict_train_mean": mean_mae})
    if args.export and kept is not None:
        report["export"] = _export(args, kept, ppg, say)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    say("")
    say(table(results, args.methods, args.fractions, mean_mae))
    return report


def _export(args: argparse.Namespace, kept: tuple, ppg: dict, say) -> dict:
    """Checkpoint and full-int8 export of the fine-tuned student; the figures, or the failure."""
    import quantize  # the export stack is heavy: only when asked for

    model, row = kept
    data = {"source": "bidmc", "task": "hr", "sampling_rate_hz": args.sampling_rate,
            "window_samples": args.window, "hop_samples": args.window // 2}
    save_checkpoint(args.out / f"{MODEL}.pt", model, model_name=MODEL, data=data, labels=["hr_bpm"],
                    metrics={"test_mae_bpm": row["test_mae_bpm"]}, seed=row["seed"])
    pick = np.random.default_rng(0).permutation(len(ppg["train"][0]))[:512]
    try:
        manifest = quantize.export_model(model.eval(), args.out / "export", calibration=ppg["train"][0][pick],
                                         holdout=ppg["test"][0], holdout_labels=ppg["test"][1],
                                         labels=["hr_bpm"], overwrite=True)
    except Exception as exc:  # a failed gate is a result to report, not a crash of the table
        say(f"export failed: {exc}")
        return {"error": str(exc)}
    metric = manifest.data["checks"].get("task_metric") or {}
    out = {"tflite_bytes": manifest.tflite_bytes, "arena_bytes": manifest.arena_bytes,
           "mae_float_bpm": metric.get("float"), "mae_int8_bpm": metric.get("int8"),
           "directory": str(manifest.directory)}
    say(f"int8 export ({EXPORTED}, {row['fraction']:.0%} labels, seed {row['seed']}): "
        f"{out['tflite_bytes']} B flash, TFLM arena {out['arena_bytes']} B, test MAE float "
        f"{out['mae_float_bpm']} / int8 {out['mae_int8_bpm']} bpm")
    return out


def table(results: list[dict], methods: list[str], fractions: list[float], mean_mae: float) -> str:
    """Markdown table of test MAE (mean ± std over seeds) per method and label fraction."""
    lines = ["| PPG-only HR, test MAE (bpm) | " + " | ".join(f"{f:.0%} labels" for f in fractions) + " |",
             "|---|" + "---|" * len(fractions)]
    for method in methods:
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
