"""Compare the tiny InceptionFormer with 1-D ResNet-18 and MobileNetV2 on MIT-BIH rhythm.

Every model is trained on the same windows (MIT-BIH rhythm normal/af/other, inter-patient:
DS1 minus three validation records, plus synthetic rhythms mapped normal->normal, af->af,
ectopic/brady/tachy->other), exported through the same path (``quantize.export_model``: full
int8, TFLite Micro arena) and scored on the DS2 test records in fp32 (PyTorch) and int8
(the exported .tflite in ai-edge-litert). Writes ``report.json`` and ``report.md`` (rewritten
after every model) and prints a table. Training recipe (the same for every model, see
``_ecg_recipe``): all DS1 training windows at a 2.5 s hop + synthetic rhythms, class-balanced
sampling, augmentation, label smoothing, the best epoch on the validation records.
Measured on a 2-core machine running two such jobs at once (one thread each; 10 epochs of 4,096
windows, train + export + DS2 scoring, mean of five seeds): 2.0 min for
``inceptionformer_tiny:160kb``, 2.9 min for its ``:stride2`` variant, 3.5 min for ResNet-18 w32,
6.9 min for MobileNetV2 x0.5. ``inceptionformer_tiny:160kb*`` are the registered tiny
variant with ``inceptionformer.LITE_160KB`` (the configuration within the 160 KB flash target).
A single run says little: the DS1 training records hold one AF patient, and the same model
differs by up to 0.18 macro F1 between seeds, so ``--seeds 0,1,2,3,4`` trains every model once
per seed and reports mean ± sd (runs are then written under ``OUT/seed<S>/``).
``--val-train-minutes 10`` also trains on the first 10 minutes of the validation records, so
that record 201, the second DS1 AF patient, trains too (README: it helps the baselines, not the
160 KB models).

Exit codes: 0 done (export failures are reported in the table, not fatal), 2 bad input.
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

from wearable.models.inceptionformer import LITE_160KB

__all__ = ["MODELS", "DEFAULT_MODELS", "main", "run", "split_by_time", "group_runs", "summarize"]

log = logging.getLogger("wearable.experiments.ecg_models")

# key -> (registered model, config overrides); ":" marks a variant of a registered model
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "inceptionformer_tiny": ("inceptionformer_tiny", {"attention": "mhsa"}),
    "inceptionformer_tiny:160kb": ("inceptionformer_tiny", {"attention": "mhsa", **LITE_160KB}),
    "inceptionformer_tiny:160kb:sra": ("inceptionformer_tiny", {"attention": "sra", **LITE_160KB}),
    "inceptionformer_tiny:160kb:window": ("inceptionformer_tiny", {"attention": "window", **LITE_160KB}),
    # stem stride 2 instead of 4: twice the tokens (and MACs) in every stage, the same weights
    "inceptionformer_tiny:160kb:stride2": ("inceptionformer_tiny", {"attention": "mhsa", **LITE_160KB,
                                                                    "stem_strides": (1, 2)}),
    "inceptionformer_tiny:sra": ("inceptionformer_tiny", {"attention": "sra"}),
    "inceptionformer_tiny:window": ("inceptionformer_tiny", {"attention": "window"}),
    "inceptionformer_3stage": ("inceptionformer_3stage", {}),
    "inceptionformer_3stage:stride2": ("inceptionformer_3stage", {"stem_strides": (1, 2)}),
    "resnet18_1d": ("resnet18_1d", {}),
    "resnet18_1d:w32": ("resnet18_1d", {"base_width": 32}),
    "mobilenetv2_1d": ("mobilenetv2_1d", {}),
    "mobilenetv2_1d:x0.5": ("mobilenetv2_1d", {"width_mult": 0.5}),
    "dscnn_tiny": ("dscnn_tiny", {}),  # the foundation's 8k-parameter CNN, as a floor
}
DEFAULT_MODELS = ("inceptionformer_tiny:160kb", "inceptionformer_tiny:160kb:stride2", "resnet18_1d:w32",
                  "mobilenetv2_1d:x0.5", "inceptionformer_tiny:160kb:sra", "inceptionformer_tiny:160kb:window",
                  "inceptionformer_3stage")
LABELS = ("normal", "af", "other")
_SYNTHETIC_TO_RHYTHM = {"normal": "normal", "af": "af", "ectopic": "other", "brady": "other", "tachy": "other"}
RATE_HZ, WINDOW = 100.0, 1000


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wearable.experiments.ecg_models", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, help="PhysioNet data root with mitdb/ (default: $WEARABLE_DATA_DIR)")
    p.add_argument("--out", type=Path, default=Path("runs/ecg_models"), help="output directory (default: %(default)s)")
    p.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help=f"comma-separated, from: {', '.join(MODELS)} (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=10, help="training epochs per model (default: %(default)s)")
    p.add_argument("--samples-per-epoch", type=int, default=4096,
                   help="class-balanced training windows drawn per epoch (default: %(default)s)")
    p.add_argument("--train-windows", type=int, default=0,
                   help="MIT-BIH training windows, a seeded random subset; 0 = all (default: %(default)s)")
    p.add_argument("--hop-samples", type=int, default=250,
                   help="hop between MIT-BIH training windows (overlapping windows; default: %(default)s)")
    p.add_argument("--val-train-minutes", type=float, default=0.0, metavar="M",
                   help="move the first M minutes of every validation record into training (windows that end "
                        "by minute M; windows that start at or after it stay validation, those across it are "
                        "dropped): record 201, one of the two DS1 AF patients, then trains too. 0 = the whole "
                        "records validate (default: %(default)s)")
    p.add_argument("--synthetic-windows", type=int, default=1000,
                   help="synthetic rhythm windows added to training (default: %(default)s)")
    p.add_argument("--calibration-windows", type=int, default=128, help="int8 calibration windows (default: %(default)s)")
    p.add_argument("--holdout-windows", type=int, default=128,
                   help="validation windows for the export's float-vs-int8 gates (default: %(default)s)")
    p.add_argument("--gate", action="store_true",
                   help="apply quantize's export gates (agreement, error ratio, TFLM vs builtin kernels, metric "
                        "drop); a model that fails them is listed without int8 figures. By default the figures are "
                        "recorded, not gated: TFLM matches TFLite's reference kernels exactly, but ai-edge-litert's "
                        "optimized ADD and BATCH_MATMUL round differently, so residual and attention nets fail the "
                        "1-step TFLM gate although both runtimes are right")
    p.add_argument("--seed", type=int, default=0, help="data subset and weight seed (default: %(default)s)")
    p.add_argument("--seeds", metavar="S,S,...",
                   help="several seeds, e.g. 0,1,2,3,4: every model is trained once per seed and the table "
                        "gives mean ± sd over them (single runs differ by up to 0.18 macro F1 between seeds); "
                        "replaces --seed")
    p.add_argument("--qat-epochs", type=int, default=0,
                   help="quantization-aware fine-tuning epochs after training (recipe_qat: the same recipe, "
                        "calibrated on the calibration windows); 0 = none (default: %(default)s)")
    p.add_argument("--qat-lr", type=float, default=1e-4, help="learning rate of that fine-tuning (default: %(default)s)")
    p.add_argument("--checkpoint", type=Path, metavar="PATH",
                   help="also write the trained model here as a shippable checkpoint (its data spec without "
                        "data_dir, as wearable/checkpoints/ holds them); one model and one seed only")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch logs")
    return p


def _data(args: argparse.Namespace) -> dict[str, Any]:
    from wearable.data import load_windows

    spec = dict(sampling_rate_hz=RATE_HZ, window_samples=WINDOW, data_dir=args.data_dir, seed=args.seed)
    train = load_windows("mitdb", "rhythm", split="train", limit=args.train_windows or None,
                         hop_samples=args.hop_samples, **spec)
    val = load_windows("mitdb", "rhythm", split="val", **spec)
    test = load_windows("mitdb", "rhythm", split="test", **spec)
    if tuple(train.labels) != LABELS:
        raise ValueError(f"mitdb rhythm labels are {train.labels}, expected {LABELS}")
    x, y = [train.x], [train.y]
    moved = [0, 0, 0]  # windows per class moved from the validation records into training
    if args.val_train_minutes:
        cut = args.val_train_minutes * 60 * RATE_HZ
        dense = load_windows("mitdb", "rhythm", split="val", hop_samples=args.hop_samples, **spec)
        early, _ = split_by_time(dense, cut, WINDOW)  # at the training hop
        _, val = split_by_time(val, cut, WINDOW)
        x.append(early.x)
        y.append(early.y)
        moved = np.bincount(early.y, minlength=3).tolist()
    if args.synthetic_windows:
        syn = load_windows("synthetic", "rhythm", split="train", sampling_rate_hz=RATE_HZ, window_samples=WINDOW,
                           seed=args.seed, limit=args.synthetic_windows)
        x.append(syn.x)
        y.append(np.array([LABELS.index(_SYNTHETIC_TO_RHYTHM[syn.labels[k]]) for k in syn.y], dtype=np.int64))
    rng = np.random.default_rng(args.seed)
    if not len(val):
        raise ValueError(f"--val-train-minutes {args.val_train_minutes:g} leaves no validation windows")
    return {"train": _Windows(np.concatenate(x), np.concatenate(y)), "val": _Windows(val.x, val.y),
            "test": _Windows(test.x, test.y), "val_holdout": rng.permutation(len(val.x))[:args.holdout_windows],
            "calibration": rng.permutation(len(train.x))[:args.calibration_windows], "spec": spec,
            "counts": {"train_mitdb": len(train), "train_mitdb_per_class": np.bincount(train.y, minlength=3).tolist(),
                       "train_hop_samples": args.hop_samples, "train_synthetic": args.synthetic_windows,
                       "train_from_val_records_per_class": moved,
                       "val": len(val), "val_per_class": np.bincount(val.y, minlength=3).tolist(),
                       "test": len(test), "test_per_class": np.bincount(test.y, minlength=3).tolist()}}


def split_by_time(ws: Any, cut: float, window: int) -> tuple[Any, Any]:
    """``(early, late)`` windows of ``ws`` (a ``WindowSet`` with ``origin``): early ones end by
    sample ``cut`` of their record, late ones start at or after it; windows across it are dropped,
    so no sample is in both."""
    start = ws.origin[:, 1]
    early, late = start + window <= cut, start >= cut
    return tuple(_Windows(ws.x[m], ws.y[m]) for m in (early, late))


class _Windows:
    labels = LABELS

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)


def _int8_predict(tflite_path: Path, x: np.ndarray) -> np.ndarray:
    from wearable.runtime import dequantize, invoke, load_interpreter, quantize

    # XNNPACK (the default CPU delegate) for speed on 3,700 windows: it may round an op one
    # step differently from the builtin kernels; the export gates it against float as well.
    interp = load_interpreter(tflite_path, backend="ai_edge_litert", default_delegates=True)
    (y,) = invoke(interp, quantize(x, interp.get_input_details()[0]))
    return dequantize(y, interp.get_output_details()[0]).argmax(axis=1)


def _record_only() -> Any:
    """Gates that never fail on a figure (the export still refuses float ops and a broken ONNX)."""
    from quantize import Thresholds

    return Thresholds(min_agreement_pct=0.0, max_error_ratio=1e9, min_output_coverage=0.0, max_onnx_diff=1e-4,
                      max_tflm_diff=255, max_metric_drop=100.0)


def _one(key: str, data: dict[str, Any], args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import torch

    from benchmarks.macs import count_macs
    from benchmarks.tflite_graph import read_graph
    from quantize import CheckFailed, ExportError, Thresholds, export_model
    from wearable.metrics import classification_report
    from wearable.models import create
    from wearable.training import save_checkpoint
    from wearable.training.loop import predict, seed_everything

    from ._ecg_recipe import Recipe, recipe_fit, recipe_qat

    name, cfg = MODELS[key]
    started = time.time()
    seed_everything(args.seed)
    model = create(name, num_classes=len(LABELS), sampling_rate_hz=RATE_HZ, window_samples=WINDOW, **cfg)
    row: dict[str, Any] = {"model": key, "registered": name, "config": cfg,
                           "params": sum(p.numel() for p in model.parameters())}
    recipe = Recipe(epochs=args.epochs, samples_per_epoch=args.samples_per_epoch, seed=args.seed)
    row["training"] = recipe_fit(model, data["train"].x, data["train"].y, data["val"], recipe=recipe,
                                 sampling_rate_hz=RATE_HZ, progress=not args.quiet)
    if args.qat_epochs:
        qat = Recipe(epochs=args.qat_epochs, samples_per_epoch=args.samples_per_epoch, lr=args.qat_lr, seed=args.seed)
        row["qat"] = recipe_qat(model, data["train"].x, data["train"].y, data["val"],
                                calibration=data["train"].x[data["calibration"]], recipe=qat, sampling_rate_hz=RATE_HZ,
                                progress=not args.quiet)
    row["train_seconds"] = round(time.time() - started, 1)
    test = data["test"]
    fp32 = classification_report(test.y, predict(model, test.x).argmax(axis=1), LABELS)
    row["fp32_macro_f1"], row["fp32_accuracy"] = fp32["macro_f1"], fp32["accuracy"]
    target = out / key.replace(":", "_")
    spec = {"source": "mitdb", "task": "rhythm", **{k: (str(v) if isinstance(v, Path) else v)
                                                     for k, v in data["spec"].items()}}
    save_checkpoint(target.parent / f"{target.name}.pt", model.eval(), model_name=name, data=spec, labels=list(LABELS),
                    metrics={"test_fp32_macro_f1": fp32["macro_f1"]}, seed=args.seed)
    if args.checkpoint is not None:  # the shippable copy: no path of this machine in it
        save_checkpoint(args.checkpoint, model, model_name=name, data={**spec, "data_dir": None}, labels=list(LABELS),
                        metrics={"test_fp32_macro_f1": fp32["macro_f1"]}, seed=args.seed)
    try:
        manifest = export_model(model.eval(), target, calibration=data["train"].x[data["calibration"]],
                                holdout=data["val"].x[data["val_holdout"]],
                                holdout_labels=data["val"].y[data["val_holdout"]], labels=list(LABELS),
                                task="rhythm", thresholds=Thresholds() if args.gate else _record_only(),
                                data_info={"source": "mitdb", "task": "rhythm", "note": "ecg_models experiment"},
                                overwrite=True)
    except (CheckFailed, ExportError) as exc:
        row["export_error"] = str(exc).splitlines()[0][:300]
        log.warning("%s: export failed: %s", key, row["export_error"])
        return row
    tflite = (target / "model_int8.tflite").read_bytes()
    counts = count_macs(read_graph(tflite))
    row["macs"] = sum(c.macs for c in counts if c.kind in ("conv", "depthwise", "fc"))
    row["macs_all"] = sum(c.macs for c in counts)
    row["flash_bytes"] = len(tflite)
    row["arena_bytes"] = manifest.data["tflm"]["arena_bytes"]
    row["tflm_max_abs_diff"] = manifest.data["tflm"]["max_abs_diff"]
    row["ops"] = manifest.data["op_count"]
    (agreement,) = manifest.data["checks"]["agreement"]
    row["holdout_agreement_pct"], row["holdout_error_ratio"] = agreement["argmax_agreement_pct"], agreement["error_ratio"]
    int8 = classification_report(test.y, _int8_predict(target / "model_int8.tflite", test.x), LABELS)
    row["int8_macro_f1"], row["int8_accuracy"] = int8["macro_f1"], int8["accuracy"]
    row["per_class_fp32"], row["per_class_int8"] = fp32["per_class"], int8["per_class"]
    row["seconds"] = round(time.time() - started, 1)
    torch.set_num_threads(1)  # export helpers may have touched it
    return row


_COLUMNS = (("model", "model", "{}"), ("seed", "seed", "{}"), ("params", "params", "{:,}"), ("macs", "MACs", "{:,}"),
            ("flash_bytes", "int8 bytes", "{:,}"), ("arena_bytes", "arena bytes", "{:,}"),
            ("fp32_macro_f1", "fp32 F1", "{:.3f}"), ("int8_macro_f1", "int8 F1", "{:.3f}"),
            ("holdout_agreement_pct", "agree %", "{:.1f}"), ("tflm_max_abs_diff", "TFLM diff", "{}"),
            ("seconds", "seconds", "{:.0f}"))
_SUMMARY_COLUMNS = (("model", "model", "{}"), ("params", "params", "{:,}"), ("macs", "MACs", "{:,}"),
                    ("flash_bytes", "int8 bytes", "{:,}"), ("arena_bytes", "arena bytes", "{:,}"),
                    ("fp32_macro_f1", "fp32 F1 mean ± sd", None), ("int8_macro_f1", "int8 F1 mean ± sd", None))


def _cell(row: dict[str, Any], key: str, fmt: str | None) -> str:
    if row.get(key) is None:
        return "-"
    if fmt is None:  # mean ± sd over seeds
        sd = row.get(key + "_sd")
        return f"{row[key]:.3f}" + (f" ± {sd:.3f}" if sd is not None else "")
    return fmt.format(row[key])


def _table(rows: list[dict[str, Any]], columns: tuple = _COLUMNS) -> list[list[str]]:
    return [[title for _, title, _ in columns]] + [[_cell(r, k, fmt) for k, _, fmt in columns] for r in rows]


def _printed_table(report: dict[str, Any]) -> list[list[str]]:
    """The per-model summary over several seeds, else the runs themselves."""
    return _table(report["summary"], _SUMMARY_COLUMNS) if len(report["seeds"]) > 1 else _table(report["rows"])


def _md(table: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])] + [
        "| " + " | ".join(line) + " |" for line in table[1:]]


def _markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    md = ["# ECG rhythm models: MIT-BIH DS2 (inter-patient) test set", "", f"Command: `{report['command']}`", ""]
    if len(report["seeds"]) > 1:
        md += [f"Mean ± sample sd over seeds {', '.join(map(str, report['seeds']))} (sizes from one export):", ""]
        md += _md(_table(report["summary"], _SUMMARY_COLUMNS)) + ["", "Every run:", ""]
    md += _md(_table(rows))
    md += ["", "MACs: conv, depthwise and fully-connected multiply-accumulates of the int8 .tflite "
           "(benchmarks.macs); int8 bytes: the .tflite file; arena: TFLite Micro; F1: macro F1 over "
           "normal/af/other on the DS2 records (int8: ai-edge-litert with XNNPACK); agree: float-vs-int8 "
           "argmax agreement on the export's validation windows; TFLM diff: largest int8 output difference "
           "of TFLite Micro from ai-edge-litert's builtin kernels (64 windows).", ""]
    md += [f"- {r['model']} seed {r['seed']}: export failed: {r['export_error']}" for r in rows if "export_error" in r]
    md += ["", f"Data (first seed): {json.dumps(report['data'])}", ""]
    return "\n".join(md)


def _keys(args: argparse.Namespace) -> list[str]:
    return [k.strip() for k in args.models.split(",") if k.strip()]


def _seeds(args: argparse.Namespace) -> list[int]:
    if args.seeds is None:
        return [args.seed]
    return [int(s) for s in args.seeds.split(",") if s.strip()]


def group_runs(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Per model, in order of first appearance: a summary row with the size figures of its first
    exported run and the seeds, and the model's runs."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r)
    out = []
    for runs in by_model.values():
        first = next((r for r in runs if "macs" in r), runs[0])
        row = {k: first.get(k) for k in ("model", "params", "macs", "flash_bytes", "arena_bytes")}
        row["seeds"] = [r["seed"] for r in runs]
        out.append((row, runs))
    return out


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model over its seeds: size figures of the first seed's export, F1 as mean and sd."""
    out = []
    for row, runs in group_runs(rows):
        for metric in ("fp32_macro_f1", "int8_macro_f1"):
            values = [r[metric] for r in runs if r.get(metric) is not None]
            row[metric] = float(np.mean(values)) if values else None
            row[metric + "_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
        out.append(row)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train, export and score every model of ``args.models`` for every seed; return the report dict."""
    import torch
    from tqdm.auto import tqdm

    from wearable.cli_util import check_writable_dir

    torch.set_num_threads(1)
    out = check_writable_dir(args.out)
    keys = _keys(args)
    seeds = _seeds(args)
    rows: list[dict[str, Any]] = []
    meta: dict[str, Any] = {"command": "python -m wearable.experiments.ecg_models " + " ".join(sys.argv[1:]),
                            "epochs": args.epochs, "samples_per_epoch": args.samples_per_epoch, "seeds": seeds}
    out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(keys) * len(seeds), disable=args.quiet, desc="models")
    for seed in seeds:
        one = argparse.Namespace(**{**vars(args), "seed": seed})
        data = _data(one)  # the synthetic windows, calibration and hold-out subsets follow the seed
        meta.setdefault("data", data["counts"])
        # one seed keeps the plain names (runs/if_shipped/inceptionformer_tiny_160kb.pt)
        target = out if len(seeds) == 1 else out / f"seed{seed}"
        target.mkdir(parents=True, exist_ok=True)
        for key in keys:
            rows.append({**_one(key, data, one, target), "seed": seed})
            log.info("%s seed %d: %s", key, seed,
                     {k: rows[-1].get(k) for k in ("fp32_macro_f1", "int8_macro_f1", "macs")})
            bar.update(1)
            # after every model, so that a long run that is stopped keeps what it has finished
            report = {"rows": rows, "summary": summarize(rows), **meta}
            (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True, default=float) + "\n")
            (out / "report.md").write_text(_markdown(report))
    bar.close()
    return report


def _validate(args: argparse.Namespace) -> None:
    from wearable.cli_util import UsageError

    unknown = [k for k in _keys(args) if k not in MODELS]
    if unknown or not _keys(args):
        raise UsageError(f"unknown model(s) {unknown}; accepted: {', '.join(MODELS)}")
    if args.epochs < 1 or args.samples_per_epoch < 1 or args.hop_samples < 1:
        raise UsageError("--epochs, --samples-per-epoch and --hop-samples must be >= 1")
    if args.train_windows < 0 or args.synthetic_windows < 0 or args.qat_epochs < 0:
        raise UsageError("--train-windows, --synthetic-windows and --qat-epochs must be >= 0")
    if not args.qat_lr > 0:
        raise UsageError("--qat-lr must be > 0")
    if not 0 <= args.val_train_minutes < 30:  # MIT-BIH records are 30 min long
        raise UsageError(f"--val-train-minutes must be in [0, 30), got {args.val_train_minutes:g}")
    if args.calibration_windows < 1 or args.holdout_windows < 1:
        raise UsageError("--calibration-windows and --holdout-windows must be >= 1")
    if args.seeds is not None:
        try:
            seeds = _seeds(args)
        except ValueError:
            raise UsageError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
        if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
            raise UsageError(f"--seeds must name distinct non-negative integers, got {args.seeds!r}")
    if args.checkpoint is not None:
        if len(_keys(args)) != 1 or len(_seeds(args)) != 1:
            raise UsageError("--checkpoint needs exactly one model and one seed")
        if args.checkpoint.suffix != ".pt":
            raise UsageError(f"--checkpoint must be a .pt path, got {args.checkpoint}")
    if args.data_dir is not None and not args.data_dir.is_dir():
        raise UsageError(f"data directory {args.data_dir} does not exist")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    try:
        _validate(args)
        report = run(args)
    except (ValueError, OSError) as exc:  # UsageError and DataError are ValueErrors
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = _printed_table(report)
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        print("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths))))
    for r in report["rows"]:
        if "export_error" in r:
            print(f"{r['model']} seed {r['seed']}: export failed: {r['export_error']}")
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
