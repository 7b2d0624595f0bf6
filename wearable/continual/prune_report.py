"""Structured-pruning report of a deployed ECG-CL task: size, MACs, memory and metric per pruning ratio.

    python -m wearable.continual.prune_report --data-dir ../shared/data

For the task checkpoint (default: the shipped ``ecgcl_seg_tiny``) and each ratio: remove that
fraction of channels with torch-pruning, fine-tune on the checkpoint's training data, export
to full int8 through ``quantize.export_model`` and print params, MACs per window (conv and
fully connected, counted from the .tflite), int8 flash bytes (the .tflite file), TFLite
Micro arena bytes, and the task metric in float and int8 (macro F1 on the test split; for
the MIT-BIH qrs task also QRS detection Se/+P on DS2 with ``--qrs``). Ratio 0 is the
checkpoint as shipped. A ratio whose export fails the gates of ``quantize.export_model`` is
reported with the reason. Exit codes: 0 done, 1 an export failed, 2 bad input (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from wearable.cli_util import UsageError, check_writable_dir
from wearable.data import DataError, load_windows
from wearable.metrics import classification_report
from wearable.training import CheckpointError, load_checkpoint, save_checkpoint
from wearable.training.loop import TrainConfig, fit, predict

from ._cli import Parser
from .qrs import qrs_evaluate
from .structured import channels_prune

__all__ = ["main", "int8_predictor"]

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "ecgcl_seg_tiny.pt"


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m wearable.continual.prune_report", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="ECG-CL task checkpoint")
    p.add_argument("--data-dir", type=Path, help="data folder (overrides the checkpoint's data_dir)")
    p.add_argument("--ratios", type=float, nargs="+", default=[0.25, 0.5], help="channel pruning ratios")
    p.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs after pruning")
    p.add_argument("--train-limit", type=int, default=4000, help="fine-tuning windows")
    p.add_argument("--test-limit", type=int, default=2000, help="test windows for the metric")
    p.add_argument("--qrs", action="store_true", help="also QRS detection Se/+P on MIT-BIH DS2 (qrs task only)")
    p.add_argument("--no-export", action="store_true", help="skip int8 export (no flash/arena/MACs/int8 figures)")
    p.add_argument("--max-tflm-diff", type=int, default=8, metavar="STEPS",
                   help="export gate: TFLite Micro vs builtin-kernel int8 steps (their rounding differs by "
                        "up to 1 step per op, which adds up over the ~40 ops of the backbone)")
    p.add_argument("--out", type=Path, metavar="DIR", help="keep pruned checkpoints and artifacts here")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the rows as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def int8_predictor(tflite: str | Path):
    """``f(x float32 (n, C, W)) -> dequantized outputs`` of a full-int8 model (builtin kernels)."""
    from wearable.runtime import int8_predictor as predictor

    return predictor(tflite)


def _export(model, ckpt, out: Path, train, test, max_tflm_diff: int) -> dict:
    from benchmarks.macs import count_macs
    from benchmarks.tflite_graph import read_graph
    from quantize import Thresholds, export_model

    manifest = export_model(model, out, calibration=train.x[:500], holdout=test.x[:256],
                            holdout_labels=test.y[:256], labels=ckpt.labels, task=ckpt.data.get("task"),
                            thresholds=Thresholds(max_tflm_diff=max_tflm_diff), overwrite=True).data
    tflite = out / "model_int8.tflite"
    graph = read_graph(tflite.read_bytes())
    counts = count_macs(graph)
    return {"flash_bytes": tflite.stat().st_size, "arena_bytes": manifest["tflm"]["arena_bytes"],
            "macs": int(sum(c.macs for c in counts if c.kind in ("conv", "depthwise", "fc"))),
            "weight_bytes": graph.constant_bytes,
            "tflm_max_diff": manifest["tflm"]["max_abs_diff"], "tflite": tflite}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    try:
        if any(not 0.0 < r < 1.0 for r in args.ratios):
            raise UsageError("--ratios must lie in (0, 1)")
        if args.epochs < 0 or min(args.train_limit, args.test_limit) < 1:
            raise UsageError("--epochs must be >= 0, --train-limit and --test-limit >= 1")
        for path in (args.out, args.json.parent if args.json else None):
            if path is not None:
                check_writable_dir(path)
        try:
            ckpt = load_checkpoint(args.checkpoint)
        except CheckpointError as exc:
            raise UsageError(str(exc)) from None
        if not ckpt.model_name.startswith("ecgcl"):
            raise UsageError(f"{args.checkpoint} holds {ckpt.model_name!r}, not an ECG-CL task model")
        spec = {k: v for k, v in ckpt.data.items() if k != "limit"}
        if args.data_dir is not None:
            spec["data_dir"] = args.data_dir
        train = load_windows(**spec, split="train", limit=args.train_limit)
        val = load_windows(**spec, split="val", limit=max(1, args.test_limit // 2))
        test = load_windows(**spec, split="test", limit=args.test_limit)
        if list(train.labels) != list(ckpt.labels):
            raise UsageError(f"checkpoint labels {ckpt.labels} differ from its data's {list(train.labels)}")
        qrs = args.qrs and spec.get("source") == "mitdb" and spec.get("task") == "qrs"
        if args.qrs and not qrs:
            raise UsageError("--qrs needs a checkpoint trained on the mitdb qrs task")
        rows = _rows(ckpt, args, spec, train, val, test, qrs)
    except (UsageError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print(rows, ckpt, args, qrs)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 1 if any("export_error" in r for r in rows) else 0


def _rows(ckpt, args, spec, train, val, test, qrs: bool) -> list[dict]:
    from quantize import CheckFailed, ExportError

    base = ckpt.build()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ecgcl_prune_") as tmp:
        out = args.out or Path(tmp)
        for ratio in [0.0, *args.ratios]:
            model = base if ratio == 0.0 else channels_prune(base, ratio)
            if ratio and args.epochs:
                fit(model, train, val, config=TrainConfig(epochs=args.epochs, lr=1e-3, seed=ckpt.seed),
                    progress=not args.quiet)
            model.eval()
            row = {"ratio": ratio, "channels": list(model.config.channels),
                   "params": int(sum(p.numel() for p in model.parameters())),
                   "float_macro_f1_pct": 100.0 * classification_report(
                       test.y, predict(model, test.x).argmax(axis=1), test.labels)["macro_f1"]}
            if args.out and ratio:
                save_checkpoint(out / f"pruned_{ratio:g}.pt", model, model_name=ckpt.model_name, data=ckpt.data,
                                labels=ckpt.labels, metrics={"test_macro_f1_pct": row["float_macro_f1_pct"]},
                                seed=ckpt.seed)
            run_int8 = None
            if not args.no_export:
                try:
                    exported = _export(model, ckpt, out / f"ratio_{ratio:g}", train, test, args.max_tflm_diff)
                except (CheckFailed, ExportError) as exc:  # one ratio failing its gates is a result, not a crash
                    row["export_error"] = str(exc).split("; worst tensors")[0]
                else:
                    run_int8 = int8_predictor(exported.pop("tflite"))
                    row.update(exported)
                    row["int8_macro_f1_pct"] = 100.0 * classification_report(
                        test.y, run_int8(test.x).argmax(axis=1), test.labels)["macro_f1"]
            if qrs:
                kw = dict(data_dir=spec.get("data_dir"), sampling_rate_hz=spec["sampling_rate_hz"],
                          window_samples=spec["window_samples"])
                row["qrs_float"] = qrs_evaluate(lambda x: predict(model, x), **kw)
                if run_int8 is not None:
                    row["qrs_int8"] = qrs_evaluate(run_int8, **kw)
            rows.append(row)
    return rows


def _print(rows: list[dict], ckpt, args, qrs: bool) -> None:
    print(f"{ckpt.model_name} ({args.checkpoint.name}, task {ckpt.data.get('source')}/{ckpt.data.get('task')}): "
          f"channel pruning with torch-pruning, {args.epochs} fine-tuning epochs on {args.train_limit} windows; "
          f"macro F1 on {args.test_limit} test windows")
    cols = ["ratio", "channels", "params", "MACs/window", "int8 flash B", "weights B", "TFLM arena B", "TFLM diff", "F1 float %", "F1 int8 %"]
    if qrs:
        cols += ["QRS Se/+P float %", "QRS Se/+P int8 %"]
    print(" | ".join(cols))
    for r in rows:
        cells = [f"{r['ratio']:g}", "/".join(map(str, r["channels"])), str(r["params"]), str(r.get("macs", "-")),
                 str(r.get("flash_bytes", "-")), str(r.get("weight_bytes", "-")),
                 str(r.get("arena_bytes", "-")), str(r.get("tflm_max_diff", "-")), f"{r['float_macro_f1_pct']:.2f}",
                 f"{r['int8_macro_f1_pct']:.2f}" if "int8_macro_f1_pct" in r else "-"]
        if qrs:
            for key in ("qrs_float", "qrs_int8"):
                q = r.get(key)
                cells.append(f"{q['se_pct']:.2f}/{q['ppv_pct']:.2f}" if q else "-")
        print(" | ".join(cells))
    for r in rows:
        if "export_error" in r:
            print(f"ratio {r['ratio']:g}: int8 export failed: {r['export_error']}")


if __name__ == "__main__":
    sys.exit(main())
