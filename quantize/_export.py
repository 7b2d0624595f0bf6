"""``export_model``: checkpoint or module -> a checked, self-describing artifact directory."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
from torch import nn

from wearable.runtime import dequantize, load_interpreter, quant_params
from wearable.runtime import quantize as quantize_int8

from . import _checks, _files, _runtimes
from ._diagnose import tensor_errors, worst
from ._fold import count_batchnorm, fold_batchnorm
from ._onnx import ONNX_OPSET, export_onnx, onnx_max_abs_diff, onnx_outputs, quantize_onnx_nncf
from ._model_card import render_model_card
from ._quiet import quiet
from ._strip import strip_tensor_names
from ._task_metric import label_for_output, metric_kind, score_all
from ._tflite import NotFullIntegerError, check_full_int8
from ._types import MANIFEST_NAME, SCHEMA_VERSION, CheckFailed, ExportError, Manifest, Thresholds
from .backends import get_backend

__all__ = ["export_model", "ONNX_NAME", "ONNX_INT8_NAME", "TFLITE_NAME", "GOLDEN_NAME", "DIAGNOSIS_NAME", "MODEL_CARD_NAME"]

log = logging.getLogger("quantize")

ONNX_NAME = "model.onnx"
ONNX_INT8_NAME = "model_int8.onnx"
TFLITE_NAME = "model_int8.tflite"
GOLDEN_NAME = "golden.npz"
DIAGNOSIS_NAME = "diagnosis.json"
MODEL_CARD_NAME = "MODEL_CARD.md"
_DIAGNOSIS_WINDOWS = 64  # per-tensor SQNR converges quickly; all tensors of two interpreters per window
_FOLD_TOL = 1e-5  # relative to max(1, |float output|)
_NNCF_WINDOWS = 500  # NNCF also averages (bias correction): the first 500 windows plus the extreme ones
_TFLM_WINDOWS = 64  # TFLM reference kernels take ms per window: compare on the first 64 only


@dataclass
class _Source:
    model: nn.Module
    name: str
    version: str
    config: dict[str, Any]
    labels: list[str] | None
    task: str | None
    data: dict[str, Any]
    metrics: dict[str, Any] | None = None


def export_model(
    source: Any,
    out_dir: str | os.PathLike,
    *,
    calibration: np.ndarray,
    holdout: np.ndarray,
    holdout_labels: np.ndarray | Sequence[np.ndarray] | None = None,
    labels: Sequence[str] | None = None,
    task: str | None = None,
    hop_samples: int | None = None,
    data_info: Mapping[str, Any] | None = None,
    backend: str = "litert",
    thresholds: Thresholds = Thresholds(),
    golden_windows: int = 8,
    tflite_runtime_python: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
    qat: Mapping[str, Any] | None = None,
    firmware: bool = False,
) -> Manifest:
    """Export ``source`` to ``out_dir`` as fp32 ONNX + full-int8 TFLite with checks and a manifest.

    ``source`` is a ``wearable.training.Checkpoint``, a checkpoint path, or a model from
    ``wearable.models.create`` (an ``nn.Module`` with a ``config``). ``calibration`` and
    ``holdout`` are float32 windows ``(n, in_channels, window_samples)``: calibration sets the
    int8 ranges (plain min/max), holdout measures float-vs-int8 agreement and gives the
    golden windows. ``holdout_labels`` (optional: int ``(n,)`` classes, int ``(n, W)`` per-sample
    classes or float ``(n,)`` regression targets, or a list of such arrays for a model with several
    outputs, e.g. a class and a mask) adds the task-metric gate: float and int8 are
    scored with the task's own metric (macro F1 or MAE) and the drop must stay within
    ``thresholds.max_metric_drop``. A per-tensor SQNR diagnosis (float vs int8 TFLite on
    the first calibration windows) is written to ``diagnosis.json`` and named in gate failures.
    ``labels``/``task``/``hop_samples`` default to the checkpoint's; ``data_info`` (e.g. the
    data source and splits) and ``qat`` (how the weights were fine-tuned after the
    checkpoint, see ``quantize.qat``) are recorded in the manifest as given.

    Written atomically: everything goes to a temporary directory next to ``out_dir`` that
    is renamed at the end; on any failure nothing is left. An existing ``out_dir`` is
    replaced only with ``overwrite=True`` (``FileExistsError`` otherwise).

    Raises ``ValueError`` for bad arguments, ``CheckFailed`` when a check or threshold
    fails, ``ExportError`` when conversion or a runtime fails.

    >>> manifest = export_model(model, "artifacts/dscnn_tiny", calibration=x_train[:256],
    ...                         holdout=x_val, holdout_labels=y_val)        # doctest: +SKIP
    >>> manifest.agreement_pct, manifest.arena_bytes                       # doctest: +SKIP
    """
    clock = _Clock(progress)
    src = _resolve_source(source, labels=labels, task=task)
    _check_finite_weights(src)
    conv = get_backend(backend)
    cfg = src.model.config
    calibration = _check_windows("calibration", calibration, cfg)
    holdout = _check_windows("holdout", holdout, cfg)
    targets: list[np.ndarray] = []
    if holdout_labels is not None:
        targets = [np.asarray(t) for t in (holdout_labels if isinstance(holdout_labels, (list, tuple))
                                           else [holdout_labels])]
        for t in targets:
            if t.shape[0] != holdout.shape[0]:
                raise ValueError(f"holdout_labels has {t.shape[0]} rows, holdout {holdout.shape[0]}")
            metric_kind(t)  # ValueError for labels no task metric fits
    if src.labels is not None and len(src.labels) != cfg.num_classes:
        raise ValueError(f"{len(src.labels)} labels for a model with {cfg.num_classes} classes")
    if golden_windows < 1:
        raise ValueError(f"golden_windows must be >= 1, got {golden_windows}")
    hop = int(hop_samples if hop_samples is not None else src.data.get("hop_samples") or cfg.window_samples)
    if hop <= 0:
        raise ValueError(f"hop_samples must be > 0, got {hop}")
    if tflite_runtime_python is not None and shutil.which(os.fspath(tflite_runtime_python)) is None:
        raise ValueError(f"tflite-runtime Python not found or not executable: {tflite_runtime_python}")
    out_dir = Path(out_dir)
    _files.check_target(out_dir, overwrite)

    with clock("fold batchnorm"):
        model = src.model.eval()
        folded, n_folded = fold_batchnorm(model)
        float_out = _checks.torch_outputs(model, holdout)
        fold_diff = _checks.max_diff(_checks.torch_outputs(folded, holdout[:256]), [y[:256] for y in float_out])
        scale = max(1.0, max(float(np.max(np.abs(y))) for y in float_out))
        if fold_diff > _FOLD_TOL * scale:
            raise CheckFailed(f"BatchNorm folding changed the outputs by {fold_diff:.3g} (> {_FOLD_TOL * scale:.3g})")

    with _files.staging(out_dir, overwrite) as tmp:
        with clock("onnx"):
            onnx_bytes = export_onnx(folded, calibration, n_outputs=len(float_out))
            onnx_diff = onnx_max_abs_diff(onnx_bytes, holdout[:256], [y[:256] for y in float_out])
        with clock(f"convert ({conv.name})"):
            float_tflite = conv.to_float(folded, calibration)
            extremes = conv.extreme_windows(float_tflite, calibration)  # same min/max as every window
            named_tflite = conv.float_to_int8(float_tflite, calibration, extremes=extremes)  # names pair tensors (diagnosis)
            tflite = strip_tensor_names(named_tflite)
        with clock("full-int8 check"):
            try:
                summary = check_full_int8(tflite)
            except NotFullIntegerError as exc:
                raise CheckFailed(str(exc)) from None
        with clock("ai-edge-litert"):
            # Golden: the reference int8 kernels, which TFLite Micro implements and tflite-runtime 2.14
            # reproduces bit for bit. The optimized builtin kernels and XNNPACK (the default delegate)
            # round some elements differently; they are gated against the float model too.
            in_details, out_details = _io_details(tflite)
            x_q = quantize_int8(holdout, in_details[0])
            y_q = _runtimes.run_litert(tflite, x_q, reference_kernels=True)
            y_b = _runtimes.run_litert(tflite, x_q)
            y_x = _runtimes.run_litert(tflite, x_q, default_delegates=True)
            builtin_diff = _checks.max_diff(y_b, y_q, integer=True)
            agreement = [_checks.agreement(yf, dequantize(yq, d), d, label_for_output(yf, targets))
                         for yf, yq, d in zip(float_out, y_q, out_details)]
            agreement_x = [_checks.agreement(yf, dequantize(yq, d), d, label_for_output(yf, targets))
                           for yf, yq, d in zip(float_out, y_x, out_details)]
            xnnpack_diff = _checks.max_diff(y_x, y_q, integer=True)
        with clock("task metric + per-tensor diagnosis"):
            scores = score_all(float_out, [dequantize(y, d) for y, d in zip(y_q, out_details)], targets)
            scores_x = score_all(float_out, [dequantize(y, d) for y, d in zip(y_x, out_details)], targets)
            score = scores[0] if scores else None
            n_diag = min(_DIAGNOSIS_WINDOWS, len(calibration))
            diagnosis = tensor_errors(float_tflite, named_tflite, calibration[:n_diag])
        n_golden = min(golden_windows, len(holdout))
        tflm = None
        if _runtimes.tflm_available():
            with clock("tflite-micro"):
                n_tflm = min(_TFLM_WINDOWS, len(holdout))
                try:
                    y_tflm, arena = _runtimes.run_tflm(tflite, x_q[:n_tflm], n_outputs=len(y_q))
                except Exception as exc:
                    ops = ", ".join(sorted(set(summary.operators)))
                    raise CheckFailed(f"TFLite Micro cannot run the model: {exc} (ops: {ops})") from None
                tflm = {"arena_bytes": arena, "windows": n_tflm,
                        "max_abs_diff": _checks.max_diff(y_tflm, [y[:n_tflm] for y in y_q], integer=True),
                        "argmax_agreement_pct": [_checks.float_agreement(y[:n_tflm], yt)["argmax_agreement_pct"]
                                                 for y, yt in zip(y_q, y_tflm)]}
        else:  # a declared dependency: without it MCU compatibility is unproven, so no artifact
            raise CheckFailed("tflite-micro is not installed (pip install --pre tflite-micro): "
                              "cannot prove the model runs in TFLite Micro")

        with clock("nncf int8 onnx"):
            nncf_windows = np.union1d(np.arange(min(_NNCF_WINDOWS, len(calibration))), extremes)
            onnx_int8 = quantize_onnx_nncf(onnx_bytes, calibration[nncf_windows])
            try:
                y_ort = onnx_outputs(onnx_int8, holdout)
            except Exception as exc:  # onnxruntime's own error types; the message names the node
                raise CheckFailed(f"the NNCF int8 ONNX does not run in onnxruntime: {str(exc).splitlines()[0]}") from None
            agreement_ort = [_checks.float_agreement(yf, yo) for yf, yo in zip(float_out, y_ort)]
            scores_ort = score_all(float_out, y_ort, targets)

        failures = _checks.gate(thresholds, onnx_diff, agreement, agreement_x, tflm, scores)
        for s in scores_ort:
            if s.drop > thresholds.max_metric_drop:
                failures.append(f"NNCF int8 ONNX: {s.metric} of output {s.output} fell from {s.float_value:.2f} to "
                                f"{s.int8_value:.2f} (drop {s.drop:.2f} > {thresholds.max_metric_drop:g})")
        if failures:
            worst_text = ", ".join(f"{e.op} #{e.order} {e.sqnr_db:.1f} dB" for e in worst(diagnosis, 3))
            failures += [f"({s.metric} of output {s.output}: float {s.float_value:.2f}, int8 {s.int8_value:.2f})"
                         for s in scores if not any(f.startswith(s.metric) for f in failures)]
            raise CheckFailed("; ".join(failures) + f"; worst tensors (SQNR on {n_diag} calibration windows): "
                              f"{worst_text}; see python -m quantize.diagnose --checkpoint")

        with clock("write"):
            (tmp / ONNX_NAME).write_bytes(onnx_bytes)
            (tmp / TFLITE_NAME).write_bytes(tflite)
            (tmp / ONNX_INT8_NAME).write_bytes(onnx_int8)
            golden = {"input_0": x_q[:n_golden], **{f"output_{k}": y[:n_golden] for k, y in enumerate(y_q)}}
            _files.write_npz(tmp / GOLDEN_NAME, golden)
            (tmp / DIAGNOSIS_NAME).write_text(json.dumps(
                {"windows": n_diag, "source": "first calibration windows", "metric": "SQNR of the dequantized "
                 "int8 tensor against the float TFLite tensor, accumulated over the windows",
                 "tensors": [e.to_dict() for e in diagnosis]}, indent=1, sort_keys=True) + "\n")

        verified: dict[str, dict[str, Any]] = {
            "ai_edge_litert": {"version": _version("ai-edge-litert"), "windows": len(holdout), "max_abs_diff": 0,
                               "role": "golden (reference kernels)", "builtin_max_abs_diff": builtin_diff,
                               "xnnpack_max_abs_diff": xnnpack_diff}}
        if tflm is not None:
            verified["tflite_micro"] = {"version": _runtimes.tflm_version(), "windows": tflm["windows"],
                                        "max_abs_diff": tflm["max_abs_diff"]}
        if tflite_runtime_python is not None:
            with clock("tflite-runtime"):
                try:
                    model_path, golden_path = tmp / TFLITE_NAME, tmp / GOLDEN_NAME
                    builtin = _runtimes.replay_in_python(tflite_runtime_python, model_path, golden_path)
                    xnnpack = _runtimes.replay_in_python(tflite_runtime_python, model_path, golden_path,
                                                         default_delegates=True)
                except RuntimeError as exc:
                    raise CheckFailed(f"tflite-runtime check failed: {exc}") from None
                if builtin["max_abs_diff"] > thresholds.max_tflm_diff:
                    raise CheckFailed(f"tflite-runtime {builtin.get('version')} differs from the golden outputs "
                                      f"by up to {builtin['max_abs_diff']} int8 steps (> {thresholds.max_tflm_diff})")
                verified["tflite_runtime"] = {"version": builtin["version"], "windows": builtin["windows"],
                                              "max_abs_diff": builtin["max_abs_diff"],
                                              "xnnpack_max_abs_diff": xnnpack["max_abs_diff"]}

        data = {
            "schema_version": SCHEMA_VERSION,
            "model": {"name": src.name, "version": src.version, "config": _plain(src.config),
                      "weights_sha256": _files.weights_sha256(model)},
            "task": src.task,
            "labels": src.labels,
            "sampling_rate_hz": float(cfg.sampling_rate_hz),
            "window_samples": int(cfg.window_samples),
            "hop_samples": hop,
            "in_channels": int(cfg.in_channels),
            "inputs": [_tensor_entry(d, "input", k, layout="NCW") for k, d in enumerate(in_details)],
            "outputs": [_tensor_entry(d, "output", k) for k, d in enumerate(out_details)],
            "op_count": summary.op_count,
            "ops": [{"name": name, "version": version, "count": summary.operators.count(name)}
                    for name, version in summary.opcodes],
            "checks": {
                "full_int8": True,
                "batchnorm": {"folded": n_folded, "remaining": count_batchnorm(folded),
                              "max_abs_diff": _checks.round_sig(fold_diff)},
                "onnx": {"opset": ONNX_OPSET, "max_abs_diff": _checks.round_sig(onnx_diff),
                         "windows": min(256, len(holdout))},
                "onnx_int8": {"quantizer": "nncf.quantize (post-training, preset MIXED, plain min/max activation "
                                           "ranges, fast bias correction)",
                              "runtime": "onnxruntime CPUExecutionProvider", "windows": len(holdout),
                              "argmax_agreement_pct": [a["argmax_agreement_pct"] for a in agreement_ort],
                              "max_abs_error": max(a["max_abs_error"] for a in agreement_ort),
                              "task_metric": scores_ort[0].to_dict() if scores_ort else None,
                              "task_metrics": [s.to_dict() for s in scores_ort]},
                "holdout_windows": len(holdout),
                "agreement": agreement,
                "agreement_xnnpack": agreement_x,
                "task_metric": None if score is None else {**score.to_dict(),
                                                           "int8_xnnpack": scores_x[0].to_dict()["int8"]},
                "task_metrics": [{**s.to_dict(), "int8_xnnpack": sx.to_dict()["int8"]}
                                 for s, sx in zip(scores, scores_x)],
                "worst_tensors": [{"op": e.op, "order": e.order, "sqnr_db": e.to_dict()["sqnr_db"]}
                                  for e in worst(diagnosis, 3)],
                "thresholds": thresholds.to_dict(),
            },
            "tflm": tflm,
            "verified_runtimes": verified,
            "golden": {"windows": n_golden, "source": "first holdout windows"},
            "calibration": {"windows": len(calibration), "method": conv.settings.get("calibration"),
                            "sha256": _files.array_sha256(calibration),
                            # min/max over these equals min/max over all windows (see extreme_windows)
                            "extreme_windows": len(extremes), "nncf_windows": len(nncf_windows)},
            "holdout": {"windows": len(holdout), "sha256": _files.array_sha256(holdout)},
            "data": _plain(dict(data_info)) if data_info else None,
            "qat": _plain(dict(qat)) if qat else None,
            "export": {"backend": conv.name, **conv.settings,
                       "tensor_names": "stripped, except the graph inputs and outputs (flash)"},
            "versions": _versions(conv),
        }
        replayed = verified.get("tflite_runtime")
        data["compatibility"] = {
            # proven, not inferred: the golden windows replayed bit-exactly in that runtime
            "oldest_tflite_runtime": f"tflite-runtime {replayed['version']}" if replayed else None,
            "tflite_micro": _runtimes.tflm_version(),
            "max_op_version": max(v for _, v in summary.opcodes),
        }
        listing = lambda: {p.name: {"bytes": p.stat().st_size, "sha256": _files.file_sha256(p)}  # noqa: E731
                           for p in sorted(tmp.iterdir())}
        data["files"] = listing()
        (tmp / MODEL_CARD_NAME).write_text(render_model_card(data, metrics=src.metrics))
        data["files"] = listing()  # now with the card
        (tmp / MANIFEST_NAME).write_text(_files.manifest_json(data))
        if firmware:  # inside the staging directory: the old artifact stays until this one is whole
            with clock("firmware sources"):
                _firmware(tmp)
    log.info("exported %s to %s", src.name, out_dir)
    return Manifest(out_dir, json.loads((out_dir / MANIFEST_NAME).read_text()), seconds=dict(clock.seconds))


def _firmware(artifact_dir: Path) -> None:
    # From the private module: importing the CLI module firmware_bridge.generate rebinds that
    # package attribute from the function to the module.
    from firmware_bridge import FirmwareError
    from firmware_bridge._generate import generate

    try:
        generate(artifact_dir)
    except FirmwareError as exc:  # not CheckFailed: quantization-aware fine-tuning would not mend it
        raise ExportError(f"firmware sources: {exc}") from None


# --------------------------------------------------------------------------- inputs

def _resolve_source(source: Any, *, labels: Sequence[str] | None, task: str | None) -> _Source:
    from wearable.training.checkpoint import Checkpoint, load_checkpoint

    if isinstance(source, (str, os.PathLike)):
        source = load_checkpoint(source)
    if isinstance(source, Checkpoint):
        model = source.build()
        return _Source(model=model, name=source.model_name, version=str(source.model_version),
                       config=dict(source.config), labels=list(labels or source.labels) or None,
                       task=task or source.data.get("task"), data=dict(source.data),
                       metrics=dict(source.metrics or {}))
    if isinstance(source, nn.Module):
        cfg = getattr(source, "config", None)
        if cfg is None or not is_dataclass(cfg):
            raise ValueError("model has no `config` dataclass; build it with wearable.models.create")
        name = getattr(source, "model_name", None) or _registry_name(source)
        return _Source(model=source, name=name, version="1", config=asdict(cfg),
                       labels=list(labels) if labels else None, task=task, data={})
    raise ValueError(f"cannot export a {type(source).__name__}: pass a Checkpoint, a checkpoint path or a model")


def _check_finite_weights(src: _Source) -> None:
    """A NaN or infinite weight makes every output NaN, and XNNPACK crashed the process on such a
    model: refuse it before any converter runs."""
    from wearable.training.checkpoint import nonfinite_tensors

    bad = nonfinite_tensors(src.model.state_dict())
    if bad:
        raise ValueError(f"{src.name} has NaN or infinite weights ({', '.join(bad[:3])}): a diverged training "
                         "run, nothing to export")


def _registry_name(model: nn.Module) -> str:
    from wearable.models import config_class, list_models

    matches = [n for n in list_models() if config_class(n) is type(model.config)]
    return matches[0] if len(matches) == 1 else type(model).__name__.lower()


def _check_windows(what: str, x: np.ndarray, cfg: Any) -> np.ndarray:
    x = np.asarray(x)
    want = (int(cfg.in_channels), int(cfg.window_samples))
    if x.ndim != 3 or tuple(x.shape[1:]) != want or x.shape[0] < 1:
        raise ValueError(f"{what} windows must be shaped (n>=1, {want[0]}, {want[1]}), got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{what} windows must be float, got {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} windows contain NaN or inf")
    return x


# --------------------------------------------------------------------------- records

def _io_details(tflite: bytes) -> tuple[list[dict], list[dict]]:
    with quiet("ai-edge-litert"):
        interp = load_interpreter(tflite, backend="ai_edge_litert")
        return interp.get_input_details(), interp.get_output_details()


def _tensor_entry(detail: dict, kind: str, k: int, **extra: str) -> dict[str, Any]:
    scale, zero = quant_params(detail)
    return {"index": k, "name": detail["name"], "shape": [int(s) for s in detail["shape"]],
            "dtype": np.dtype(detail["dtype"]).name, "scale": scale, "zero_point": zero, **extra}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _versions(conv: Any) -> dict[str, str | None]:
    import wearable

    found = {name: _version(name) for name in ("numpy", "onnx", "onnxruntime", "onnxscript", "nncf", "tflite-micro")}
    return {**found, **conv.versions(), "wearable": wearable.__version__, "python": platform.python_version()}


class _Clock:
    """Times the stages, reports each to the progress callback, and turns unexpected errors of a
    stage (a converter or runtime crashing) into ``ExportError`` naming the stage."""

    def __init__(self, progress: Callable[[str], None] | None) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        if self.progress is not None:
            self.progress(stage)
        start = time.perf_counter()
        try:
            yield
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(f"{stage} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            self.seconds[stage] = round(time.perf_counter() - start, 3)
            log.debug("%s: %.2f s", stage, self.seconds[stage])

