"""Export a stateful streaming variant of a convolutional model: ``python -m quantize.stream_export``.

``python -m quantize.stream_export SOURCE --out DIR`` takes an exported artifact directory
(its checkpoint is found in ``wearable/checkpoints`` by model name and weights hash), a
checkpoint file or a shipped model name; converts the model with
``wearable.models.streaming.stream_convert`` (BatchNorm folded first) and writes ``DIR`` with
``model_int8.tflite`` (full int8, states tied to one scale each), ``model_float.tflite`` and
``manifest.json`` (block size, delay, warm-up, state shapes, scales, checks). The calibration
and check signal is the checkpoint's shipped evaluation set, windows joined end to end.

Checks (recorded in the manifest, gated where stated): float TFLite stream vs the offline
float model over the whole joined signal (gate: 1e-4 relative to the output range), int8 stream
vs offline float (max error in output steps, argmax agreement), full int8, TFLite Micro runs
the step (arena bytes, max difference to ai-edge-litert's reference kernels in steps).

Exit codes: 0 written; 1 a check failed (nothing written); 2 bad input (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from wearable import CHECKPOINT_DIR

__all__ = ["stream_export", "main", "FLOAT_TOL"]

log = logging.getLogger("quantize")
FLOAT_TOL = 1e-4  # float stream vs offline, relative to the largest |output| (float32 rounding only)
_TFLM_STEPS = 32


class StreamCheckFailed(RuntimeError):
    """A check of the streaming export failed."""


def stream_export(model: Any, out_dir: str | Path, *, calibration: np.ndarray, holdout: np.ndarray,
                  name: str, config: dict, labels: list[str] | None = None, block_samples: int | None = None,
                  calibration_steps: int = 256, overwrite: bool = False,
                  progress: Callable[[str], None] | None = None) -> dict:
    """Convert, check and write the streaming export of ``model``; returns the manifest dict.

    ``calibration``/``holdout``: float signals ``(C, T)`` at the model rate (the holdout one
    longer than the model's receptive field). Raises ``StreamCheckFailed`` when a check fails.
    """
    import torch

    from wearable.models.streaming import stream_convert
    from wearable.runtime.stateful import FLOAT_MODEL_FILE, StatefulStream

    from . import _files, fold_batchnorm
    from ._runtimes import run_tflm, tflm_version
    from ._stream_tflite import signature_order, step_calibration, step_to_float, step_to_int8, tie_state_scales
    from ._strip import strip_tensor_names
    from ._tflite import NotFullIntegerError, check_full_int8

    say = progress or (lambda stage: None)
    out_dir = Path(out_dir)
    _files.check_target(out_dir, overwrite)
    say("convert")
    folded, _ = fold_batchnorm(model.eval())
    step = stream_convert(folded, block_samples=block_samples)
    b, delay = step.block_samples, step.delay_samples
    if len(step.output_rates) != 1 or step.output_rates[0] != 1:
        raise ValueError("only models with one per-sample output are exported for streaming here")
    t_hold = holdout.shape[-1] // b * b
    if t_hold - delay <= step.warmup_samples + b:
        raise ValueError(f"holdout signal too short: {holdout.shape[-1]} samples for a delay of {delay} and a "
                         f"warm-up of {step.warmup_samples}")
    holdout = np.ascontiguousarray(holdout[:, :t_hold], dtype=np.float32)
    float_tflite = step_to_float(step)
    say("quantize")
    rows = step_calibration(step, calibration, calibration_steps)
    tflite, n_tied = tie_state_scales(step_to_int8(float_tflite, rows), 1)
    tflite = strip_tensor_names(tflite)
    try:
        summary = check_full_int8(tflite)
    except NotFullIntegerError as exc:
        raise StreamCheckFailed(str(exc)) from None
    with torch.no_grad():
        reference = folded(torch.from_numpy(holdout[None]))[0].numpy()  # offline, whole signal at once
    scale = float(np.abs(reference).max())
    files = {"model_int8.tflite": tflite, FLOAT_MODEL_FILE: float_tflite}
    io = {}
    for key, fname in (("int8", "model_int8.tflite"), ("float", FLOAT_MODEL_FILE)):
        ins, outs = signature_order(files[fname])
        io[key] = {"inputs": ins, "outputs": outs}
    with _files.staging(out_dir, overwrite) as tmp:
        for fname, data in files.items():
            (tmp / fname).write_bytes(data)
        manifest = _manifest(step, name, config, labels, summary, io, n_tied)
        _write_manifest(tmp, manifest)
        say("check")
        lo, hi = step.warmup_samples, t_hold - delay
        y_float = StatefulStream(tmp, precision="float").run(holdout)
        float_diff = float(np.abs(y_float[:, delay + lo:] - reference[:, lo:hi]).max())
        ref_stream = StatefulStream(tmp, reference_kernels=True)
        y_int8 = ref_stream.run(holdout)
        out_scale = ref_stream._out[0]["quantization"][0]
        int8_err = np.abs(y_int8[:, delay + lo:] - reference[:, lo:hi])
        agree = float(np.mean(y_int8[:, delay + lo:].argmax(0) == reference[:, lo:hi].argmax(0)) * 100)
        say("tflite-micro")
        x_rows, y_rows = _recorded_steps(ref_stream, holdout, _TFLM_STEPS)
        try:
            y_tflm, arena = run_tflm(tflite, *x_rows, n_outputs=len(y_rows))
        except Exception as exc:
            raise StreamCheckFailed(f"TFLite Micro cannot run the streaming model: {exc}") from None
        tflm_diff = max(int(np.abs(a.astype(int) - c.astype(int)).max()) for a, c in zip(y_tflm, y_rows))
        manifest["checks"] = {
            "signal_samples": t_hold, "compared_samples": hi - lo,
            "reference": "offline float model (BatchNorm folded) on the whole signal; stream sample t + delay vs "
                         "offline sample t, for warmup_samples <= t < T - delay",
            "float_max_abs_diff": _sig(float_diff), "float_tolerance": _sig(FLOAT_TOL * max(scale, 1.0)),
            "int8_max_abs_error": _sig(float(int8_err.max())),
            "int8_max_error_steps": _sig(float(int8_err.max() / out_scale)),
            "int8_mean_abs_error": _sig(float(int8_err.mean())),
            "int8_argmax_agreement_pct": _sig(agree),

            "full_int8": True,
        }
        manifest["tflm"] = {"arena_bytes": arena, "steps": _TFLM_STEPS, "max_abs_diff": tflm_diff,
                            "version": tflm_version()}
        if float_diff > FLOAT_TOL * max(scale, 1.0):
            raise StreamCheckFailed(f"the float stream differs from the offline model by {float_diff:.3g} "
                                    f"(> {FLOAT_TOL * max(scale, 1.0):.3g})")
        _write_manifest(tmp, manifest)
    return manifest


def _recorded_steps(stream, signal: np.ndarray, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
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


def _manifest(step, name: str, config: dict, labels, summary, io: dict, n_tied: int) -> dict:
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


def _write_manifest(tmp: Path, manifest: dict) -> None:
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
        s["scale"], s["zero_point"] = manifest["inputs"][s["input"]]["scale"], manifest["inputs"][s["input"]]["zero_point"]
    manifest["files"] = {p.name: {"bytes": p.stat().st_size, "sha256": _files.file_sha256(p)}
                         for p in sorted(tmp.iterdir()) if p.name != "manifest.json"}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _sig(x: float) -> float:
    return float(f"{x:.6g}")


# --------------------------------------------------------------------------- command line

def _resolve(source: str) -> Path:
    """A checkpoint path for SOURCE: a checkpoint file, a shipped model name or an artifact directory."""
    path = Path(source)
    if path.is_dir():
        mpath = path / "manifest.json"
        if not mpath.is_file():
            raise ValueError(f"{path}: not an artifact directory (no manifest.json)")
        model = json.loads(mpath.read_text()).get("model", {})
        ckpt = CHECKPOINT_DIR / f"{model.get('name')}.pt"
        if not ckpt.is_file():
            raise ValueError(f"{path}: no shipped checkpoint {ckpt.name} for its model")
        from wearable.training.checkpoint import load_checkpoint

        from ._files import weights_sha256

        if model.get("weights_sha256") and weights_sha256(load_checkpoint(ckpt).build()) != model["weights_sha256"]:
            raise ValueError(f"{path}: weights differ from {ckpt} (artifact from another checkpoint)")
        return ckpt
    if path.is_file():
        return path
    ckpt = CHECKPOINT_DIR / f"{source}.pt"
    if ckpt.is_file():
        return ckpt
    raise ValueError(f"{source}: not an artifact directory, checkpoint file or shipped model name")


def _parser() -> argparse.ArgumentParser:
    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:
            self.exit(2, f"error: {message}\n")

    p = Parser(prog="python -m quantize.stream_export", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("source", metavar="ARTIFACT_OR_CHECKPOINT",
                   help="artifact directory, checkpoint file, or shipped model name")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    p.add_argument("--calibration-steps", type=int, default=256, metavar="N", help="step inputs used to calibrate")
    p.add_argument("--holdout-windows", type=int, default=64, metavar="N",
                   help="evaluation-set windows joined into the check signal")
    p.add_argument("--block-samples", type=int, default=None, metavar="N",
                   help="samples per step, a multiple of the total stride (default: the total stride); larger "
                        "blocks cost the same MACs, fewer interpreter calls and N - 1 samples more latency")
    p.add_argument("--force", action="store_true", help="replace DIR if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        from wearable.training.checkpoint import load_checkpoint

        from .evalset import evalset_path, load_evalset

        ckpt = _resolve(args.source)
        if args.calibration_steps < 1 or args.holdout_windows < 1:
            raise ValueError("--calibration-steps and --holdout-windows must be >= 1")
        if args.out.exists() and not args.force:
            raise ValueError(f"{args.out} exists (use --force to replace it)")
        source = load_checkpoint(ckpt)
        ev_path = evalset_path(ckpt)
        if not ev_path.is_file():
            raise ValueError(f"{ckpt}: no evaluation set {ev_path.name} (make one with python -m quantize.evalset)")
        ev = load_evalset(ev_path)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    calibration = np.concatenate(list(ev.calibration_x), axis=-1)
    holdout = np.concatenate(list(ev.holdout_x[:args.holdout_windows]), axis=-1)
    progress = None if args.quiet else (lambda stage: print(f"[{source.model_name}] {stage}", file=sys.stderr))
    try:
        m = stream_export(source.build(), args.out, calibration=calibration, holdout=holdout,
                          name=source.model_name, config=dict(source.config), labels=list(source.labels or []) or None,
                          calibration_steps=args.calibration_steps, block_samples=args.block_samples,
                          overwrite=args.force, progress=progress)
    except StreamCheckFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    s, c = m["stream"], m["checks"]
    print(f"{source.model_name}: block {s['block_samples']} samples, delay {s['delay_samples']}, "
          f"{len(s['states'])} states ({s['state_values']} values), {m['op_count']} ops; float max diff "
          f"{c['float_max_abs_diff']:.3g}; int8 max error {c['int8_max_error_steps']:.1f} steps, argmax agreement "
          f"{c['int8_argmax_agreement_pct']:.2f} %; TFLM arena {m['tflm']['arena_bytes']} B -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
