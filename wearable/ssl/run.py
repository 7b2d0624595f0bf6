"""Run the CM-SSL pipeline and write the label-efficiency and robustness tables (PPG- or ECG-only student).

Stage 1: VQ tokenizer on paired BIDMC ECG + PPG windows (train split, plus --synthetic simulated
pairs), codebook usage and perplexity per epoch, with fixed 0.5 s patches (cmssl) or patches cut
at the ECG's R peaks (cmsslbeat). Stage 2: a one-modality student trained on the frozen
tokenizer's code indices: PPG-only for the PPG tasks, ECG-only for the ECG task. Baselines
pretrain the same student encoder on the same windows of that modality with NT-Xent (SimCLR) or
masked-patch reconstruction. Stage 3, per downstream --tasks: hr (BIDMC PPG heart rate, MAE
bpm, subject-wise split), af (synthetic PPG AF vs sinus, macro F1 %) and, when asked for,
ecg_beat (MIT-BIH AAMI N/S/V/F beats on the ECG, train DS1, test DS2, macro F1 %), with the
student trained from scratch or linear-probed / fine-tuned from each pretrained encoder, at
each label fraction and seed. Pretraining runs once per encoder with seed 0, or with every seed
under --reseed-pretraining, so that the spread covers pretraining too. Every downstream model is
also scored on its test windows with synthetic motion bursts at each --snrs (PPG) or NSTDB
--ecg-noises at each --ecg-snrs (ECG). --encoders repeats everything for encoder variants
(residual / squeeze-and-excitation ablation).

Writes to --out: report.json (every run), table.md and table.json (mean ± sd over seeds per
task, method and label fraction), the pretrained weights; --export also writes the checkpoint
(+ metrics.json) and full-int8 export of the fine-tuned CM-SSL HR student (first encoder and
seed, largest label fraction). --smoke is a CI-sized run (tiny data, one seed, short budgets).

    python -m wearable.ssl.run --data-dir ../shared/data --out runs/cmssl --seeds 0,1,2 --reseed-pretraining
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from wearable.cli_util import UsageError, check_writable_dir
from wearable.data import NSTDB_NOISES, load_windows
from wearable.models import create

from ._report import student_export, tables_write
from ._stages import ENCODERS, FAMILIES, MODEL, paired_align, paired_synthetic, pretrain, tokenize
from .tasks import DEFAULT_TASKS, DOWNSTREAM, baseline_score, downstream_load, robustness_sets, task_window

__all__ = ["main", "METHODS", "ENCODERS"]

METHODS = ("scratch", *(f"{f}_{m}" for f in FAMILIES for m in ("probe", "finetune")))
DEFAULT_METHODS = ("scratch", "cmssl_finetune", "cmsslbeat_finetune", "ntxent_finetune", "masked_finetune")
EXPORTED = "cmssl_finetune"  # the HR model exported with --export
SMOKE = {"epochs": 1, "steps": 10, "limit": 96, "seeds": "0", "fractions": "0.1,1.0", "snrs": "10", "ecg_snrs": "6"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wearable.ssl.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("WEARABLE_DATA_DIR"),
                   help="folder with bidmc/ (and mitdb/, nstdb/ for ecg_beat; default $WEARABLE_DATA_DIR)")
    p.add_argument("--out", default="runs/cmssl", help="output folder (default runs/cmssl)")
    p.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                   help=f"downstream tasks, comma-separated (default {','.join(DEFAULT_TASKS)}; accepted: "
                        f"{','.join(DOWNSTREAM)}; ecg_beat trains the ECG-only student, needs mitdb/ and nstdb/)")
    p.add_argument("--epochs", type=int, default=8, help="pretraining epochs of every pretraining stage (default 8)")
    p.add_argument("--steps", type=int, default=400, help="downstream optimisation steps per run (batch 64, default 400)")
    p.add_argument("--fractions", default="0.01,0.1,1.0",
                   help="label fractions, comma-separated (default 0.01,0.1,1.0)")
    p.add_argument("--seeds", default="0", help="downstream seeds, comma-separated (default 0)")
    p.add_argument("--num-codes", type=int, default=64, help="codebook size (default 64)")
    p.add_argument("--mask-ratio", type=float, default=0.5, help="masked patches per window (default 0.5)")
    p.add_argument("--snrs", default="20,10,5,0",
                   help="motion-artifact SNRs in dB for the robustness table, comma-separated ('' for none)")
    p.add_argument("--ecg-snrs", default="24,12,6,0",
                   help="NSTDB noise SNRs in dB on the ECG task's test windows, comma-separated ('' for none)")
    p.add_argument("--ecg-noises", default="em",
                   help=f"NSTDB noises for the ECG task, comma-separated (default em; accepted: "
                        f"{','.join(NSTDB_NOISES)})")
    p.add_argument("--synthetic", type=int, default=0,
                   help="simulated paired ECG + PPG windows added to the pretraining windows (default 0)")
    p.add_argument("--sampling-rate", type=float, default=64.0, help="Hz (default 64)")
    p.add_argument("--window", type=int, default=512, help="samples per window (default 512 = 8 s)")
    p.add_argument("--limit", type=int, default=None,
                   help="cap windows per split (quick runs; af: windows simulated before dropping the ectopic class)")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help=f"downstream methods, comma-separated (default {','.join(DEFAULT_METHODS)}; "
                        f"accepted: {','.join(METHODS)})")
    p.add_argument("--encoders", default="plain",
                   help=f"student encoder variants, comma-separated (default plain; accepted: {','.join(ENCODERS)})")
    p.add_argument("--reseed-pretraining", action="store_true",
                   help="pretrain again (tokenizers included) for every downstream seed, with that seed")
    p.add_argument("--export", action="store_true",
                   help=f"checkpoint and int8-export the HR {EXPORTED} student (first encoder and seed, largest fraction)")
    p.add_argument("--smoke", action="store_true",
                   help="CI-sized run: defaults " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in SMOKE.items())
                        + " (explicit flags still win)")
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
    if args.synthetic < 0:
        raise UsageError("--synthetic must be >= 0")
    if args.limit is not None and args.limit < 8:
        raise UsageError("--limit must be >= 8")
    if args.window % 32:
        raise UsageError("--window must be a multiple of 32 (the patch length)")
    if not 0.0 < args.mask_ratio < 1.0:
        raise UsageError("--mask-ratio must lie in (0, 1)")
    args.fractions = _floats(args.fractions, "fractions", 0.0, 1.0)
    args.seeds = [int(s) for s in _floats(args.seeds, "seeds", -1.0, 1e9)]
    args.snrs = _floats(args.snrs, "snrs", -1e3, 1e3)
    args.ecg_snrs = _floats(args.ecg_snrs, "ecg-snrs", -1e3, 1e3)
    args.ecg_noises = _names(args.ecg_noises, "ecg-noises", NSTDB_NOISES)
    if not args.fractions or not args.seeds:
        raise UsageError("--fractions and --seeds need at least one value")
    args.tasks = _names(args.tasks, "tasks", DOWNSTREAM)
    args.methods = _names(args.methods, "methods", METHODS)
    args.encoders = _names(args.encoders, "encoders", ENCODERS)
    args.out = check_writable_dir(args.out)
    args.out.mkdir(parents=True, exist_ok=True)


def _subset(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random ``fraction`` of the labelled windows (windows, not subjects: see README)."""
    n = max(1, int(round(fraction * len(x))))
    pick = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
    return x[pick], y[pick]


