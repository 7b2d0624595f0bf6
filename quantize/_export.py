"""``export_model``: checkpoint or module -> a checked, self-describing artifact directory."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import platform
import shutil
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from . import _runtimes
from ._fold import count_batchnorm, fold_batchnorm
from ._onnx import ONNX_OPSET, export_onnx, onnx_max_abs_diff
from ._tflite import NotFullIntegerError, check_full_int8
from ._types import MANIFEST_NAME, SCHEMA_VERSION, CheckFailed, ExportError, Manifest, Thresholds
from .backends import get_backend

__all__ = ["export_model", "ONNX_NAME", "TFLITE_NAME", "GOLDEN_NAME"]

log = logging.getLogger("quantize")

ONNX_NAME = "model.onnx"
TFLITE_NAME = "model_int8.tflite"
GOLDEN_NAME = "golden.npz"
_FOLD_TOL = 1e-5  # relative to max(1, |float output|)
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


def export_model(
    source: Any,
    out_dir: str | os.PathLike,
    *,
    calibration: np.ndarray,
    holdout: np.ndarray,
    holdout_labels: np.ndarray | None = None,
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
) -> Manifest:
    """Export ``source`` to ``out_dir`` as fp32 ONNX + full-int8 TFLite with checks and a manifest.

    ``source`` is a ``wearable.training.Checkpoint``, a checkpoint path, or a model from
    ``wearable.models.create`` (an ``nn.Module`` with a ``config``). ``calibration`` and
    ``holdout`` are float32 windows ``(n, in_channels, window_samples)``: calibration sets the
    int8 ranges (plain min/max), holdout measures float-vs-int8 agreement and gives the
    golden windows. ``holdout_labels`` (optional, ``(n,)`` or ``(n, W)``) adds accuracies.
    ``labels``/``task``/``hop_samples`` default to the checkpoint's; ``data_info`` (e.g. the
    data source and splits) is recorded in the manifest as given.

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
    conv = get_backend(backend)
    cfg = src.model.config
    calibration = _check_windows("calibration", calibration, cfg)
    holdout = _check_windows("holdout", holdout, cfg)
    if holdout_labels is not None:
        holdout_labels = np.asarray(holdout_labels)
        if holdout_labels.shape[0] != holdout.shape[0]:
            raise ValueError(f"holdout_labels has {holdout_labels.shape[0]} rows, holdout {holdout.shape[0]}")
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
    _check_target(out_dir, overwrite)

    with clock("fold batchnorm"):
        model = src.model.eval()
        folded, n_folded = fold_batchnorm(model)
        float_out = _torch_outputs(model, holdout)
        fold_diff = _max_diff(_torch_outputs(folded, holdout[:256]), [y[:256] for y in float_out])
        scale = max(1.0, max(float(np.max(np.abs(y))) for y in float_out))
        if fold_diff > _FOLD_TOL * scale:
            raise CheckFailed(f"BatchNorm folding changed the outputs by {fold_diff:.3g} (> {_FOLD_TOL * scale:.3g})")

    with _staging(out_dir, overwrite) as tmp:
        with clock("onnx"):
            onnx_bytes = export_onnx(folded, calibration, n_outputs=len(float_out))
            onnx_diff = onnx_max_abs_diff(onnx_bytes, holdout[:256], [y[:256] for y in float_out])
        with clock(f"convert ({conv.name})"):
            tflite = conv.to_int8(folded, calibration)
        with clock("full-int8 check"):
            try:
                summary = check_full_int8(tflite)
            except NotFullIntegerError as exc:
                raise CheckFailed(str(exc)) from None
        with clock("ai-edge-litert"):
            # Reference: the builtin int8 kernels, bit-identical to tflite-runtime 2.14 and TFLM.
            # XNNPACK (the default delegate) rounds differently; it is gated against float too.
            in_details, out_details = _io_details(tflite)
            x_q = _quantize(holdout, in_details[0])
            y_q = _runtimes.run_litert(tflite, x_q)
            y_x = _runtimes.run_litert(tflite, x_q, default_delegates=True)
            agreement = [_agreement(yf, _dequantize(yq, d), d, holdout_labels)
                         for yf, yq, d in zip(float_out, y_q, out_details)]
            agreement_x = [_agreement(yf, _dequantize(yq, d), d, holdout_labels)
                           for yf, yq, d in zip(float_out, y_x, out_details)]
            xnnpack_diff = _max_diff(y_x, y_q, integer=True)
        n_golden = min(golden_windows, len(holdout))
        tflm = None
        if _runtimes.tflm_available():
            with clock("tflite-micro"):
                n_tflm = min(_TFLM_WINDOWS, len(holdout))
                try:
                    y_tflm, arena = _runtimes.run_tflm(tflite, x_q[:n_tflm], n_outputs=len(y_q))
                except Exception as exc:
                    raise CheckFailed(f"TFLite Micro cannot run the model: {exc}") from None
                tflm = {"arena_bytes": arena, "windows": n_tflm,
                        "max_abs_diff": _max_diff(y_tflm, [y[:n_tflm] for y in y_q], integer=True)}
        else:
            log.warning("tflite-micro is not installed: no TFLM check, no arena size")

        failures = _gate(thresholds, onnx_diff, agreement, agreement_x, tflm)
        if failures:
            raise CheckFailed("; ".join(failures))

        with clock("write"):
            (tmp / ONNX_NAME).write_bytes(onnx_bytes)
            (tmp / TFLITE_NAME).write_bytes(tflite)
            golden = {"input_0": x_q[:n_golden], **{f"output_{k}": y[:n_golden] for k, y in enumerate(y_q)}}
            _write_npz(tmp / GOLDEN_NAME, golden)

        verified: dict[str, dict[str, Any]] = {
            "ai_edge_litert": {"version": _version("ai-edge-litert"), "windows": len(holdout), "max_abs_diff": 0,
                               "role": "reference (builtin kernels)", "xnnpack_max_abs_diff": xnnpack_diff}}
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
                if not builtin["identical"]:
                    raise CheckFailed(f"tflite-runtime {builtin.get('version')} differs from the golden outputs "
                                      f"by up to {builtin['max_abs_diff']} int8 steps")
                verified["tflite_runtime"] = {"version": builtin["version"], "windows": builtin["windows"],
                                              "max_abs_diff": builtin["max_abs_diff"],
                                              "xnnpack_max_abs_diff": xnnpack["max_abs_diff"]}

        data = {
            "schema_version": SCHEMA_VERSION,
            "model": {"name": src.name, "version": src.version, "config": _plain(src.config),
                      "weights_sha256": _weights_sha256(model)},
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
                              "max_abs_diff": _round(fold_diff)},
                "onnx": {"opset": ONNX_OPSET, "max_abs_diff": _round(onnx_diff), "windows": min(256, len(holdout))},
                "holdout_windows": len(holdout),
                "agreement": agreement,
                "agreement_xnnpack": agreement_x,
                "thresholds": thresholds.to_dict(),
            },
            "tflm": tflm,
            "verified_runtimes": verified,
            "golden": {"windows": n_golden, "source": "first holdout windows"},
            "calibration": {"windows": len(calibration), "method": conv.settings.get("calibration"),
                            "sha256": _array_sha256(calibration)},
            "holdout": {"windows": len(holdout), "sha256": _array_sha256(holdout)},
            "data": _plain(dict(data_info)) if data_info else None,
            "export": {"backend": conv.name, **conv.settings},
            "versions": _versions(conv),
        }
        data["files"] = {p.name: {"bytes": p.stat().st_size, "sha256": _file_sha256(p)}
                         for p in sorted(tmp.iterdir())}
        (tmp / MANIFEST_NAME).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    log.info("exported %s to %s", src.name, out_dir)
    return Manifest(out_dir, json.loads((out_dir / MANIFEST_NAME).read_text()), seconds=dict(clock.seconds))


