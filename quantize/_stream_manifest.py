"""Manifest and check helpers of ``quantize.stream_export``: the stream's raw int8 outputs, the
recorded steps TFLite Micro replays, the manifest written next to the models."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["raw_outputs", "recorded_steps", "build_manifest", "write_manifest", "sig", "io_quant"]


def raw_outputs(stream, signal: np.ndarray) -> np.ndarray:
    """The int8 values of the stream's first output over ``signal`` (from zero states)."""
    stream.reset()
    rows = []
    for i in range(signal.shape[1] // stream.block):
        stream.push(signal[:, i * stream.block:(i + 1) * stream.block])
        rows.append(stream._interp.get_tensor(stream._out[0]["index"])[0])
    return np.concatenate(rows, axis=1)


def recorded_steps(stream, signal: np.ndarray, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Int8 inputs (block, states) and outputs of the first ``n`` steps of ``stream`` on ``signal``."""
    from wearable.runtime.interpreter import quantize_with

    stream.reset()
    ins: list[list[np.ndarray]] = []
    outs: list[list[np.ndarray]] = []
    interp = stream._interp
    for i in range(n):
        block = signal[:, i * stream.block:(i + 1) * stream.block]
        xq = quantize_with(block[None], *stream._x_q, np.dtype(stream._in[0]["dtype"]))
        ins.append([xq, *stream._states])
        stream.push(block)
        outs.append([interp.get_tensor(d["index"]) for d in stream._out])
    return ([np.concatenate([r[k] for r in ins]) for k in range(len(ins[0]))],
            [np.concatenate([r[k] for r in outs]) for k in range(len(outs[0]))])


def build_manifest(step, name: str, config: dict, labels, summary, io: dict, n_tied: int) -> dict:
    return {
        "schema_version": 1,
        "model": {"name": name, "config": config},
        "labels": labels,
        "sampling_rate_hz": float(config["sampling_rate_hz"]),
        "window_samples": int(config["window_samples"]),
        "in_channels": int(config.get("in_channels", 1)),
        "stream": {
            "mode": "external state (kws_streaming): states are model inputs and outputs, fed back by the caller",
            "block_samples": step.block_samples, "delay_samples": step.delay_samples,
            "warmup_samples": step.warmup_samples, "output_rates": list(step.output_rates),
            "states": [{"name": s.name, "shape": list(s.shape), "rate": s.rate, "input": k + 1, "output": 1 + k}
                       for k, s in enumerate(step.states)],
            "state_values": int(sum(s.channels * s.frames for s in step.states)),
            "state_scales_tied": n_tied,
            "tensors": io,
        },
        "op_count": summary.op_count,
        "ops": [{"name": n, "version": v, "count": summary.operators.count(n)} for n, v in summary.opcodes],
    }


def write_manifest(tmp: Path, manifest: dict) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from . import _files

    model = (tmp / "model_int8.tflite").read_bytes()
    interp = Interpreter(model_content=model)
    by_index = {d["index"]: d for d in [*interp.get_input_details(), *interp.get_output_details()]}
    io = manifest["stream"]["tensors"]["int8"]

    def entry(i: int) -> dict:
        d = by_index[i]
        scale, zero = d["quantization"]
        return {"index": i, "name": d["name"], "shape": [int(s) for s in d["shape"]], "dtype": "int8",
                "scale": float(scale), "zero_point": int(zero)}

    manifest["inputs"] = [entry(i) for i in io["inputs"]]
    manifest["outputs"] = [entry(i) for i in io["outputs"]]
    for s in manifest["stream"]["states"]:
        fed = manifest["inputs"][s["input"]]
        s["scale"], s["zero_point"] = fed["scale"], fed["zero_point"]
    manifest["files"] = {p.name: {"bytes": p.stat().st_size, "sha256": _files.file_sha256(p)}
                         for p in sorted(tmp.iterdir()) if p.name != "manifest.json"}
    (tmp / "manifest.json").write_text(_files.manifest_json(manifest))


def sig(x: float) -> float:
    return float(f"{x:.6g}")


def io_quant(model: bytes) -> tuple[list[tuple], list[tuple]]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model)
    return ([tuple(d["quantization"]) for d in interp.get_input_details()],
            [tuple(d["quantization"]) for d in interp.get_output_details()])
