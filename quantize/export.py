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

__all__ = ["main"]

log = logging.getLogger("quantize")

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "wearable" / "checkpoints"
_NOISY_LOGGERS = ("absl", "jax", "jax._src", "torch", "torch.onnx", "onnxscript", "onnx_ir", "litert_torch",
                  "ai_edge_quantizer", "tensorflow")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"error: {message}\n")


def _parser() -> argparse.ArgumentParser:
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
    p.add_argument("--calibration-windows", type=int, default=500, metavar="N",
                   help="training windows used to calibrate the int8 ranges")
    p.add_argument("--holdout-windows", type=int, default=1000, metavar="N",
                   help="held-out windows for the float-vs-int8 agreement gate")
    p.add_argument("--holdout-split", choices=("val", "test"), default="val")
    p.add_argument("--min-agreement", type=float, default=t.min_agreement_pct, metavar="PCT",
                   help="minimum float-vs-int8 argmax agreement, percent")
    p.add_argument("--max-error-ratio", type=float, default=t.max_error_ratio, metavar="R",
                   help="maximum |int8 - float| output error as a fraction of the float output range")
    p.add_argument("--min-output-coverage", type=float, default=t.min_output_coverage, metavar="F",
                   help="minimum fraction of the float output range representable by the int8 output")
    p.add_argument("--max-onnx-diff", type=float, default=t.max_onnx_diff, metavar="D",
                   help="maximum |ONNX Runtime - PyTorch| output difference")
    p.add_argument("--max-tflm-diff", type=int, default=t.max_tflm_diff, metavar="STEPS",
                   help="maximum int8 difference of TFLite Micro's outputs from ai-edge-litert's builtin kernels")
    p.add_argument("--backend", choices=sorted(BACKENDS), default="litert", help="conversion backend")
    p.add_argument("--tflite-runtime-python", type=Path, metavar="PATH",
                   default=_default_tflite_runtime_python(),
                   help="Python with numpy<2 + tflite-runtime 2.14 to replay the golden windows in "
                        "(default: $WEARABLE_TFLITE_RUNTIME_PYTHON, else ./.venv-pi/bin/python as the README "
                        "builds it; the check is skipped, and not claimed, when neither exists)")
    p.add_argument("--force", action="store_true", help="replace existing output directories")
    p.add_argument("-v", "--verbose", action="store_true", help="show converter and debug logs")
    return p


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


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, already reported)
        return int(exc.code or 0)
    _configure_logging(args.verbose)
    from wearable.cli_util import UsageError

    from quantize import CheckFailed, ExportError

    try:
        thresholds = _thresholds(args)
        jobs = _jobs(args)
    except (UsageError, ValueError, OSError) as exc:
        return _fail(exc)
    rows, status = [], 0
    for i, job in enumerate(jobs, 1):
        name = job.checkpoint.model_name
        start = time.perf_counter()

        def progress(stage: str, _name: str = name, _i: int = i) -> None:
            print(f"[{_i}/{len(jobs)}] {_name}: {stage} ({time.perf_counter() - start:.1f} s)", file=sys.stderr,
                  flush=True)

        try:
            progress("load data")
            calibration = _load_windows(job, "train", args.calibration_windows)
            holdout = _load_windows(job, args.holdout_split, args.holdout_windows)
            manifest = _export(job, args, thresholds, calibration, holdout, progress)
        except (CheckFailed, ExportError) as exc:
            print(f"error: {name}: {exc}", file=sys.stderr)
            rows.append(_row(name, None, time.perf_counter() - start))
            status = 1
            continue
        except (UsageError, ValueError, OSError) as exc:
            return _fail(exc, name)
        rows.append(_row(name, manifest, time.perf_counter() - start))
        print(f"[{i}/{len(jobs)}] {name}: written to {job.out}", file=sys.stderr)
    _print_table(rows)
    return status


# --------------------------------------------------------------------------- input checks

