"""Read an exported artifact and build the typed context the templates render from.

Everything the firmware needs is validated here, before anything is written: the manifest
fields, the model's sha256 against the manifest, int8 inputs and outputs, no float op, every op
known to TFLite Micro, golden vectors matching the tensor shapes. The manifest is untrusted
input that becomes C source: names and labels must be plain names
(``wearable.runtime.artifact.check_manifest``, the runtime's own check), every number must be
finite and within bounds, and files are read only from inside the artifact directory.
"""

from __future__ import annotations

import hashlib
import io
import keyword
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wearable.runtime.artifact import ArtifactError, check_manifest, check_name, read_artifact_file, read_manifest

__all__ = ["FirmwareError", "FirmwareContext", "TensorInfo", "ARENA_MARGIN_PERCENT", "TFLM_OPS", "load_context",
           "c_identifier", "quantize_multiplier"]

MODEL_NAME = "model_int8.tflite"
MANIFEST_NAME = "manifest.json"
GOLDEN_NAME = "golden.npz"
# The arena was measured by the tflite-micro Python build: x86-64 (64-bit pointers make the
# interpreter's own structures larger than on a Cortex-M) with reference kernels (optimized
# kernels such as CMSIS-NN ask for scratch buffers the reference ones do not). 25 % covers
# the scratch buffers of convolution kernels on models this size; check on the target with
# MicroInterpreter::arena_used_bytes().
ARENA_MARGIN_PERCENT = 25
_MAX_ARENA_MARGIN_PERCENT = 1000
_ARENA_ALIGN = 16
_MAX_CLIP = 1e6  # mV or PPG units after scaling: the shipped clips are 5

# TFLite builtin op name -> MicroMutableOpResolver method (tensorflow/lite/micro/micro_mutable_op_resolver.h).
# Ops TFLM has no kernel for are absent on purpose: generation refuses them by name.
TFLM_OPS: dict[str, str] = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax", "ARG_MIN": "AddArgMin",
    "AVERAGE_POOL_2D": "AddAveragePool2D", "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd", "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo", "CAST": "AddCast", "CEIL": "AddCeil",
    "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D", "COS": "AddCos", "CUMSUM": "AddCumSum",
    "DEPTH_TO_SPACE": "AddDepthToSpace", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize", "DIV": "AddDiv", "ELU": "AddElu", "EQUAL": "AddEqual", "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims", "FILL": "AddFill", "FLOOR": "AddFloor", "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod", "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd", "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish", "L2_NORMALIZATION": "AddL2Normalization", "L2_POOL_2D": "AddL2Pool2D",
    "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess", "LESS_EQUAL": "AddLessEqual", "LOG": "AddLog",
    "LOG_SOFTMAX": "AddLogSoftmax", "LOGICAL_AND": "AddLogicalAnd", "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr", "LOGISTIC": "AddLogistic", "MAX_POOL_2D": "AddMaxPool2D",
    "MAXIMUM": "AddMaximum", "MEAN": "AddMean", "MINIMUM": "AddMinimum", "MIRROR_PAD": "AddMirrorPad",
    "MUL": "AddMul", "NEG": "AddNeg", "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack", "PAD": "AddPad",
    "PADV2": "AddPadV2", "PRELU": "AddPrelu", "QUANTIZE": "AddQuantize", "REDUCE_MAX": "AddReduceMax",
    "RELU": "AddRelu", "RELU6": "AddRelu6", "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "ROUND": "AddRound", "RSQRT": "AddRsqrt",
    "SELECT_V2": "AddSelectV2", "SHAPE": "AddShape", "SIN": "AddSin", "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax", "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV", "SQRT": "AddSqrt", "SQUARE": "AddSquare",
    "SQUARED_DIFFERENCE": "AddSquaredDifference", "SQUEEZE": "AddSqueeze", "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub", "SUM": "AddSum", "SVDF": "AddSvdf", "TANH": "AddTanh", "TRANSPOSE": "AddTranspose",
    "TRANSPOSE_CONV": "AddTransposeConv", "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "UNPACK": "AddUnpack", "ZEROS_LIKE": "AddZerosLike",
}
_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "_Bool _Complex _Imaginary alignas alignof bool class delete false namespace new operator private protected "
    "public template this throw true try typename virtual".split())


class FirmwareError(ValueError):
    """The artifact cannot be turned into firmware sources; the message names the problem."""


