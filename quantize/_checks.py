"""Float-vs-int8 measurements and the gates applied to them."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from wearable.runtime import quant_params

from ._types import Thresholds

__all__ = ["torch_outputs", "max_diff", "agreement", "float_agreement", "gate", "round_sig"]


def torch_outputs(model: nn.Module, x: np.ndarray, batch: int = 256) -> list[np.ndarray]:
    """Float outputs, computed on one thread: the reduction order (and so the last bits of the
    figures in the manifest) then does not depend on the machine's core count."""
    chunks: list[list[np.ndarray]] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch):
                y = model(torch.from_numpy(x[i:i + batch]))
                ys = list(y) if isinstance(y, (tuple, list)) else [y]
                chunks.append([t.detach().cpu().numpy().astype(np.float32) for t in ys])
    finally:
        torch.set_num_threads(threads)
    return [np.concatenate([c[k] for c in chunks], axis=0) for k in range(len(chunks[0]))]


def max_diff(a: Sequence[np.ndarray], b: Sequence[np.ndarray], *, integer: bool = False) -> Any:
    d = max(float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))) for x, y in zip(a, b))
    return int(d) if integer else d


def agreement(yf: np.ndarray, yq: np.ndarray, detail: dict, labels: np.ndarray | None) -> dict[str, Any]:
    """Float-vs-int8 figures for one output; argmax over axis 1 (classes), per window or per
    time sample for (n, classes, W) outputs."""
    scale, zero = quant_params(detail)
    info = np.iinfo(np.dtype(detail["dtype"]))
    lo, hi = (info.min - zero) * scale, (info.max - zero) * scale
    fmin, fmax = float(yf.min()), float(yf.max())
    span = fmax - fmin
    abs_err = np.abs(yq.astype(np.float64) - yf)
    err = float(np.max(abs_err))
    # A per-sample output has W values per window: its largest error over every sample of every
    # window is a far tail statistic, so the gate reads the 99.9th percentile there instead.
    per_sample = yf.ndim >= 3
    gate_err = float(np.quantile(abs_err, 0.999)) if per_sample else err
    entry: dict[str, Any] = {
        "max_abs_error": round_sig(err),
        "error_statistic": "p99.9 of |int8 - float|" if per_sample else "max |int8 - float|",
        "error_ratio": round_sig(gate_err / span) if span > 0 else (0.0 if gate_err == 0 else None),
        "float_range": [round_sig(fmin), round_sig(fmax)],
        "int8_range": [round_sig(lo), round_sig(hi)],
        "output_range_coverage": round_sig((min(hi, fmax) - max(lo, fmin)) / span) if span > 0 else 1.0,
        "argmax_agreement_pct": None,
    }
    if yf.ndim >= 2 and yf.shape[1] >= 2:
        pf, pq = yf.argmax(axis=1), yq.argmax(axis=1)
        entry["argmax_agreement_pct"] = round_sig(100.0 * float(np.mean(pf == pq)))
        if labels is not None and labels.shape == pf.shape:
            entry["accuracy_float_pct"] = round_sig(100.0 * float(np.mean(pf == labels)))
            entry["accuracy_int8_pct"] = round_sig(100.0 * float(np.mean(pq == labels)))
    return entry


def float_agreement(yf: np.ndarray, yo: np.ndarray) -> dict[str, Any]:
    """Argmax agreement and max error of another runtime's float outputs (e.g. int8 ONNX, dequantized)."""
    pct = round_sig(100.0 * float(np.mean(yf.argmax(axis=1) == yo.argmax(axis=1)))) \
        if yf.ndim >= 2 and yf.shape[1] >= 2 else None
    return {"argmax_agreement_pct": pct, "max_abs_error": round_sig(float(np.max(np.abs(yo.astype(np.float64) - yf))))}


def gate(t: Thresholds, onnx_diff: float, agreement: list[dict], agreement_x: list[dict],
         tflm: dict | None, scores: Sequence[Any] = ()) -> list[str]:
    fails = []
    for score in scores:
        if score.drop > t.max_metric_drop:
            where = f" (output {score.output})" if len(scores) > 1 else ""
            fails.append(f"{score.metric}{where} fell from {score.float_value:.2f} (float) to {score.int8_value:.2f} "
                         f"(int8), a drop of {score.drop:.2f} > {t.max_metric_drop:g}")
    if not onnx_diff < t.max_onnx_diff:
        fails.append(f"ONNX vs PyTorch max abs diff {onnx_diff:.3g} >= {t.max_onnx_diff:g}")
    for kernels, entries in (("", agreement), ("XNNPACK ", agreement_x)):
        for k, a in enumerate(entries):
            out = kernels + (f"output {k} " if len(entries) > 1 else "")
            if a["argmax_agreement_pct"] is not None and a["argmax_agreement_pct"] < t.min_agreement_pct:
                fails.append(f"{out}argmax agreement {a['argmax_agreement_pct']:.2f} % < {t.min_agreement_pct:g} %")
            if a["error_ratio"] is None or a["error_ratio"] > t.max_error_ratio:
                ratio = float("inf") if a["error_ratio"] is None else a["error_ratio"]
                stat = "p99.9" if a.get("error_statistic", "").startswith("p99.9") else "max"
                fails.append(f"{out}{stat} int8 error is {ratio:.3g} of the float output range "
                             f"(> {t.max_error_ratio:g}; max {a['max_abs_error']:.4g})")
            if not kernels and a["output_range_coverage"] < t.min_output_coverage:
                fails.append(f"{out}int8 output range {a['int8_range']} covers {a['output_range_coverage']:.2f} of "
                             f"the float range {a['float_range']} (< {t.min_output_coverage:g}; calibration clipped?)")
    if tflm is not None and tflm["max_abs_diff"] > t.max_tflm_diff:
        fails.append(f"TFLite Micro differs from the reference kernels by {tflm['max_abs_diff']} int8 steps "
                     f"(> {t.max_tflm_diff})")
    for k, pct in enumerate((tflm or {}).get("argmax_agreement_pct") or []):
        if pct is not None and pct < t.min_agreement_pct:
            fails.append(f"TFLite Micro output {k} argmax agrees with the reference on {pct:.2f} % "
                         f"(< {t.min_agreement_pct:g} %)")
    return [f.strip() for f in fails]


def round_sig(x: float) -> float:
    """Seven significant digits: figures stay readable and identical across re-runs."""
    return float(f"{float(x):.7g}")