def _downstream(args, task, data: dict, noisy: dict, method: str, encoder: str, weights: dict, fraction: float,
                seed: int, progress: bool) -> tuple[torch.nn.Module, dict]:
    """One stage-3 run: the student from scratch or from a pretrained encoder, scored clean and under motion."""
    family, _, mode = method.partition("_")
    train = _subset(*data["train"], fraction, seed)
    torch.manual_seed(seed)
    window = task_window(task, sampling_rate_hz=args.sampling_rate, window_samples=args.window)
    model = create(MODEL, sampling_rate_hz=args.sampling_rate, window_samples=window,
                   num_classes=task.num_classes, **ENCODERS[encoder])
    if family != "scratch":  # the encoder is convolutional: pretrained on --window, it runs on any window
        model.encoder.load_state_dict(weights[task.modality, family])
    fit = task.fit(model, train, data["val"], mode=mode or "scratch", steps=args.steps, seed=seed,
                   lr=1e-2 if mode == "probe" else 3e-3, progress=progress)
    val = fit.pop("val_mae", None) if "val_mae" in fit else 100.0 * fit.pop("val_f1")
    row = {"task": task.name, "metric": task.metric, "model": MODEL, "modality": task.modality, "encoder": encoder,
           "method": method,
           "fraction": fraction, "seed": seed, "n_train": len(train[0]), "val": val,
           "test": task.score(model, *data["test"]), **fit,
           "test_snr": {k: task.score(model, x, data["test"][1]) for k, x in noisy.items()}}
    return model, row