@dataclass(frozen=True)
class TensorInfo:
    """One int8 model input or output."""

    name: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    multiplier: int  # scale == multiplier * 2**(shift - 31), TFLite's QuantizeMultiplier form
    shift: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class FirmwareContext:
    """Everything the templates need, already validated and formatted where formatting matters."""

    model_name: str
    ident: str  # C identifier prefix, lower case
    sha256: str
    model_bytes: bytes
    sampling_rate_hz: float
    window_samples: int
    hop_samples: int
    in_channels: int
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    labels: tuple[str, ...]
    ops: tuple[tuple[str, str], ...]  # (TFLite name, resolver method), sorted by name
    arena_measured_bytes: int
    arena_margin_percent: int
    arena_bytes: int
    filters: tuple[dict[str, Any], ...]  # kind, band_hz, sos rows, zi rows, clip
    golden_inputs: tuple[np.ndarray, ...]  # (n, size) int8 per input
    golden_outputs: tuple[np.ndarray, ...]
    golden_tolerance: int = 0  # int8 steps TFLite Micro was measured to differ from the golden outputs

    @property
    def macro(self) -> str:
        return self.ident.upper()


def c_identifier(name: str) -> str:
    """A valid, lower-case C identifier for ``name`` ("3-lead ECG.v2" -> "m_3_lead_ecg_v2")."""
    ident = re.sub(r"[^0-9a-zA-Z_]+", "_", name).strip("_").lower() or "model"
    ident = re.sub(r"_+", "_", ident)
    if ident[0].isdigit() or ident in _C_KEYWORDS or keyword.iskeyword(ident) or ident.startswith("_"):
        ident = f"m_{ident}"
    return ident


