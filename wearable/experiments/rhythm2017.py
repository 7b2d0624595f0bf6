"""Rhythm models on real handheld ECG: the PhysioNet/CinC Challenge 2017 recordings, one recipe.

Every model is trained with the same recipe (``_rhythm_recipe``: random crops of the training
recordings, class balance, polarity/gain/baseline/NSTDB-noise augmentation, the epoch with the best
validation challenge score), exported to full int8 through ``quantize.export_model`` and scored
per recording on the test split, float (PyTorch) and int8 (the .tflite in ai-edge-litert with
TFLite's reference kernels, the ones TFLite Micro reproduces). A recording's label is the runtime's
record decision (``wearable.runtime.record``: mean window probability, noisy -> inconclusive,
windows every half window plus one ending at the last sample). Splits are record-level,
stratified, seeded (``wearable.data.challenge2017_split``: 80 / 10 / 10 % with 10 folds;
``--split-seed``), the same split for every training seed.

``--baselines`` adds the classical baselines on exactly the same recordings
(``rhythm_features``: neurokit2 R peaks + a two-threshold RR rule; 30 RR/morphology/quality
features + gradient boosting), so the table shows whether a network earns its flash.

Writes ``report.json`` and ``report.md`` in ``--out`` (rewritten after every run) and prints the
table. ``--checkpoint PATH`` also writes the trained model as a shippable checkpoint (one model,
one seed).

Exit codes: 0 done, 1 a training run diverged, 2 bad input (unknown model, missing or bad data).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from wearable.data.challenge2017 import CHALLENGE2017_LABELS
from wearable.models.inceptionformer import LITE_160KB

__all__ = ["MODELS", "DEFAULT_MODELS", "RATE_HZ", "WINDOW", "HOP", "main", "run", "write_metrics"]

log = logging.getLogger("wearable.experiments.rhythm2017")

LABELS = CHALLENGE2017_LABELS
# 9 s at 100 Hz: every Challenge 2017 recording (9.0-61 s) holds at least one window
RATE_HZ, WINDOW, HOP = 100.0, 900, 450
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "dscnn_tiny": ("dscnn_tiny", {}),
    "dscnn_rhythm": ("dscnn_rhythm", {}),  # dscnn_tiny with twice the stem width and a fifth block
    "inceptionformer_tiny:160kb": ("inceptionformer_tiny", {"attention": "mhsa", **LITE_160KB}),
    "inceptionformer_tiny:160kb:stride2": ("inceptionformer_tiny", {"attention": "mhsa", **LITE_160KB,
                                                                    "stem_strides": (1, 2)}),
    "ecgcl_tiny": ("ecgcl_tiny", {}),
    "resnet18_1d:w32": ("resnet18_1d", {"base_width": 32}),
    "mobilenetv2_1d:x0.5": ("mobilenetv2_1d", {"width_mult": 0.5}),
}
DEFAULT_MODELS = ("dscnn_tiny", "dscnn_rhythm", "inceptionformer_tiny:160kb", "ecgcl_tiny", "resnet18_1d:w32",
                  "mobilenetv2_1d:x0.5")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wearable.experiments.rhythm2017", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, help="PhysioNet data root with challenge2017/ (and nstdb/ for noise "
                   "augmentation; default: $WEARABLE_DATA_DIR)")
    p.add_argument("--out", type=Path, default=Path("runs/rhythm2017"), help="output directory (default: %(default)s)")
    p.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help=f"comma-separated, from: {', '.join(MODELS)} (default: %(default)s)")
    p.add_argument("--seeds", default="0", metavar="S,S,...",
                   help="every model is trained once per seed; the table gives mean ± sd (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=30, help="training epochs (default: %(default)s)")
    p.add_argument("--samples-per-epoch", type=int, default=8192,
                   help="training windows drawn per epoch (default: %(default)s)")
    p.add_argument("--label-smoothing", type=float, default=0.05,
                   help="label smoothing of the cross-entropy; more keeps the logits in a narrower range, which "
                        "int8 outputs cover better (default: %(default)s)")
    p.add_argument("--split-seed", type=int, default=0,
                   help="seed of the record-level split; every training seed uses the same split (default: %(default)s)")
    p.add_argument("--fold", type=int, default=0, help="test fold of the 10-fold split; validation is the next "
                   "(default: %(default)s)")
    p.add_argument("--limit-records", type=int, default=0, metavar="N",
                   help="at most N recordings per split, every label kept (smoke runs); 0 = all (default: %(default)s)")
    p.add_argument("--baselines", action="store_true",
                   help="also score the RR rule and the feature + gradient-boosting baseline on the same recordings")
    p.add_argument("--no-export", action="store_true", help="float figures only (no int8 export)")
    p.add_argument("--gate", action="store_true",
                   help="apply quantize's export gates (agreement, error ratio, metric drop on 1,000 validation "
                        "windows); a model that fails them gets no int8 figures. By default the int8 figures are "
                        "measured whatever the gates say (python -m quantize.export applies them when shipping)")
    p.add_argument("--qat-epochs", type=int, default=0,
                   help="quantization-aware fine-tuning epochs after training, same recipe, best validation epoch "
                        "under the int8 emulation (quantize.qat); 0 = none (default: %(default)s)")
    p.add_argument("--qat-lr", type=float, default=3e-4, help="learning rate of that fine-tuning (default: %(default)s)")
    p.add_argument("--checkpoint", type=Path, metavar="PATH",
                   help="also write the trained model here as a shippable checkpoint (one model, one seed)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch logs")
    return p


def _data(args: argparse.Namespace) -> dict[str, Any]:
    from wearable.data import challenge2017_signals

    kw = dict(sampling_rate_hz=RATE_HZ, seed=args.split_seed, fold=args.fold, limit=args.limit_records or None,
              progress=not args.quiet)
    return {split: challenge2017_signals(args.data_dir, split, **kw) for split in ("train", "val", "test")}


def _noise(args: argparse.Namespace):
    from wearable.data import DataError, NoiseBank

    try:
        return NoiseBank.from_nstdb(args.data_dir, RATE_HZ)
    except DataError as exc:
        log.warning("no NSTDB noise augmentation: %s", exc)
        return None


def _windows(signals, y: np.ndarray, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` record windows drawn at random, with their recording's label (calibration and the
    export's held-out windows)."""
    from wearable.runtime.record import record_window_starts

    pool = [(i, int(a)) for i, s in enumerate(signals)
            for a in record_window_starts(s.size, window_samples=WINDOW, hop_samples=HOP)]
    pick = [pool[k] for k in rng.permutation(len(pool))[:n]]
    x = np.stack([signals[i][a:a + WINDOW] for i, a in pick])[:, None, :].astype(np.float32)
    return x, np.array([y[i] for i, _ in pick], dtype=np.int64)


