"""Per-tensor quantization error: the float and the int8 flatbuffer side by side.

ai-edge-quantizer keeps the float model's tensor names when it quantizes, so every
activation of the int8 model has a float twin. Both interpreters keep all intermediate
tensors (``experimental_preserve_all_tensors``); per tensor we accumulate, over the windows,
the float signal power and the power of the error of the dequantized int8 tensor:
SQNR = 10 log10(Σ float² / Σ (int8 − float)²) and relative RMS error = sqrt(Σ err² / Σ float²).
The error is cumulative (it includes what upstream layers already lost), so the first layer
in graph order whose SQNR falls well below its input's is where the damage starts; the
``drop_db`` column shows that step.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from wearable.runtime import quantize as quantize_int8

from ._quiet import quiet

__all__ = ["TensorError", "tensor_errors", "worst", "format_table"]


@dataclass(frozen=True)
class TensorError:
    """Quantization error of one activation tensor over the diagnosed windows."""

    order: int  # position of the producing op in the graph
    tensor: str
    op: str
    shape: tuple[int, ...]
    sqnr_db: float  # inf when the int8 tensor is exact
    rel_rms_error: float
    drop_db: float  # SQNR lost at this op relative to its worst input (0 for the graph input)
    scale: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["sqnr_db"] = None if math.isinf(self.sqnr_db) else self.sqnr_db
        return d


def tensor_errors(float_model: bytes, int8_model: bytes, windows: np.ndarray) -> list[TensorError]:
    """SQNR per activation tensor produced by an op, in graph order, over ``windows`` (n, C, W)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    with quiet("ai-edge-litert"):
        kw = {"num_threads": 1, "experimental_preserve_all_tensors": True,
              "experimental_op_resolver_type": OpResolverType.BUILTIN_REF}  # what TFLite Micro runs
        fi, qi = Interpreter(model_content=float_model, **kw), Interpreter(model_content=int8_model, **kw)
        fi.allocate_tensors()
        qi.allocate_tensors()
    q_by_name = {d["name"]: d for d in qi.get_tensor_details()}
    ops = fi._get_ops_details()  # noqa: SLF001 (the only API naming each op's inputs and outputs)
    producer: dict[int, tuple[int, str, list[int]]] = {}
    for k, op in enumerate(ops):
        for t in op["outputs"]:
            producer[int(t)] = (k, op["op_name"], [int(i) for i in op["inputs"] if i >= 0])
    f_details = {d["index"]: d for d in fi.get_tensor_details()}
    tracked = [idx for idx in sorted(producer, key=lambda i: producer[i][0])
               if f_details[idx]["name"] in q_by_name
               and np.dtype(q_by_name[f_details[idx]["name"]]["dtype"]) in (np.dtype(np.int8), np.dtype(np.int16))]
    signal = dict.fromkeys(tracked, 0.0)
    noise = dict.fromkeys(tracked, 0.0)
    f_in, q_in = fi.get_input_details()[0], qi.get_input_details()[0]
    with quiet("ai-edge-litert"):
        for x in np.asarray(windows, dtype=np.float32):
            fi.set_tensor(f_in["index"], x[None])
            fi.invoke()
            qi.set_tensor(q_in["index"], quantize_int8(x[None], q_in))  # TFLite's rounding, as the runtime
            qi.invoke()
            for idx in tracked:
                name = f_details[idx]["name"]
                yf = fi.get_tensor(idx).astype(np.float64)
                qd = q_by_name[name]
                scale, zero = qd["quantization"]
                yq = (qi.get_tensor(qd["index"]).astype(np.float64) - zero) * scale
                signal[idx] += float(np.sum(yf * yf))
                noise[idx] += float(np.sum((yq.reshape(yf.shape) - yf) ** 2))
    sqnr = {idx: _sqnr(signal[idx], noise[idx]) for idx in tracked}
    out = []
    for idx in tracked:
        order, op_name, inputs = producer[idx]
        upstream = [sqnr[i] for i in inputs if i in sqnr]
        drop = (min(upstream) - sqnr[idx]) if upstream and not math.isinf(sqnr[idx]) else 0.0
        if math.isinf(drop) or math.isnan(drop):
            drop = 0.0
        rel = math.sqrt(noise[idx] / signal[idx]) if signal[idx] > 0 else (0.0 if noise[idx] == 0 else math.inf)
        qd = q_by_name[f_details[idx]["name"]]
        out.append(TensorError(order=order, tensor=f_details[idx]["name"], op=op_name,
                               shape=tuple(int(s) for s in f_details[idx]["shape"]),
                               sqnr_db=_round(sqnr[idx]), rel_rms_error=_round(rel), drop_db=_round(drop),
                               scale=_round(float(qd["quantization"][0]))))
    return out


def worst(errors: Sequence[TensorError], n: int | None = None) -> list[TensorError]:
    """Lowest SQNR first (ties: earlier in the graph first)."""
    ranked = sorted(errors, key=lambda e: (e.sqnr_db, e.order))
    return ranked if n is None else ranked[:n]


def format_table(errors: Sequence[TensorError], n: int | None = 10) -> str:
    """Plain-text table of the worst tensors, one line each."""
    rows = [["#", "op", "SQNR dB", "drop dB", "rel RMS err", "shape", "tensor"]]
    for e in worst(errors, n):
        sqnr = "exact" if math.isinf(e.sqnr_db) else f"{e.sqnr_db:.1f}"
        rows.append([str(e.order), e.op, sqnr, f"{e.drop_db:.1f}", f"{e.rel_rms_error:.4f}",
                     "x".join(map(str, e.shape)), _short(e.tensor)])
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _sqnr(signal: float, noise: float) -> float:
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def _round(x: float) -> float:
    return x if math.isinf(x) or math.isnan(x) else float(f"{x:.6g}")


def _short(name: str, width: int = 48) -> str:
    """``pkg.Model/torch.nn.modules.container.Sequential_7/torch.nn.modules.conv.Conv1d_0;…``
    (litert-torch's module path, fused names after ';') -> ``Sequential_7/Conv1d_0``."""
    parts = name.split(";")[0].split("/")
    short = "/".join(p.rsplit(".", 1)[-1] for p in (parts[1:] or parts))
    return short if len(short) <= width else "…" + short[-(width - 1):]