# --------------------------------------------------------------------------- inputs

def _resolve_source(source: Any, *, labels: Sequence[str] | None, task: str | None) -> _Source:
    from wearable.training.checkpoint import Checkpoint, load_checkpoint

    if isinstance(source, (str, os.PathLike)):
        source = load_checkpoint(source)
    if isinstance(source, Checkpoint):
        model = source.build()
        return _Source(model=model, name=source.model_name, version=str(source.model_version),
                       config=dict(source.config), labels=list(labels or source.labels) or None,
                       task=task or source.data.get("task"), data=dict(source.data))
    if isinstance(source, nn.Module):
        cfg = getattr(source, "config", None)
        if cfg is None or not is_dataclass(cfg):
            raise ValueError("model has no `config` dataclass; build it with wearable.models.create")
        name = getattr(source, "model_name", None) or _registry_name(source)
        return _Source(model=source, name=name, version="1", config=asdict(cfg),
                       labels=list(labels) if labels else None, task=task, data={})
    raise ValueError(f"cannot export a {type(source).__name__}: pass a Checkpoint, a checkpoint path or a model")


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


def _check_target(out_dir: Path, overwrite: bool) -> None:
    """Fail early, creating nothing, if ``out_dir`` exists (without overwrite) or cannot be made."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a directory")
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists (use overwrite=True / --force to replace it)")
    probe = out_dir.absolute().parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot create {out_dir}: {probe} is not a writable directory")


@contextlib.contextmanager
def _staging(out_dir: Path, overwrite: bool) -> Iterator[Path]:
    """A temp dir next to ``out_dir``, renamed to it if the block succeeds; on failure the temp
    dir and any parent directories made for it are removed."""
    made = [p for p in [out_dir.absolute().parent, *out_dir.absolute().parent.parents] if not p.exists()]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    ok = False
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700
        if out_dir.exists():
            if not overwrite:
                raise FileExistsError(f"{out_dir} appeared during the export; not replacing it")
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.replace(out_dir, old / "previous")
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
        ok = True
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if not ok:
            for parent in made:  # innermost first
                with contextlib.suppress(OSError):
                    parent.rmdir()


# --------------------------------------------------------------------------- measurements

def _torch_outputs(model: nn.Module, x: np.ndarray, batch: int = 256) -> list[np.ndarray]:
    chunks: list[list[np.ndarray]] = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            y = model(torch.from_numpy(x[i:i + batch]))
            ys = list(y) if isinstance(y, (tuple, list)) else [y]
            chunks.append([t.detach().cpu().numpy().astype(np.float32) for t in ys])
    return [np.concatenate([c[k] for c in chunks], axis=0) for k in range(len(chunks[0]))]


def _max_diff(a: Sequence[np.ndarray], b: Sequence[np.ndarray], *, integer: bool = False) -> Any:
    d = max(float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))) for x, y in zip(a, b))
    return int(d) if integer else d


def _io_details(tflite: bytes) -> tuple[list[dict], list[dict]]:
    from wearable.runtime import load_interpreter

    from ._quiet import quiet

    with quiet("ai-edge-litert"):
        interp = load_interpreter(tflite, backend="ai_edge_litert")
        return interp.get_input_details(), interp.get_output_details()


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    from wearable.runtime import quantize

    return quantize(x, detail)


def _dequantize(q: np.ndarray, detail: dict) -> np.ndarray:
    from wearable.runtime import dequantize

    return dequantize(q, detail)


def _agreement(yf: np.ndarray, yq: np.ndarray, detail: dict, labels: np.ndarray | None) -> dict[str, Any]:
    """Float-vs-int8 figures for one output; argmax over axis 1 (classes), per window or per
    time sample for (n, classes, W) outputs."""
    from wearable.runtime import quant_params

    scale, zero = quant_params(detail)
    info = np.iinfo(np.dtype(detail["dtype"]))
    lo, hi = (info.min - zero) * scale, (info.max - zero) * scale
    fmin, fmax = float(yf.min()), float(yf.max())
    span = fmax - fmin
    err = float(np.max(np.abs(yq.astype(np.float64) - yf)))
    entry: dict[str, Any] = {
        "max_abs_error": _round(err),
        "error_ratio": _round(err / span) if span > 0 else (0.0 if err == 0 else None),
        "float_range": [_round(fmin), _round(fmax)],
        "int8_range": [_round(lo), _round(hi)],
        "output_range_coverage": _round((min(hi, fmax) - max(lo, fmin)) / span) if span > 0 else 1.0,
        "argmax_agreement_pct": None,
    }
    if yf.ndim >= 2 and yf.shape[1] >= 2:
        pf, pq = yf.argmax(axis=1), yq.argmax(axis=1)
        entry["argmax_agreement_pct"] = _round(100.0 * float(np.mean(pf == pq)))
        if labels is not None and labels.shape == pf.shape:
            entry["accuracy_float_pct"] = _round(100.0 * float(np.mean(pf == labels)))
            entry["accuracy_int8_pct"] = _round(100.0 * float(np.mean(pq == labels)))
    return entry


def _gate(t: Thresholds, onnx_diff: float, agreement: list[dict], agreement_x: list[dict],
          tflm: dict | None) -> list[str]:
    fails = []
    if not onnx_diff < t.max_onnx_diff:
        fails.append(f"ONNX vs PyTorch max abs diff {onnx_diff:.3g} >= {t.max_onnx_diff:g}")
    for kernels, entries in (("", agreement), ("XNNPACK ", agreement_x)):
        for k, a in enumerate(entries):
            out = kernels + (f"output {k} " if len(entries) > 1 else "")
            if a["argmax_agreement_pct"] is not None and a["argmax_agreement_pct"] < t.min_agreement_pct:
                fails.append(f"{out}argmax agreement {a['argmax_agreement_pct']:.2f} % < {t.min_agreement_pct:g} %")
            if a["error_ratio"] is None or a["error_ratio"] > t.max_error_ratio:
                ratio = float("inf") if a["error_ratio"] is None else a["error_ratio"]
                fails.append(f"{out}max int8 error {a['max_abs_error']:.4g} is {ratio:.3g} of the float output "
                             f"range (> {t.max_error_ratio:g})")
            if not kernels and a["output_range_coverage"] < t.min_output_coverage:
                fails.append(f"{out}int8 output range {a['int8_range']} covers {a['output_range_coverage']:.2f} of "
                             f"the float range {a['float_range']} (< {t.min_output_coverage:g}; calibration clipped?)")
    if tflm is not None and tflm["max_abs_diff"] > t.max_tflm_diff:
        fails.append(f"TFLite Micro differs from the builtin-kernel reference by {tflm['max_abs_diff']} int8 steps "
                     f"(> {t.max_tflm_diff})")
    return [f.strip() for f in fails]


# --------------------------------------------------------------------------- files and records

def _write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """``np.savez`` with fixed zip timestamps, so that the bytes depend only on the arrays."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            zf.writestr(info, buf.getvalue())


def _tensor_entry(detail: dict, kind: str, k: int, **extra: str) -> dict[str, Any]:
    from wearable.runtime import quant_params

    scale, zero = quant_params(detail)
    return {"index": k, "name": detail["name"], "shape": [int(s) for s in detail["shape"]],
            "dtype": np.dtype(detail["dtype"]).name, "scale": scale, "zero_point": zero, **extra}


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _array_sha256(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()


def _weights_sha256(model: nn.Module) -> str:
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _round(x: float) -> float:
    """Seven significant digits: figures stay readable and identical across re-runs."""
    return float(f"{float(x):.7g}")


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

    found = {name: _version(name) for name in ("numpy", "onnx", "onnxruntime", "onnxscript", "tflite-micro")}
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