def _one(key: str, seed: int, data: dict[str, Any], noise, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import torch

    from wearable.data import challenge_score
    from wearable.models import create
    from wearable.runtime import record_labels, record_probs
    from wearable.training import save_checkpoint

    from ._rhythm_recipe import RhythmRecipe, rhythm_fit, torch_predict

    name, cfg = MODELS[key]
    started = time.time()
    torch.manual_seed(seed)
    model = create(name, num_classes=len(LABELS), sampling_rate_hz=RATE_HZ, window_samples=WINDOW, **cfg)
    row: dict[str, Any] = {"model": key, "seed": seed, "registered": name, "config": cfg,
                           "params": sum(p.numel() for p in model.parameters())}
    recipe = RhythmRecipe(epochs=args.epochs, samples_per_epoch=args.samples_per_epoch, seed=seed,
                          label_smoothing=args.label_smoothing)
    row["training"] = rhythm_fit(model, data["train"], data["val"], labels=LABELS, window=WINDOW, hop=HOP,
                                 sampling_rate=RATE_HZ, recipe=recipe, noise=noise, progress=not args.quiet)
    # int8 calibration windows: the fine-tuning's starting ranges and the export's, the same draw
    rng = np.random.default_rng(seed)
    calibration, _ = _windows(data["train"].signals, data["train"].y, rng, 1000)
    if args.qat_epochs:
        from ._ecg_recipe import qat_finetune

        qat = RhythmRecipe(epochs=args.qat_epochs, samples_per_epoch=args.samples_per_epoch, lr=args.qat_lr,
                           seed=seed, label_smoothing=args.label_smoothing)
        row["qat"] = qat_finetune(model, calibration, lambda folded: rhythm_fit(
            folded, data["train"], data["val"], labels=LABELS, window=WINDOW, hop=HOP, sampling_rate=RATE_HZ,
            recipe=qat, noise=noise, progress=not args.quiet))
    row["train_seconds"] = round(time.time() - started, 1)
    model.eval()
    test = data["test"]
    truth = [LABELS[i] for i in test.y]
    fp32 = challenge_score(truth, record_labels(record_probs(torch_predict(model), test.signals, window=WINDOW, hop=HOP),
                                        test.signals, LABELS, window=WINDOW))
    row["fp32"] = fp32
    # the checkpoint's data spec is what load_windows (and so quantize.evalset) takes: split fold 0
    spec = {"source": "challenge2017", "task": "rhythm", "sampling_rate_hz": RATE_HZ, "window_samples": WINDOW,
            "hop_samples": HOP, "seed": args.split_seed}
    target = out / f"seed{seed}" / key.replace(":", "_")
    target.parent.mkdir(parents=True, exist_ok=True)
    metrics = {"test_fp32_challenge_score": fp32["score"]}
    save_checkpoint(target.parent / f"{target.name}.pt", model, model_name=name,
                    data={**spec, "data_dir": str(args.data_dir) if args.data_dir else None},
                    labels=list(LABELS), metrics=metrics, seed=seed)
    if args.checkpoint is not None:  # the shippable copy: no path of this machine in it
        save_checkpoint(args.checkpoint, model, model_name=name, data={**spec, "data_dir": None}, labels=list(LABELS),
                        metrics=metrics, seed=seed)
    if not args.no_export:
        row.update(_export(model, target, data, truth, calibration, rng, args.gate))
    row["seconds"] = round(time.time() - started, 1)
    torch.set_num_threads(args.threads)  # export helpers may have touched it
    return row


def _export(model, target: Path, data: dict[str, Any], truth: list[str], calibration: np.ndarray,
            rng: np.random.Generator, gate: bool) -> dict[str, Any]:
    from benchmarks.macs import count_macs
    from benchmarks.tflite_graph import read_graph
    from quantize import CheckFailed, ExportError, Thresholds, export_model
    from wearable.data import challenge_score
    from wearable.runtime import int8_predictor, record_labels, record_probs, softmax

    from .ecg_models import _record_only

    holdout, holdout_y = _windows(data["val"].signals, data["val"].y, rng, 1000)
    try:
        manifest = export_model(model, target, calibration=calibration, holdout=holdout, holdout_labels=holdout_y,
                                labels=list(LABELS), task="rhythm", hop_samples=HOP,
                                thresholds=Thresholds() if gate else _record_only(),
                                data_info={"source": "challenge2017", "task": "rhythm",
                                           "note": "rhythm2017 experiment"}, overwrite=True)
    except (CheckFailed, ExportError) as exc:
        message = str(exc).splitlines()[0][:300]
        log.warning("%s: export failed: %s", target.name, message)
        return {"export_error": message}
    tflite = (target / "model_int8.tflite").read_bytes()
    counts = count_macs(read_graph(tflite))
    test = data["test"]
    run = int8_predictor(target / "model_int8.tflite")
    int8 = challenge_score(truth, record_labels(record_probs(lambda x: softmax(run(x)), test.signals, window=WINDOW,
                                                             hop=HOP), test.signals, LABELS, window=WINDOW))
    (agreement,) = manifest.data["checks"]["agreement"]
    return {"int8": int8, "macs": sum(c.macs for c in counts if c.kind in ("conv", "depthwise", "fc")),
            "flash_bytes": len(tflite), "arena_bytes": manifest.data["tflm"]["arena_bytes"],
            "holdout_agreement_pct": agreement["argmax_agreement_pct"], "holdout_error_ratio": agreement["error_ratio"]}


def _baselines(args: argparse.Namespace, data: dict[str, Any]) -> list[dict[str, Any]]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from tqdm.auto import tqdm

    from wearable.data import challenge2017_read, challenge_score

    from .rhythm_features import record_features, rr_rule_fit, rr_rule_predict

    feats = {}
    for split in ("train", "val", "test"):
        rows = []
        for name in tqdm(data[split].records, desc=f"features {split}", disable=args.quiet, leave=False):
            rec = challenge2017_read(args.data_dir, name)
            rows.append(record_features(rec.signal, rec.sampling_rate))
        feats[split] = np.stack(rows)
    truth = [LABELS[i] for i in data["test"].y]
    rule = rr_rule_fit(feats["train"], data["train"].y, LABELS)
    rows = [{"model": "baseline: RR rule", "seed": 0, "params": 2, "rule": rule,
             "fp32": challenge_score(truth, rr_rule_predict(feats["test"], rule, LABELS))}]
    # the number of boosting rounds is chosen on the validation records, never the test ones
    best = None
    for rounds in (100, 200, 400):
        clf = HistGradientBoostingClassifier(max_iter=rounds, learning_rate=0.05, random_state=0)
        clf.fit(feats["train"], data["train"].y)
        val = challenge_score([LABELS[i] for i in data["val"].y], [LABELS[i] for i in clf.predict(feats["val"])])["score"]
        if best is None or val > best[0]:
            best = (val, rounds, clf)
    val_score, rounds, clf = best
    rows.append({"model": "baseline: features + gradient boosting", "seed": 0, "rounds": rounds,
                 "val_score": val_score,
                 "fp32": challenge_score(truth, [LABELS[i] for i in clf.predict(feats["test"])])})
    return rows


def write_metrics(path: Path, row: dict[str, Any], command: str) -> None:
    """The shipped checkpoint's figures (``<model>.metrics.json``): record-level test scores."""
    keep = {"model": row["registered"], "command": command, "seed": row["seed"],
            "data": {"source": "challenge2017", "task": "rhythm", "split": "record-level stratified, 10 folds, "
                     "test fold 0, validation fold 1"},
            "metrics": {f"test_{kind}_challenge_score": row[kind]["score"] for kind in ("fp32", "int8") if kind in row},
            "test": {kind: row[kind] for kind in ("fp32", "int8") if kind in row},
            "training": {k: row["training"][k] for k in ("best_epoch", "best_val_score")},
            "sizes": {k: row.get(k) for k in ("params", "macs", "flash_bytes", "arena_bytes")}}
    path.write_text(json.dumps(keep, indent=1, sort_keys=True) + "\n")


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model: mean and sample sd over seeds of every score, sizes from its first export."""
    from .ecg_models import group_runs

    out = []
    for row, runs in group_runs(rows):
        for kind in ("fp32", "int8"):
            values = [r[kind] for r in runs if kind in r]
            if values:
                row[kind] = {m: float(np.mean([v[m] for v in values])) for m in values[0]}
                row[kind + "_sd"] = {m: float(np.std([v[m] for v in values], ddof=1)) if len(values) > 1 else None
                                     for m in values[0]}
        out.append(row)
    return out


def _cell(row: dict[str, Any], kind: str, metric: str) -> str:
    if kind not in row:
        return "-"
    sd = (row.get(kind + "_sd") or {}).get(metric)
    return f"{row[kind][metric]:.3f}" + (f" ± {sd:.3f}" if sd is not None else "")


def _table(summary: list[dict[str, Any]]) -> list[list[str]]:
    head = ["model", "seeds", "params", "MACs", "int8 bytes", "arena bytes", "score fp32", "score int8",
            "F1 N", "F1 A", "F1 O", "F1 ~", "AF Se", "AF Sp"]
    lines = [head]
    for r in summary:
        kind = "int8" if "int8" in r else "fp32"
        size = [f"{r[k]:,}" if r.get(k) is not None else "-" for k in ("params", "macs", "flash_bytes", "arena_bytes")]
        lines.append([r["model"], str(len(r["seeds"])), *size, _cell(r, "fp32", "score"), _cell(r, "int8", "score"),
                      *[_cell(r, kind, m) for m in ("f1_normal", "f1_af", "f1_other", "f1_noisy", "af_se", "af_sp")]])
    return lines


def _markdown(report: dict[str, Any]) -> str:
    table = _table(report["summary"])
    md = ["# Rhythm models on the Challenge 2017 test split (record level)", "", f"Command: `{report['command']}`", "",
          "| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    md += ["| " + " | ".join(line) + " |" for line in table[1:]]
    md += ["", "score: the challenge score (mean F1 of normal, AF, other) over the test recordings, each labelled "
           "by the runtime's record decision; F1 and AF Se/Sp from the int8 model where it exported, else float; "
           "mean ± sample sd over seeds. MACs: conv, depthwise and fully-connected multiply-accumulates of the int8 "
           ".tflite per 9 s window; arena: TFLite Micro. Baselines have no int8 column.", ""]
    md += [f"- {r['model']} seed {r['seed']}: export failed: {r['export_error']}" for r in report["rows"]
           if "export_error" in r]
    md += ["", f"Recordings per split: {json.dumps(report['data'])}", ""]
    return "\n".join(md)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"command": " ".join(["python -m wearable.experiments.rhythm2017", *sys.argv[1:]]),
                              "seeds": seeds, "rows": [], "summary": [], "data": {}}
    noise = _noise(args)
    data = _data(args)
    report["data"] = {s: {LABELS[k]: int(c) for k, c in enumerate(np.bincount(d.y, minlength=len(LABELS)))}
                      for s, d in data.items()}
    if args.baselines:
        report["rows"] += _baselines(args, data)
    for seed in seeds:
        for key in keys:
            log.info("training %s (seed %d)", key, seed)
            report["rows"].append(_one(key, seed, data, noise, args, args.out))
            if args.checkpoint is not None:
                write_metrics(args.checkpoint.with_suffix(".metrics.json"), report["rows"][-1], report["command"])
            report["summary"] = summarize(report["rows"])
            (args.out / "report.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
            (args.out / "report.md").write_text(_markdown(report))
    report["summary"] = summarize(report["rows"])
    (args.out / "report.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    (args.out / "report.md").write_text(_markdown(report))
    return report


def _check(args: argparse.Namespace) -> str | None:
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS]
    if not keys or unknown:
        return f"unknown model(s) {', '.join(unknown) or '(none given)'}; accepted: {', '.join(MODELS)}"
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        return f"--seeds must be integers separated by commas, got {args.seeds!r}"
    if not seeds or min(seeds) < 0 or args.split_seed < 0:
        return f"--seeds and --split-seed must be non-negative integers, got {args.seeds!r}, {args.split_seed}"
    if args.epochs < 1 or args.samples_per_epoch < 1 or args.threads < 1 or args.limit_records < 0 \
            or args.qat_epochs < 0:
        return "--epochs, --samples-per-epoch and --threads must be >= 1, --limit-records and --qat-epochs >= 0"
    if not (np.isfinite(args.qat_lr) and args.qat_lr > 0):
        return f"--qat-lr must be a finite number > 0, got {args.qat_lr}"
    if not 0.0 <= args.label_smoothing < 1.0:
        return f"--label-smoothing must be in [0, 1), got {args.label_smoothing}"
    if not 0 <= args.fold < 10:
        return f"--fold must be in 0..9, got {args.fold}"
    if args.checkpoint is not None and (len(keys) != 1 or len(seeds) != 1 or args.fold != 0):
        return "--checkpoint takes exactly one model and one seed, on fold 0"
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    problem = _check(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from wearable.data import DataError

    try:
        report = run(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FloatingPointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in _table(report["summary"]):
        print("  ".join(f"{c:>14}" for c in line))
    print(f"report: {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
