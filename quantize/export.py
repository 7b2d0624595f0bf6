"""Export checkpoints to fp32 ONNX + checked full-int8 TFLite: ``python -m quantize.export``.

With no model names or ``--checkpoint``, exports every registered model that has a shipped
checkpoint (``wearable/checkpoints/<model>.pt``) to ``artifacts/<model>/``. Calibration
windows come from the checkpoint's training data (split "train"), the held-out agreement
set from split "val" (``--holdout-split test`` to change).

Exit codes: 0 every model exported; 1 a check or gate failed (that model's directory is not
written); 2 bad input (unknown model, missing or corrupt checkpoint, missing data, unwritable
output): one ``error:`` line on stderr, nothing written.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wearable import CHECKPOINT_DIR

__all__ = ["main"]

log = logging.getLogger("quantize")

DEFAULT_CALIBRATION_WINDOWS = 500
_SETTINGS_KEYS = {"qat", "calibration_windows", "reason"}
_NOISY_LOGGERS = ("absl", "jax", "jax._src", "torch", "torch.onnx", "onnxscript", "onnx_ir", "litert_torch",
                  "ai_edge_quantizer", "tensorflow")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    from wearable.cli_util import number_in

    from quantize import BACKENDS, Thresholds

    t = Thresholds()
    p = _Parser(prog="python -m quantize.export", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="registered model names; their checkpoints are wearable/checkpoints/<MODEL>.pt")
    p.add_argument("--checkpoint", action="append", type=Path, default=[], metavar="PATH",
                   help="checkpoint file to export (repeatable)")
    p.add_argument("--out", type=Path, default=Path("artifacts"), metavar="DIR",
                   help="output root; one directory per model")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="data directory (overrides the checkpoint's data_dir)")
    p.add_argument("--calibration-windows", type=int, default=None, metavar="N",
                   help="training windows used to calibrate the int8 ranges (default: 500, or the "
                        "checkpoint's <model>.export.json)")
    p.add_argument("--holdout-windows", type=int, default=1000, metavar="N",
                   help="held-out windows for the float-vs-int8 agreement gate")
    p.add_argument("--holdout-split", choices=("val", "test"), default="val")
    p.add_argument("--min-agreement", type=number_in(0, 100), default=t.min_agreement_pct, metavar="PCT",
                   help="minimum float-vs-int8 argmax agreement, percent")
    p.add_argument("--max-error-ratio", type=number_in(0), default=t.max_error_ratio, metavar="R",
                   help="maximum |int8 - float| output error as a fraction of the float output range")
    p.add_argument("--min-output-coverage", type=number_in(0, 1), default=t.min_output_coverage, metavar="F",
                   help="minimum fraction of the float output range representable by the int8 output")
    p.add_argument("--max-onnx-diff", type=number_in(0), default=t.max_onnx_diff, metavar="D",
                   help="maximum |ONNX Runtime - PyTorch| output difference")
    p.add_argument("--max-tflm-diff", type=number_in(0, 255, integer=True), default=t.max_tflm_diff, metavar="STEPS",
                   help="maximum int8 difference of TFLite Micro's (and tflite-runtime's) outputs from the reference kernels")
    p.add_argument("--max-metric-drop", action="append", type=_metric_drop, default=[], metavar="[MODEL=]POINTS",
                   help=f"largest float-to-int8 loss of the task metric (macro F1 points, or MAE units); "
                        f"MODEL=POINTS sets one model's gate (repeatable; default {t.max_metric_drop:g})")
    p.add_argument("--qat", action="store_true",
                   help="when post-training int8 fails the gates, fine-tune with fake quantization "
                        "(quantization-aware training) and export the result instead (always on for a "
                        "shipped checkpoint whose <model>.export.json says {\"qat\": true})")
    p.add_argument("--qat-epochs", type=int, default=3, metavar="N", help="QAT fine-tuning epochs")
    p.add_argument("--qat-windows", type=int, default=4000, metavar="N", help="training windows for QAT")
    p.add_argument("--backend", choices=sorted(BACKENDS), default="litert", help="conversion backend")
    p.add_argument("--tflite-runtime-python", type=Path, metavar="PATH",
                   default=_default_tflite_runtime_python(),
                   help="Python with numpy<2 + tflite-runtime 2.14 to replay the golden windows in "
                        "(default: $WEARABLE_TFLITE_RUNTIME_PYTHON, else ./.venv-pi/bin/python as the README "
                        "builds it; the check is skipped, and not claimed, when neither exists)")
    p.add_argument("--force", action="store_true", help="replace existing output directories")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), metavar="N",
                   help="models exported in parallel processes (each conversion is single-threaded)")
    p.add_argument("-v", "--verbose", action="store_true", help="show converter and debug logs")
    return p


def _metric_drop(text: str) -> tuple[str | None, float]:
    """``[MODEL=]POINTS`` of ``--max-metric-drop``; the model name is checked against the registry later."""
    from wearable.cli_util import number_in

    name, _, value = text.rpartition("=")
    return name or None, number_in(0)(value)


def _default_tflite_runtime_python() -> Path | None:
    if os.environ.get("WEARABLE_TFLITE_RUNTIME_PYTHON"):
        return Path(os.environ["WEARABLE_TFLITE_RUNTIME_PYTHON"])
    local = Path(".venv-pi") / "bin" / "python"
    return local if local.is_file() else None


@dataclass
class _Job:
    path: Path
    checkpoint: Any
    data_spec: dict
    out: Path
    evalset: Any = None  # a shipped quantize.evalset.EvalSet, used when no --data-dir is given
    qat: bool = False  # --qat, or the checkpoint's <model>.export.json says its release needs QAT
    calibration_windows: int = DEFAULT_CALIBRATION_WINDOWS


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, already reported)
        return int(exc.code or 0)
    _configure_logging(args.verbose)
    from wearable.cli_util import UsageError

    try:
        thresholds = _thresholds(args)
        jobs = _jobs(args)
    except (UsageError, ValueError, OSError) as exc:
        return _fail(exc)
    work = [(i, len(jobs), job, args, thresholds.get(job.checkpoint.model_name, thresholds[None]))
            for i, job in enumerate(jobs, 1)]
    if args.jobs > 1 and len(jobs) > 1:
        import concurrent.futures
        import multiprocessing

        # spawn, not fork: the parent has imported JAX/TF thread pools that a fork would copy mid-state
        try:
            with concurrent.futures.ProcessPoolExecutor(min(args.jobs, len(jobs)),
                                                        mp_context=multiprocessing.get_context("spawn")) as pool:
                results = list(pool.map(_run_job, *zip(*work)))
        except concurrent.futures.process.BrokenProcessPool:
            print("error: an export worker process died (a converter or runtime crashed); "
                  "rerun with --jobs 1 to see which model", file=sys.stderr)
            return 1
    else:
        results = []
        for item in work:
            results.append(_run_job(*item))
            if results[-1][1] == 2:
                break  # bad input: stop at the first one, as before anything else is exported
    for row, code, message in results:
        if code == 2:
            print(message, file=sys.stderr)
            return 2
    for row, code, message in results:
        if message:
            print(message, file=sys.stderr)
    _print_table([row for row, _, _ in results])
    return max(code for _, code, _ in results)


def _run_job(i: int, n: int, job: _Job, args: argparse.Namespace, thresholds: Any) -> tuple[list[str], int, str]:
    """Export one checkpoint; returns its table row, 0/1/2 and an error line (or "")."""
    if args.jobs > 1:
        _configure_logging(args.verbose)  # a spawned worker starts with default logging
    from wearable.cli_util import UsageError

    from quantize import CheckFailed, ExportError

    name = job.checkpoint.model_name
    start = time.perf_counter()

    def progress(stage: str) -> None:
        print(f"[{i}/{n}] {name}: {stage} ({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)

    try:
        progress("load data")
        calibration = _load_windows(job, "train", job.calibration_windows)
        holdout = _load_windows(job, args.holdout_split, args.holdout_windows)
        manifest = _export(job, args, thresholds, calibration, holdout, progress)
    except (CheckFailed, ExportError) as exc:
        return _row(name, None, time.perf_counter() - start), 1, f"error: {name}: {exc}"
    except (UsageError, ValueError, OSError) as exc:
        return _row(name, None, time.perf_counter() - start), 2, _error_line(exc, name)
    progress(f"written to {job.out}")
    return _row(name, manifest, time.perf_counter() - start), 0, ""


# --------------------------------------------------------------------------- input checks

def _thresholds(args: argparse.Namespace) -> dict[str | None, Any]:
    """Thresholds per model name; key None holds the default for every other model."""
    from wearable.cli_util import UsageError
    from wearable.models import list_models

    from quantize import Thresholds

    calibration = 1 if args.calibration_windows is None else args.calibration_windows
    if min(calibration, args.holdout_windows, args.qat_epochs, args.qat_windows, args.jobs) < 1:
        raise UsageError("--calibration-windows, --holdout-windows, --qat-epochs, --qat-windows and --jobs "
                         "must be >= 1")
    drops: dict[str | None, float] = {None: Thresholds().max_metric_drop}
    for name, value in args.max_metric_drop:
        if name and name not in list_models():
            raise UsageError(f"--max-metric-drop {name}={value:g}: unknown model {name!r}")
        drops[name] = value
    try:
        return {name: Thresholds(min_agreement_pct=args.min_agreement, max_error_ratio=args.max_error_ratio,
                                 min_output_coverage=args.min_output_coverage, max_onnx_diff=args.max_onnx_diff,
                                 max_tflm_diff=args.max_tflm_diff, max_metric_drop=drop)
                for name, drop in drops.items()}
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _jobs(args: argparse.Namespace) -> list[_Job]:
    """Resolve and validate every checkpoint and output directory before exporting any."""
    from wearable.cli_util import UsageError, check_writable_dir
    from wearable.models import list_models
    from wearable.training import load_checkpoint

    from quantize.evalset import evalset_path, load_evalset

    registered = list_models()
    paths = list(args.checkpoint)
    for name in args.models:
        if name not in registered:
            raise UsageError(f"unknown model {name!r}; registered models: {', '.join(registered)}")
        path = CHECKPOINT_DIR / f"{name}.pt"
        if not path.is_file():
            raise UsageError(f"no shipped checkpoint for {name!r} ({path}); pass --checkpoint PATH")
        paths.append(path)
    if not paths:
        paths = [CHECKPOINT_DIR / f"{n}.pt" for n in registered if (CHECKPOINT_DIR / f"{n}.pt").is_file()]
        if not paths:
            raise UsageError(f"no shipped checkpoints in {CHECKPOINT_DIR}; name a model or pass --checkpoint PATH")
    if args.tflite_runtime_python is not None and not _executable(args.tflite_runtime_python):
        raise UsageError(f"--tflite-runtime-python {args.tflite_runtime_python} is not an executable")
    root = check_writable_dir(args.out)
    jobs, seen = [], {}
    for path in paths:
        ckpt = load_checkpoint(path)  # CheckpointError is a ValueError
        name = ckpt.model_name
        if path.parent == CHECKPOINT_DIR and path.stem != name:
            raise UsageError(f"{path} holds a {name!r} checkpoint, not {path.stem!r}")
        if name in seen:
            raise UsageError(f"{path} and {seen[name]} are both {name!r}: they would share {root / name}")
        seen[name] = path
        spec = dict(ckpt.data)
        if not spec.get("source") or not spec.get("task"):
            raise UsageError(f"checkpoint {path} has no data source/task to calibrate with")
        rate = spec.get("sampling_rate_hz", ckpt.config.get("sampling_rate_hz"))
        if rate is None or not float(rate) > 0:
            raise UsageError(f"checkpoint {path}: sampling rate must be > 0 Hz, got {rate}")
        model_rate = ckpt.config.get("sampling_rate_hz")
        if model_rate is not None and float(model_rate) != float(rate):
            raise UsageError(f"checkpoint {path}: its data is sampled at {float(rate):g} Hz but the model is "
                             f"built for {float(model_rate):g} Hz")
        evalset = None
        if args.data_dir is not None:
            spec["data_dir"] = str(args.data_dir)
        elif evalset_path(path).is_file():
            evalset = load_evalset(evalset_path(path))
        if spec.get("data_dir") is not None and evalset is None:
            _check_data_dir(Path(spec["data_dir"]), given=args.data_dir is not None)
        out = root / name
        if out.exists() and not args.force:
            raise UsageError(f"{out} exists; use --force to replace it")
        settings = _export_settings(path)
        jobs.append(_Job(path=path, checkpoint=ckpt, data_spec=spec, out=out, evalset=evalset,
                         qat=args.qat or bool(settings.get("qat")),
                         calibration_windows=int(args.calibration_windows or settings.get("calibration_windows")
                                                 or DEFAULT_CALIBRATION_WINDOWS)))
    return jobs


def _export_settings(checkpoint: Path) -> dict:
    """``<model>.export.json`` next to a checkpoint: how its release is exported (e.g. ``{"qat": true}``)."""
    import json

    from wearable.cli_util import UsageError

    path = checkpoint.with_name(checkpoint.stem + ".export.json")
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable export settings ({exc})") from None
    if not isinstance(settings, dict) or set(settings) - _SETTINGS_KEYS:
        raise UsageError(f"{path}: export settings must be an object with keys {', '.join(sorted(_SETTINGS_KEYS))}")
    n = settings.get("calibration_windows", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"{path}: calibration_windows must be an integer >= 1")
    return settings


def _check_data_dir(path: Path, *, given: bool) -> None:
    from wearable.cli_util import UsageError

    hint = "" if given else " (from the checkpoint; pass --data-dir)"
    if not path.is_dir():
        raise UsageError(f"data directory {path} does not exist{hint}")
    if not any(path.iterdir()):
        raise UsageError(f"data directory {path} is empty{hint}")


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


# --------------------------------------------------------------------------- work

def _load_windows(job: _Job, split: str, limit: int) -> Any:
    from wearable.data import WindowSet, load_windows

    if job.evalset is not None:
        e = job.evalset
        x, y, mask = ((e.calibration_x, e.calibration_y, e.calibration_mask) if split == "train"
                      else (e.holdout_x, e.holdout_y, e.holdout_mask))
        return WindowSet(x=x[:limit], y=y[:limit], labels=e.labels, sampling_rate_hz=float(
            job.data_spec["sampling_rate_hz"]), source=job.data_spec["source"], task=job.data_spec["task"],
            records=(), mask=None if mask is None else mask[:limit])
    windows = load_windows(**job.data_spec, split=split, limit=limit)
    if len(windows.x) == 0:
        raise ValueError(f"{job.data_spec['source']}/{job.data_spec['task']} split {split!r} has no windows")
    return windows


def _export(job: _Job, args: argparse.Namespace, thresholds: Any, calibration: Any, holdout: Any,
            progress: Any) -> Any:
    from quantize import CheckFailed, export_model

    spec = job.data_spec
    data_info = {"source": spec["source"], "task": spec["task"], "seed": spec.get("seed", 0),
                 "calibration_split": "train", "holdout_split": args.holdout_split,
                 "calibration_limit": job.calibration_windows, "holdout_limit": args.holdout_windows,
                 "preprocessing": _preprocessing(spec)}
    mask_labels = _mask_labels(spec)
    if mask_labels:  # the names of a second, per-sample output (the stream turns it into artifact events)
        data_info["mask_labels"] = mask_labels
    if job.evalset is not None:
        data_info.update(holdout_split=job.evalset.meta.get("holdout_split"), evalset=job.path.stem + ".evalset.npz",
                         evalset_sha256=job.evalset.sha256)
    mask = getattr(holdout, "mask", None)  # a second target (e.g. an artifact mask) for a second output
    common = dict(calibration=calibration.x, holdout=holdout.x,
                  holdout_labels=holdout.y if mask is None else [holdout.y, mask],
                  labels=list(job.checkpoint.labels) or list(holdout.labels), task=spec["task"], data_info=data_info,
                  backend=args.backend, thresholds=thresholds, tflite_runtime_python=args.tflite_runtime_python,
                  overwrite=args.force, progress=progress, firmware=True)
    try:
        manifest = export_model(job.checkpoint, job.out, **common)
    except CheckFailed as exc:
        if not job.qat:
            raise
        print(f"{job.checkpoint.model_name}: post-training int8 failed ({exc}); quantization-aware fine-tuning",
              file=sys.stderr, flush=True)
        model, qat_info = _qat(job, args, calibration, holdout, str(exc), progress)
        manifest = export_model(model, job.out, qat=qat_info, **common)
    return manifest


def _qat(job: _Job, args: argparse.Namespace, calibration: Any, holdout: Any, failure: str,
         progress: Any) -> tuple[Any, dict]:
    """Fine-tune the BatchNorm-folded checkpoint under int8 emulation (``quantize.qat``)."""
    from wearable.training.loop import TrainingDiverged

    from quantize import CheckFailed, fold_batchnorm
    from quantize.qat import qat_finetune

    progress(f"QAT fine-tuning ({args.qat_epochs} epochs)")
    model, _ = fold_batchnorm(job.checkpoint.build().eval())
    model.model_name = job.checkpoint.model_name
    train = calibration if job.evalset is not None else _load_windows(job, "train", args.qat_windows)
    seed = int(job.data_spec.get("seed", 0))
    try:
        report = qat_finetune(model, train, holdout, calibration=calibration.x, epochs=args.qat_epochs, seed=seed)
    except TrainingDiverged as exc:
        raise CheckFailed(f"quantization-aware fine-tuning failed: {exc}") from None
    info = {"method": "quantize.qat: int8 weight (per channel) and activation (per tensor, min/max) emulation",
            "epochs": args.qat_epochs, "train_windows": len(train.x), "seed": seed,
            "train_source": "evalset calibration windows" if job.evalset is not None else "split train",
            "emulated_val_macro_f1": round(float(report["macro_f1"]), 6), "ptq_failure": failure[:500]}
    return model, info


def _mask_labels(spec: dict) -> list[str]:
    from wearable.data import task_mask_labels

    return list(task_mask_labels(spec["source"], spec["task"]))


def _preprocessing(spec: dict) -> dict:
    """What the runtime and firmware must replay before quantizing a window to the int8 input."""
    from wearable.data import preprocess, task_filters

    rate = spec["sampling_rate_hz"]
    return {"filter": "butterworth band-pass, causal sosfilt, state starts at the first sample's steady state",
            "order": preprocess.FILTER_ORDER, "ecg_clip_mv": preprocess.ECG_CLIP_MV, "ppg_clip": preprocess.PPG_CLIP,
            "channels": [{"kind": kind, "band_hz": list(preprocess.FILTER_BANDS_HZ[kind]),
                          "sos": preprocess.filter_sos(kind, sampling_rate=rate).round(12).tolist()}
                         for kind in task_filters(spec["source"], spec["task"])]}


# --------------------------------------------------------------------------- output

def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("quantize").setLevel(logging.DEBUG if verbose else logging.WARNING)
    if not verbose:
        for name in _NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)


def _error_line(exc: BaseException, name: str | None = None) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"error: {name + ': ' if name else ''}{message}"


def _fail(exc: BaseException, name: str | None = None) -> int:
    print(_error_line(exc, name), file=sys.stderr)
    return 2


def _row(name: str, manifest: Any, seconds: float) -> list[str]:
    if manifest is None:
        return [name, "-", "-", "-", "-", "-", "-", "-", "FAILED", f"{seconds:.1f}"]
    arena, agreement = manifest.arena_bytes, manifest.agreement_pct
    score = manifest.data["checks"].get("task_metric")
    metric = "-" if not score else f"{score['metric'].split(' %')[0]} {score['float']:.2f} / {score['int8']:.2f}"
    return [name, str(manifest.op_count), str(manifest.tflite_bytes), "-" if arena is None else str(arena),
            "-" if agreement is None else f"{agreement:.2f} %", f"{manifest.max_abs_error:.4g}", metric,
            "yes" if manifest.data.get("qat") else "no", ", ".join(manifest.verified_runtimes), f"{seconds:.1f}"]


def _print_table(rows: list[list[str]]) -> None:
    header = ["model", "ops", "int8 bytes", "arena bytes", "agreement", "max error", "metric float / int8", "QAT",
              "verified runtimes", "seconds"]
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
