"""PPG rhythm class + motion-artifact localization: single-stream conflict vs dual-stream model.

Trains on synthetic wrist PPG (``ppg``/``rhythm_artifact``: sinus, ectopic, AF; injected
step, burst, drift, saturation and dropout artifacts with exact masks) and reports, on
held-out records (each synthetic window is its own simulated subject):

1. the loss-weight sweep of ``ppg_singlestream`` (shared encoder, two heads), loss
   ``(1 - w) * CE(class) + w * CE(mask)``: class macro F1 and artifact F1 per weight;
2. ``ppg_classifier`` (classification only, about the dual-stream model's size);
3. ``ppg_dualstream``: float and int8 (exported through ``quantize.export_model``, run in
   ai-edge-litert's builtin kernels; TFLite Micro arena and flash from the manifest);
4. with ``--data-dir``: the dual-stream mask on real BIDMC PPG of the held-out test
   subjects (``ppg``/``bidmc_artifact``, artifacts injected). With ``--bidmc-train N`` the
   dual-stream model also trains on N such windows of the BIDMC *training* subjects (mask
   loss only: BIDMC has no rhythm labels); without it, the BIDMC figure is zero-shot.

Metrics: per-sample artifact F1; boundary error = for every true artifact onset/offset
inside the window, the distance to the nearest predicted boundary of the same kind, in ms
(a boundary with no prediction counts as infinite), median over all; class macro F1.
Writes ``report.json``, ``example.png`` (a window with true and predicted spans) and, with
``--checkpoint``, the dual-stream checkpoint + ``.metrics.json``. Exit 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DATA_SPEC", "mask_f1", "boundary_errors_ms", "main", "run"]

log = logging.getLogger("wearable.experiments.ppg_artifacts")

DATA_SPEC = {"source": "ppg", "task": "rhythm_artifact", "sampling_rate_hz": 50.0, "window_samples": 512, "seed": 0}
# TFLite Micro's kernels differed from ai-edge-litert's builtin ones by 2-5 int8 steps on this
# model's dilated residual stack (export's default gate is 1). The experiment measures its own
# int8 drop on both metrics, so it loosens these two gates to get the artifact and reports the
# figures (tflm_max_abs_diff, export_error) instead of losing the run.
_TFLM_STEPS = 8
TARGETS = {"artifact_f1": 0.90, "boundary_median_ms": 100.0, "class_f1_gap_points": 1.0, "flash_kb": 128,
           "arena_kb": 96, "int8_drop_points": 0.5}


def mask_f1(true: np.ndarray, pred: np.ndarray) -> float:
    """Per-sample F1 of the artifact class (1) over all windows."""
    t, p = np.asarray(true).ravel() > 0, np.asarray(pred).ravel() > 0
    tp = float(np.sum(t & p))
    return 2 * tp / max(float(t.sum() + p.sum()), 1.0)


def boundary_errors_ms(true: np.ndarray, pred: np.ndarray, sampling_rate: float) -> np.ndarray:
    """Distance (ms) from every true onset/offset to the nearest predicted one of the same kind; inf if none."""
    out = []
    for t, p in zip(np.asarray(true) > 0, np.asarray(pred) > 0):
        dt, dp = np.diff(t.astype(np.int8)), np.diff(p.astype(np.int8))
        for edge in (1, -1):  # onsets, offsets
            tb, pb = np.flatnonzero(dt == edge), np.flatnonzero(dp == edge)
            for b in tb:
                out.append(np.min(np.abs(pb - b)) * 1000.0 / sampling_rate if pb.size else np.inf)
    return np.asarray(out, dtype=np.float64)


def _scores(y, mask, logits, mask_logits, fs: float) -> dict[str, float]:
    from wearable.metrics import macro_f1

    res = {"class_macro_f1": macro_f1(y, logits.argmax(axis=1), logits.shape[1])} if y is not None else {}
    if mask_logits is not None and mask is not None:
        pred = mask_logits.argmax(axis=1)
        errors = boundary_errors_ms(mask, pred, fs)
        res.update(artifact_f1=mask_f1(mask, pred), boundary_median_ms=float(np.median(errors)) if errors.size else 0.0,
                   boundaries_found_pct=float(100 * np.mean(np.isfinite(errors))) if errors.size else 100.0)
    return res


def _train(name: str, data: dict, *, seg_weight: float, args, epochs: int, extra=None, **cfg) -> Any:
    from wearable.models import create
    from wearable.training.multitask import MultitaskConfig, fit_multitask

    model = create(name, sampling_rate_hz=DATA_SPEC["sampling_rate_hz"], window_samples=DATA_SPEC["window_samples"],
                   **cfg)
    x, y, mask = data["train"].x, data["train"].y, data["train"].mask
    if extra is not None:  # mask-only windows: class -1 is left out of the class loss
        x, y = np.concatenate([x, extra.x]), np.concatenate([y, np.full(len(extra.x), -1, dtype=y.dtype)])
        mask = np.concatenate([mask, extra.mask])
    t0 = time.time()
    fit_multitask(model, x, y, mask if seg_weight > 0 else None,
                  config=MultitaskConfig(epochs=epochs, seed=args.seed, seg_weight=seg_weight),
                  progress=not args.quiet)
    log.info("%s (w=%.2f) trained in %.0f s", name, seg_weight, time.time() - t0)
    return model


def _evaluate(model, ws) -> dict[str, float]:
    from wearable.training.multitask import predict_multitask

    logits, mask_logits = predict_multitask(model, ws.x)
    return _scores(ws.y, ws.mask, logits, mask_logits, ws.sampling_rate_hz)


def _int8(model, data: dict, out: Path) -> tuple[dict, dict]:
    """Export ``model``; return (int8 scores on the test windows, export figures)."""
    from quantize import TFLITE_NAME, Thresholds, export_model
    from wearable.runtime import dequantize, invoke, load_interpreter, quantize

    test = data["test"]
    # every training window: the class logits have long tails (256 windows covered 0.84 of their range),
    # and calibration costs only the windows holding an extreme
    manifest = export_model(model, out, calibration=data["train"].x, holdout=test.x, holdout_labels=test.y,
                            labels=list(test.labels), task=DATA_SPEC["task"], overwrite=True,
                            thresholds=Thresholds(max_tflm_diff=_TFLM_STEPS, max_metric_drop=100.0))
    interp = load_interpreter(str(out / TFLITE_NAME), backend="ai_edge_litert", num_threads=1)
    ys = invoke(interp, quantize(test.x, interp.get_input_details()[0]))
    ys = [dequantize(y, d) for y, d in zip(ys, interp.get_output_details())]
    # TFLite may reorder outputs: the class logits are the 2-D one.
    logits = next(y for y in ys if y.ndim == 2)
    mask_logits = next(y for y in ys if y.ndim == 3)
    info = {"flash_kb": (out / TFLITE_NAME).stat().st_size / 1024, "arena_kb": manifest.data["tflm"]["arena_bytes"] / 1024,
            "tflm_max_abs_diff": manifest.data["tflm"]["max_abs_diff"], "agreement": manifest.data["checks"]["agreement"]}
    return _scores(test.y, test.mask, logits, mask_logits, test.sampling_rate_hz), info


def _plot(path: Path, ws, mask_pred: np.ndarray, index: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(ws.x.shape[-1]) / ws.sampling_rate_hz
    fig, ax = plt.subplots(figsize=(10, 3))
    ax.plot(t, ws.x[index, 0], lw=1, color="k", label="PPG (preprocessed)")
    lo, hi = float(ws.x[index, 0].min()), float(ws.x[index, 0].max())
    ax.fill_between(t, lo, hi, where=ws.mask[index] > 0, color="tab:red", alpha=0.25, step="mid", label="true artifact")
    ax.fill_between(t, lo - 0.15 * (hi - lo), lo - 0.05 * (hi - lo), where=mask_pred[index] > 0, color="tab:blue",
                    step="mid", label="predicted artifact")
    ax.set(xlabel="time (s)", title=f"held-out window {index}: class {ws.labels[ws.y[index]]}")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args: argparse.Namespace) -> dict:
    from wearable.data import load_windows

    spec = dict(DATA_SPEC, seed=args.seed)
    data = {split: load_windows(**spec, split=split, limit=n)
            for split, n in (("train", args.train), ("test", args.test))}
    report: dict[str, Any] = {"data": spec, "train_windows": args.train, "test_windows": args.test,
                              "epochs": args.epochs, "sweep_epochs": args.sweep_epochs, "sweep": {}}
    for w in args.sweep:
        report["sweep"][f"{w:g}"] = _evaluate(_train("ppg_singlestream", data, seg_weight=w, args=args, epochs=args.sweep_epochs), data["test"])
        log.info("singlestream w=%g: %s", w, report["sweep"][f"{w:g}"])
    classifier = _train("ppg_classifier", data, seg_weight=0.0, args=args, epochs=args.epochs)
    report["classifier"] = _evaluate(classifier, data["test"])
    bidmc_train = None
    if args.data_dir is not None and args.bidmc_train > 0:
        bidmc_train = load_windows("ppg", "bidmc_artifact", split="train", sampling_rate_hz=spec["sampling_rate_hz"],
                                   window_samples=spec["window_samples"], data_dir=args.data_dir, seed=args.seed,
                                   limit=args.bidmc_train)
        report["bidmc_train_windows"] = len(bidmc_train)
    dual = _train("ppg_dualstream", data, seg_weight=0.5, args=args, epochs=args.epochs, extra=bidmc_train)
    report["dualstream"] = _evaluate(dual, data["test"])
    report["params"] = {n: sum(p.numel() for p in m.parameters()) for n, m in (("ppg_classifier", classifier),
                                                                              ("ppg_dualstream", dual))}
    from wearable.training.multitask import predict_multitask

    _, mask_logits = predict_multitask(dual, data["test"].x)
    pred = mask_logits.argmax(axis=1)
    index = int(np.argmax([(m > 0).any() and (m > 0).mean() < 0.5 for m in data["test"].mask]))
    args.out.mkdir(parents=True, exist_ok=True)
    _plot(args.out / "example.png", data["test"], pred, index)
    if args.data_dir is not None:
        bidmc = load_windows("ppg", "bidmc_artifact", split="test", sampling_rate_hz=spec["sampling_rate_hz"],
                             window_samples=spec["window_samples"], data_dir=args.data_dir, seed=args.seed)
        _, mask_logits = predict_multitask(dual, bidmc.x)
        report["dualstream_bidmc_test"] = _scores(None, bidmc.mask, None, mask_logits, bidmc.sampling_rate_hz)
        report["dualstream_bidmc_test"]["windows"] = len(bidmc)
        report["dualstream_bidmc_test"]["trained_on_bidmc"] = bidmc_train is not None
    if args.checkpoint is not None:
        from wearable.training import save_checkpoint

        metrics = {f"test_{k}": v for k, v in report["dualstream"].items()}
        metrics.update({f"bidmc_test_{k}": v for k, v in report.get("dualstream_bidmc_test", {}).items()
                        if k in ("artifact_f1", "boundary_median_ms")})
        save_checkpoint(args.checkpoint, dual, model_name="ppg_dualstream", data=spec, labels=list(data["test"].labels),
                        metrics=metrics, seed=args.seed)
        args.checkpoint.with_suffix(".metrics.json").write_text(json.dumps(
            {"data": spec, "train_windows": args.train, "bidmc_train_windows": report.get("bidmc_train_windows", 0),
             "epochs": args.epochs, "metrics": metrics}, indent=2) + "\n")
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")  # kept if the export fails
    if not args.no_export:
        from quantize import ExportError

        try:
            with tempfile.TemporaryDirectory() as tmp:
                report["dualstream_int8"], report["export"] = _int8(dual, data, Path(tmp) / "ppg_dualstream")
        except ExportError as exc:
            report["export_error"] = str(exc)
            log.warning("int8 export failed: %s", exc)
        (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _table(report: dict) -> str:
    rows = ["| model | loss weight (mask) | class macro F1 | artifact F1 | boundary median (ms) |", "|---|---|---|---|---|"]

    def row(name, w, s):
        f = lambda k, fmt: format(s[k], fmt) if k in s else "-"  # noqa: E731
        rows.append(f"| {name} | {w} | {f('class_macro_f1', '.3f')} | {f('artifact_f1', '.3f')} | "
                    f"{f('boundary_median_ms', '.0f')} |")

    for w, s in report["sweep"].items():
        row("ppg_singlestream", w, s)
    row("ppg_classifier", "-", report["classifier"])
    row("ppg_dualstream", "0.5", report["dualstream"])
    if "dualstream_int8" in report:
        row("ppg_dualstream int8", "0.5", report["dualstream_int8"])
    if "dualstream_bidmc_test" in report:
        how = "trained with BIDMC train subjects" if report["dualstream_bidmc_test"].get("trained_on_bidmc") else "zero-shot"
        row(f"ppg_dualstream on BIDMC test subjects ({how})", "0.5", report["dualstream_bidmc_test"])
    return "\n".join(rows)


def _targets(report: dict) -> str:
    d, c = report["dualstream"], report["classifier"]
    lines = [f"artifact F1 {d['artifact_f1']:.3f} (target >= {TARGETS['artifact_f1']})",
             f"boundary error median {d['boundary_median_ms']:.0f} ms (target <= {TARGETS['boundary_median_ms']:.0f})",
             f"class macro F1 gap to ppg_classifier {100 * (c['class_macro_f1'] - d['class_macro_f1']):+.1f} points "
             f"(target <= {TARGETS['class_f1_gap_points']})"]
    if "export" in report:
        e, q = report["export"], report["dualstream_int8"]
        lines += [f"int8 flash {e['flash_kb']:.1f} KB (target <= {TARGETS['flash_kb']}), TFLM arena {e['arena_kb']:.1f} KB "
                  f"(target <= {TARGETS['arena_kb']})",
                  f"int8 drop: class F1 {100 * (d['class_macro_f1'] - q['class_macro_f1']):+.2f}, artifact F1 "
                  f"{100 * (d['artifact_f1'] - q['artifact_f1']):+.2f} points (target <= {TARGETS['int8_drop_points']})"]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wearable.experiments.ppg_artifacts", description=__doc__.split("\n")[0])
    p.add_argument("--train", type=int, default=2000, help="synthetic training windows (default 2000)")
    p.add_argument("--test", type=int, default=500, help="held-out synthetic windows (default 500)")
    p.add_argument("--epochs", type=int, default=15, help="epochs of ppg_classifier and ppg_dualstream")
    p.add_argument("--sweep-epochs", type=int, default=6, help="epochs of each single-stream sweep model")
    p.add_argument("--sweep", default="0,0.1,0.5,0.9,1", help="mask-loss weights of the single-stream sweep")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("artifacts/ppg_artifacts"), help="report folder")
    p.add_argument("--checkpoint", type=Path, default=None, help="save the dual-stream checkpoint here")
    p.add_argument("--data-dir", type=Path, default=None, help="PhysioNet data (adds the BIDMC test subjects)")
    p.add_argument("--bidmc-train", type=int, default=0, metavar="N",
                   help="with --data-dir: also train the dual-stream mask on N windows of the BIDMC training "
                        "subjects (default 0: BIDMC test figures are zero-shot)")
    p.add_argument("--no-export", action="store_true", help="skip the int8 export")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.sweep = [float(w) for w in args.sweep.split(",") if w.strip()]
    except ValueError:
        args.sweep = None
    if not args.sweep or any(not 0 <= w <= 1 for w in args.sweep):
        print("error: --sweep must list weights in [0, 1], e.g. 0,0.5,1", file=sys.stderr)
        return 2
    if args.bidmc_train < 0 or (args.bidmc_train and args.data_dir is None):
        print("error: --bidmc-train needs --data-dir and a count >= 0", file=sys.stderr)
        return 2
    if min(args.train, args.test, args.epochs, args.sweep_epochs) < 1:
        print("error: --train, --test, --epochs and --sweep-epochs must be >= 1", file=sys.stderr)
        return 2
    if args.data_dir is not None and not args.data_dir.is_dir():
        print(f"error: data directory {args.data_dir} does not exist", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    import torch

    torch.set_num_threads(1)
    report = run(args)
    print(_table(report))
    print(_targets(report))
    if "export_error" in report:
        print(f"int8 export failed: {report['export_error']}")
    elif "export" in report:
        print(f"TFLite Micro vs builtin kernels: max {report['export']['tflm_max_abs_diff']} int8 steps "
              f"(export's default gate: 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