def run(args: argparse.Namespace, say=print) -> dict:
    torch.set_num_threads(1)
    start = time.monotonic()
    spec = dict(sampling_rate_hz=args.sampling_rate, window_samples=args.window, data_dir=args.data_dir,
                limit=args.limit)
    families = [f for f in FAMILIES if any(m.startswith(f + "_") for m in args.methods)]
    paired = ({s: load_windows("bidmc", "paired", split=s, hop_samples=args.window // 4, **spec).x
               for s in ("train", "val")} if families else {})
    if paired and args.synthetic:  # training windows only: codebook health stays measured on real BIDMC
        paired["train"] = np.concatenate([paired["train"], paired_synthetic(
            args.synthetic, sampling_rate=args.sampling_rate, window=args.window, seed=0)])
    modalities = list(dict.fromkeys(DOWNSTREAM[t].modality for t in args.tasks))
    aligned = paired_align(paired, args, say) if "cmsslbeat" in families else {}
    data = {t: downstream_load(t, **spec) for t in args.tasks}
    say("paired windows: " + ", ".join(f"{s} {len(v)}" for s, v in paired.items()) + "; " + "; ".join(
        f"{t} windows: " + ", ".join(f"{s} {len(v[0])}" for s, v in d.items()) for t, d in data.items()))
    progress = not args.quiet
    report: dict = {"data": {k: v for k, v in spec.items() if k != "data_dir"}, "synthetic": args.synthetic,
                    "steps": args.steps,
                    "epochs": args.epochs, "command": args.command, "pretraining": {},
                    "baseline": {t: baseline_score(DOWNSTREAM[t], d) for t, d in data.items()}}
    noisy = {t: robustness_sets(DOWNSTREAM[t], d["test"][0], sampling_rate=args.sampling_rate,
                                snrs=args.ecg_snrs if DOWNSTREAM[t].noise == "nstdb" else args.snrs,
                                noises=args.ecg_noises, data_dir=args.data_dir) for t, d in data.items()}
    results, kept = [], None
    tokens: dict[tuple[str, int], dict] = {}  # (family, pretraining seed) -> tokenizer history and codes
    for encoder in args.encoders:
        weights: dict[tuple[str, str], dict] = {}  # (modality, family) -> encoder weights
        for seed in args.seeds:  # seeds outermost: a cut-short run still has every fraction of seed 0
            pseed = seed if args.reseed_pretraining else 0
            for family in families if (args.reseed_pretraining or not weights) else ():
                codes = None
                if family.startswith("cmssl"):
                    beat = family == "cmsslbeat"
                    if (family, pseed) not in tokens:
                        tokens[family, pseed] = tokenize(args, aligned if beat else paired, pseed, progress, say,
                                                         " beat" if beat else "")
                        report["pretraining"][f"tokenizer{'_beat' if beat else ''}_seed{pseed}"] = \
                            tokens[family, pseed]["history"]
                    codes = tokens[family, pseed]["codes"]
                for modality in modalities:
                    weights[modality, family], hist = pretrain(family, encoder, args, paired, codes, pseed,
                                                               progress, say, modality)
                    report["pretraining"][f"{family}{'' if modality == 'ppg' else '_' + modality}_{encoder}"
                                          f"_seed{pseed}"] = hist
            for name in args.tasks:
                task = DOWNSTREAM[name]
                for fraction in args.fractions:
                    for method in args.methods:
                        model, row = _downstream(args, task, data[name], noisy[name], method, encoder, weights,
                                                 fraction, seed, progress)
                        results.append(row)
                        say(f"{name} {method:18s} [{encoder}] labels {fraction:5.0%} seed {seed}: val {row['val']:.2f}, "
                            f"test {row['test']:.2f} ({task.metric})")
                        if name == "hr" and method == EXPORTED and fraction == max(args.fractions) and kept is None:
                            kept = (model, row)
                        _save(args.out, report, results)
    if args.export and kept is not None:
        ds = {"source": "bidmc", "task": "hr_ppg", "sampling_rate_hz": args.sampling_rate,
              "window_samples": args.window, "hop_samples": args.window // 2, "seed": 0}
        report["export"] = student_export(args.out, *kept, ds, data["hr"], report["command"], say)
    report["seconds"] = round(time.monotonic() - start, 1)
    _save(args.out, report, results)
    say("")
    say(tables_write(args.out, report, results, args))
    say(f"\n{len(results)} downstream runs in {report['seconds'] / 60:.1f} min; tables in {args.out}/table.md, "
        f"table.json")
    return report


def _save(out: Path, report: dict, results: list[dict]) -> None:
    """report.json after every downstream run: a long run cut short keeps what it measured."""
    (out / "report.json").write_text(json.dumps({**report, "downstream": results}, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.smoke:  # the smoke budget replaces the defaults; flags given explicitly still win
        parser.set_defaults(**SMOKE)
        args = parser.parse_args(argv)
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