def _thresholds(args: argparse.Namespace) -> Any:
    from wearable.cli_util import UsageError

    from quantize import Thresholds

    if args.calibration_windows < 1 or args.holdout_windows < 1:
        raise UsageError("--calibration-windows and --holdout-windows must be >= 1")
    try:
        return Thresholds(min_agreement_pct=args.min_agreement, max_error_ratio=args.max_error_ratio,
                          min_output_coverage=args.min_output_coverage, max_onnx_diff=args.max_onnx_diff,
                          max_tflm_diff=args.max_tflm_diff)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _jobs(args: argparse.Namespace) -> list[_Job]:
    """Resolve and validate every checkpoint and output directory before exporting any."""
    from wearable.cli_util import UsageError, check_writable_dir
    from wearable.models import list_models
    from wearable.training import load_checkpoint

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
        if name in seen:
            raise UsageError(f"{path} and {seen[name]} are both {name!r}: they would share {root / name}")
        seen[name] = path
        spec = dict(ckpt.data)
        if not spec.get("source") or not spec.get("task"):
            raise UsageError(f"checkpoint {path} has no data source/task to calibrate with")
        rate = spec.get("sampling_rate_hz", ckpt.config.get("sampling_rate_hz"))
        if rate is None or not float(rate) > 0:
            raise UsageError(f"checkpoint {path}: sampling rate must be > 0 Hz, got {rate}")
        if args.data_dir is not None:
            spec["data_dir"] = str(args.data_dir)
        if spec.get("data_dir") is not None:
            _check_data_dir(Path(spec["data_dir"]), given=args.data_dir is not None)
        out = root / name
        if out.exists() and not args.force:
            raise UsageError(f"{out} exists; use --force to replace it")
        jobs.append(_Job(path=path, checkpoint=ckpt, data_spec=spec, out=out))
    return jobs


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
    from wearable.data import load_windows

    windows = load_windows(**job.data_spec, split=split, limit=limit)
    if len(windows.x) == 0:
        raise ValueError(f"{job.data_spec['source']}/{job.data_spec['task']} split {split!r} has no windows")
    return windows


def _export(job: _Job, args: argparse.Namespace, thresholds: Any, calibration: Any, holdout: Any,
            progress: Any) -> Any:
    from quantize import export_model

    spec = job.data_spec
    data_info = {"source": spec["source"], "task": spec["task"], "seed": spec.get("seed", 0),
                 "calibration_split": "train", "holdout_split": args.holdout_split,
                 "calibration_limit": args.calibration_windows, "holdout_limit": args.holdout_windows,
                 "preprocessing": _preprocessing(spec)}
    manifest = export_model(job.checkpoint, job.out, calibration=calibration.x, holdout=holdout.x,
                            holdout_labels=holdout.y, labels=list(job.checkpoint.labels) or list(holdout.labels),
                            task=spec["task"], data_info=data_info, backend=args.backend, thresholds=thresholds,
                            tflite_runtime_python=args.tflite_runtime_python, overwrite=args.force,
                            progress=progress)
    progress("firmware sources")
    _firmware(job.out)
    return manifest


def _firmware(artifact_dir: Path) -> None:
    """C sources for TFLite Micro into ``artifact_dir/firmware``; a refusal removes the whole artifact."""
    import shutil

    from firmware_bridge import FirmwareError, generate

    from quantize import CheckFailed

    try:
        generate(artifact_dir)
    except FirmwareError as exc:
        shutil.rmtree(artifact_dir, ignore_errors=True)  # no artifact without its firmware half
        raise CheckFailed(f"firmware generation refused the artifact: {exc}") from None


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


def _fail(exc: BaseException, name: str | None = None) -> int:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    print(f"error: {name + ': ' if name else ''}{message}", file=sys.stderr)
    return 2


def _row(name: str, manifest: Any, seconds: float) -> list[str]:
    if manifest is None:
        return [name, "-", "-", "-", "-", "-", "FAILED", f"{seconds:.1f}"]
    arena, agreement = manifest.arena_bytes, manifest.agreement_pct
    return [name, str(manifest.op_count), str(manifest.tflite_bytes), "-" if arena is None else str(arena),
            "-" if agreement is None else f"{agreement:.2f} %", f"{manifest.max_abs_error:.4g}",
            ", ".join(manifest.verified_runtimes), f"{seconds:.1f}"]


def _print_table(rows: list[list[str]]) -> None:
    header = ["model", "ops", "int8 bytes", "arena bytes", "agreement", "max error", "verified runtimes", "seconds"]
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