def quantize_multiplier(real: float) -> tuple[int, int]:
    """``(multiplier, shift)`` with ``real == multiplier * 2**(shift - 31)``, as TFLite's QuantizeMultiplier."""
    if real == 0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(math.floor(abs(q) * (1 << 31) + 0.5)) * (1 if q > 0 else -1)  # TfLiteRound: half away from 0
    if abs(q_fixed) == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def load_context(artifact_dir: str | Path, *, arena_margin_percent: int = ARENA_MARGIN_PERCENT) -> FirmwareContext:
    """Validate ``artifact_dir`` (model_int8.tflite, manifest.json, golden.npz) and build the context."""
    root = Path(artifact_dir)
    if not root.is_dir():
        raise FirmwareError(f"artifact directory {root} does not exist")
    paths = {n: root / n for n in (MODEL_NAME, MANIFEST_NAME, GOLDEN_NAME)}
    for name, path in paths.items():
        if not path.is_file():
            raise FirmwareError(f"{root}: {name} is missing (export the model with python -m quantize.export)")
    try:
        manifest = read_manifest(root)
        check_manifest(manifest)
        model = read_artifact_file(root, MODEL_NAME)
        golden = read_artifact_file(root, GOLDEN_NAME)
    except ArtifactError as exc:
        raise FirmwareError(str(exc)) from None
    sha = hashlib.sha256(model).hexdigest()
    want = _field(manifest, "files", MODEL_NAME, "sha256")
    if sha != want:
        raise FirmwareError(f"{MODEL_NAME} sha256 {sha[:12]}… differs from the manifest's {str(want)[:12]}…: "
                            "the manifest does not describe this model")
    if _field(manifest, "checks", "full_int8") is not True:
        raise FirmwareError("manifest checks.full_int8 is not true: the model is not full integer")
    inputs = tuple(_tensor(t, f"inputs[{i}]") for i, t in enumerate(_list(manifest, "inputs")))
    outputs = tuple(_tensor(t, f"outputs[{i}]") for i, t in enumerate(_list(manifest, "outputs")))
    ops = []
    for i, op in enumerate(_list(manifest, "ops")):
        name = _field(op, "name", where=f"ops[{i}]")
        if not isinstance(name, str) or name not in TFLM_OPS:
            raise FirmwareError(f"op {name if isinstance(name, str) else repr(name)} has no TFLite Micro kernel "
                                "in MicroMutableOpResolver")
        ops.append((name, TFLM_OPS[name]))
    _check_tflite(model, manifest)
    arena = _int(manifest, "tflm", "arena_bytes")
    margin = int(arena_margin_percent)
    if not 0 <= margin <= _MAX_ARENA_MARGIN_PERCENT:
        raise FirmwareError(f"arena margin must be in [0, {_MAX_ARENA_MARGIN_PERCENT}] %, got {margin}")
    padded = -(-arena * (100 + margin) // 100)
    padded = -(-padded // _ARENA_ALIGN) * _ARENA_ALIGN
    name = _field(manifest, "model", "name")  # a plain name: check_manifest
    labels = _field(manifest, "labels")  # plain names: check_manifest
    if len(outputs[0].shape) < 2 or len(labels) != outputs[0].shape[1]:
        raise FirmwareError(f"manifest has {len(labels)} labels for output 0 of shape {list(outputs[0].shape)}: "
                            "one label per class (shape[1]) is needed")
    golden_in, golden_out = _golden(paths[GOLDEN_NAME], golden, inputs, outputs)
    return FirmwareContext(
        model_name=name, ident=c_identifier(name), sha256=sha, model_bytes=model,
        sampling_rate_hz=_number(manifest, "sampling_rate_hz"), window_samples=_int(manifest, "window_samples"),
        hop_samples=_int(manifest, "hop_samples"), in_channels=_int(manifest, "in_channels"),
        inputs=inputs, outputs=outputs, labels=tuple(labels), ops=tuple(sorted(set(ops))),
        arena_measured_bytes=arena, arena_margin_percent=margin, arena_bytes=padded,
        filters=_filters(manifest), golden_inputs=golden_in, golden_outputs=golden_out,
        golden_tolerance=_tolerance(manifest))


# --------------------------------------------------------------------------- manifest fields

def _field(obj: Any, *keys: str, where: str = "") -> Any:
    path = where
    for key in keys:
        path = f"{path}.{key}" if path else key
        if not isinstance(obj, dict) or key not in obj or obj[key] is None:
            raise FirmwareError(f"manifest field {path} is missing")
        obj = obj[key]
    return obj


def _list(manifest: dict, key: str) -> list:
    value = _field(manifest, key)
    if not isinstance(value, list) or not value:
        raise FirmwareError(f"manifest field {key} must be a non-empty list")
    return value


def _int(obj: dict, *keys: str) -> int:
    value = _field(obj, *keys)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise FirmwareError(f"manifest field {'.'.join(keys)} must be a positive integer, got {value!r}")
    return value


def _number(obj: dict, *keys: str) -> float:
    value = _field(obj, *keys)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise FirmwareError(f"manifest field {'.'.join(keys)} must be a positive number, got {value!r}")
    return float(value)


def _tolerance(manifest: dict) -> int:
    """int8 steps TFLite Micro differed by at export (``tflm.max_abs_diff``), 0 when not recorded."""
    value = (manifest.get("tflm") or {}).get("max_abs_diff") or 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise FirmwareError(f"manifest field tflm.max_abs_diff must be an integer in [0, 255], got {value!r}")
    return value


def _finite(value: Any, where: str, *, ndim: int) -> np.ndarray:
    """``value`` as a float64 array of ``ndim`` dimensions with only finite numbers: C would read
    NaN or infinity as the identifiers ``nan`` and ``inf``."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged rows
        array = None
    if array is None or array.dtype.kind not in "iuf" or array.ndim != ndim or not array.size \
            or not np.all(np.isfinite(array)):
        raise FirmwareError(f"manifest {where} must be finite numbers ({ndim}-D), got {repr(value)[:80]}")
    return array.astype(np.float64)


def _tensor(entry: dict, where: str) -> TensorInfo:
    dtype = _field(entry, "dtype", where=where)
    if dtype != "int8":
        raise FirmwareError(f"manifest {where} is {dtype}, not int8: firmware needs int8 inputs and outputs")
    shape = _field(entry, "shape", where=where)
    if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d > 0 for d in shape):
        raise FirmwareError(f"manifest {where}.shape must be a list of positive integers, got {shape!r}")
    scale = _field(entry, "scale", where=where)
    zero_point = _field(entry, "zero_point", where=where)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0 or not math.isfinite(scale):
        raise FirmwareError(f"manifest {where}.scale must be a positive number, got {scale!r}")
    if isinstance(zero_point, bool) or not isinstance(zero_point, int) or not -128 <= zero_point <= 127:
        raise FirmwareError(f"manifest {where}.zero_point must be an int8 integer, got {zero_point!r}")
    # TFLite stores scales as float32: make sure the C constants are exactly that value.
    scale = float(np.float32(scale))
    multiplier, shift = quantize_multiplier(scale)
    return TensorInfo(name=str(_field(entry, "name", where=where)), shape=tuple(shape), scale=scale,
                      zero_point=zero_point, multiplier=multiplier, shift=shift)


def _filters(manifest: dict) -> tuple[dict[str, Any], ...]:
    pre = _field(manifest, "data", "preprocessing")
    channels = _field(pre, "channels", where="data.preprocessing")
    if not isinstance(channels, list) or not channels:
        raise FirmwareError("manifest field data.preprocessing.channels must be a non-empty list")
    from scipy.signal import sosfilt_zi  # the generator runs in the training environment

    out = []
    for i, ch in enumerate(channels):
        where = f"data.preprocessing.channels[{i}]"
        try:
            kind = check_name(_field(ch, "kind", where=where), f"manifest {where}.kind")
        except ArtifactError as exc:
            raise FirmwareError(str(exc)) from None
        sos = _finite(_field(ch, "sos", where=where), f"{where}.sos", ndim=2)
        if sos.shape[1] != 6:
            raise FirmwareError(f"manifest {where}.sos must be finite rows of 6 coefficients")
        if not np.all(sos[:, 3] == 1.0):
            raise FirmwareError(f"manifest {where}.sos: a0 must be 1 in every section")
        zi = sosfilt_zi(sos)
        if not np.all(np.isfinite(zi)):
            raise FirmwareError(f"manifest {where}.sos has no finite steady state (sosfilt_zi): not a stable filter")
        band = _finite(_field(ch, "band_hz", where=where), f"{where}.band_hz", ndim=1)
        # ECG stays in mV and is clipped (ecg_scale); PPG is scaled per record, which a stream
        # cannot replay exactly, so its clip is given for a signal the firmware has already scaled.
        clip_key = "ppg_clip" if kind.startswith("ppg") else "ecg_clip_mv"
        clip = _finite(_field(pre, clip_key, where="data.preprocessing"), f"data.preprocessing.{clip_key}", ndim=0)
        if not 0 < clip <= _MAX_CLIP:
            raise FirmwareError(f"manifest data.preprocessing.{clip_key} must be in (0, {_MAX_CLIP:g}], got {clip}")
        out.append({"kind": kind, "band_hz": band.tolist(), "sos": sos.tolist(), "zi": zi.tolist(),
                    "clip": float(clip)})
    return tuple(out)


def _check_tflite(model: bytes, manifest: dict) -> None:
    """The flatbuffer itself: no float op, int8 input/output, and the manifest's op list."""
    try:
        from quantize import summarize_tflite

        summary = summarize_tflite(model)
    except ImportError:  # no quantize / ai-edge-litert here: the manifest's own checks must do
        return
    except ValueError as exc:
        raise FirmwareError(f"{MODEL_NAME}: {exc}") from None
    if summary.float_ops:
        raise FirmwareError(f"{MODEL_NAME} has float ops: {', '.join(summary.float_ops[:5])}")
    bad = [t for t in (*summary.input_types, *summary.output_types) if t.upper() != "INT8"]
    if bad:
        raise FirmwareError(f"{MODEL_NAME} inputs/outputs are {', '.join(bad)}, not int8")
    in_model = sorted({name for name, _ in summary.opcodes})
    in_manifest = sorted({str(op.get("name")) for op in manifest.get("ops") or [] if isinstance(op, dict)})
    if in_model != in_manifest:
        raise FirmwareError(f"manifest ops {in_manifest} differ from the model's {in_model}")


def _golden(path: Path, data: bytes, inputs: tuple[TensorInfo, ...],
            outputs: tuple[TensorInfo, ...]) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise FirmwareError(f"{path}: not a golden .npz ({exc})") from None

    def take(prefix: str, tensors: tuple[TensorInfo, ...]) -> tuple[np.ndarray, ...]:
        rows = []
        for k, t in enumerate(tensors):
            a = arrays.get(f"{prefix}_{k}")
            if a is None:
                raise FirmwareError(f"{path.name} has no {prefix}_{k} array")
            if a.dtype != np.int8 or a.ndim < 1 or math.prod(a.shape[1:]) != t.size:
                raise FirmwareError(f"{path.name}: {prefix}_{k} is {a.dtype}{list(a.shape)}, expected int8 "
                                    f"(n, {t.size} values)")
            rows.append(np.ascontiguousarray(a.reshape(len(a), t.size)))
        return tuple(rows)

    ins, outs = take("input", inputs), take("output", outputs)
    counts = {len(a) for a in (*ins, *outs)}
    if len(counts) != 1 or 0 in counts:
        raise FirmwareError(f"{path.name}: golden arrays must hold the same number (>= 1) of windows")
    return ins, outs
