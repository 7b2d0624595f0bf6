"""Export a stateful streaming variant of a convolutional model: ``python -m quantize.stream_export``.

``python -m quantize.stream_export SOURCE --out DIR`` takes an exported artifact directory
(its checkpoint is found in ``wearable/checkpoints`` by model name and weights hash), a
checkpoint file or a shipped model name; converts the model with
``wearable.models.streaming.stream_convert`` (BatchNorm folded first) and writes ``DIR`` with
``model_int8.tflite`` (full int8), ``model_float.tflite`` and ``manifest.json`` (block size,
delay, warm-up, state shapes, scales, checks).

Quantization: the int8 step model carries the parameters of the non-streaming int8 model, the
one ``python -m quantize.export`` ships. The window model is calibrated on the same windows
(the evaluation set's calibration windows, ``calibration_windows`` as in the release
settings), and its ranges are moved onto the step graph tensor by tensor. litert-torch names
the two graphs' tensors differently, so ``map_tensors`` pairs them by structure: convolutions
by their weights, elementwise ops by their mapped inputs, and layout ops, state slices and
concatenations by the tensor whose values they carry. Each state then has the scale of the
tensor it holds, as input and as output. The manifest records the sha256 of that window
model; when it equals the artifact's ``model_int8.tflite`` the parameters are the shipped ones.

Checks (recorded in the manifest, gated where stated), over the evaluation set's held-out
windows joined end to end: float TFLite stream vs the offline float model (gate: 1e-4 relative
to the output range); int8 stream vs the same int8 network run offline on the whole signal at
once (gate: at most one output step; it is 0 when every tensor pairs up); int8 stream vs
offline float (error in output steps, argmax agreement); full int8; TFLite Micro runs the
step (arena bytes, max difference to ai-edge-litert's reference kernels in steps).

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

from ._stream_ranges import map_tensors
from ._types import ExportError

__all__ = ["stream_export", "map_tensors", "main", "FLOAT_TOL", "INT8_TOL_STEPS"]

FLOAT_TOL = 1e-4  # float stream vs offline, relative to the largest |output| (float32 rounding only)
INT8_TOL_STEPS = 1  # int8 stream vs the int8 network run offline: one output step (issue 8)
_TFLM_STEPS = 32


class StreamCheckFailed(RuntimeError):
    """A check of the streaming export failed."""


def stream_export(model: Any, out_dir: str | Path, *, calibration: np.ndarray, holdout: np.ndarray,
                  name: str, config: dict, labels: list[str] | None = None, block_samples: int | None = None,
                  overwrite: bool = False, progress: Callable[[str], None] | None = None) -> dict:
    """Convert, check and write the streaming export of ``model``; returns the manifest dict.

    ``calibration``: float windows ``(n, C, W)`` at the model rate, the ones ``quantize.export``
    calibrates the window model on (a signal ``(C, T)`` is cut into windows of W). ``holdout``:
    a float signal ``(C, T)``, longer than the model's delay plus warm-up. Raises
    ``StreamCheckFailed`` when a check fails.
    """
    import torch

    from wearable.models.streaming import stream_convert
    from wearable.runtime.interpreter import dequantize, quantize_with
    from wearable.runtime.stateful import FLOAT_MODEL_FILE, StatefulStream

    from . import _files, fold_batchnorm
    from ._runtimes import run_litert, run_tflm, tflm_version
    from ._stream_manifest import build_manifest, io_quant, raw_outputs, recorded_steps, sig, write_manifest
    from ._stream_ranges import as_windows
    from ._stream_tflite import signature_order, step_to_float, tie_state_scales
    from ._strip import strip_tensor_names
    from ._tflite import NotFullIntegerError, check_full_int8
    from .backends.litert import calibrate, quantize_ranges, to_float

    say = progress or (lambda stage: None)
    out_dir = Path(out_dir)
    _files.check_target(out_dir, overwrite)
    windows = as_windows(calibration, int(config["window_samples"]))
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
    window_float = to_float(folded, windows)
    ranges = calibrate(window_float, windows)  # quantize.export's ranges
    window_int8 = strip_tensor_names(quantize_ranges(window_float, ranges))  # == quantize.export's model_int8.tflite
    ins, outs = signature_order(float_tflite)
    step_ranges = _moved_ranges(window_float, float_tflite, ranges, tied=list(zip(ins[1:], outs[1:])))
    tflite, n_tied = tie_state_scales(quantize_ranges(float_tflite, step_ranges), 1)
    tflite = strip_tensor_names(tflite)
    try:
        summary = check_full_int8(tflite)
    except NotFullIntegerError as exc:
        raise StreamCheckFailed(str(exc)) from None
    with torch.no_grad():
        reference = folded(torch.from_numpy(holdout[None]))[0].numpy()  # offline, whole signal at once
    say("offline int8")
    offline_float = to_float(folded, holdout[None])  # the same network over the whole signal at once
    offline_int8 = quantize_ranges(offline_float, _moved_ranges(window_float, offline_float, ranges))
    (x_off,), (y_off_q,) = io_quant(offline_int8)
    (y_off,) = run_litert(offline_int8, quantize_with(holdout[None], *x_off, np.dtype(np.int8)), reference_kernels=True)
    scale = float(np.abs(reference).max())
    files = {"model_int8.tflite": tflite, FLOAT_MODEL_FILE: float_tflite}
    io = {}
    for key, fname in (("int8", "model_int8.tflite"), ("float", FLOAT_MODEL_FILE)):
        i_, o_ = signature_order(files[fname])
        io[key] = {"inputs": i_, "outputs": o_}
    with _files.staging(out_dir, overwrite) as tmp:
        for fname, data in files.items():
            (tmp / fname).write_bytes(data)
        manifest = build_manifest(step, name, config, labels, summary, io, n_tied)
        manifest["quantization"] = {
            "source": "ranges of the window model (quantize.export's route: litert-torch, ai-edge-quantizer "
                      "static_wi8_ai8, plain min/max) moved onto the step graph by map_tensors",
            "calibration_windows": len(windows), "calibration_sha256": _files.array_sha256(windows),
            "window_model_int8_sha256": _files.bytes_sha256(window_int8),
            "step_tensors_mapped": len(step_ranges),
        }
        write_manifest(tmp, manifest)
        say("check")
        lo, hi = step.warmup_samples, t_hold - delay
        y_float = StatefulStream(tmp, precision="float").run(holdout)
        float_diff = float(np.abs(y_float[:, delay + lo:] - reference[:, lo:hi]).max())
        ref_stream = StatefulStream(tmp, reference_kernels=True)
        q_int8 = raw_outputs(ref_stream, holdout)
        y_int8 = dequantize(q_int8, ref_stream._out[0])
        out_scale = ref_stream._out[0]["quantization"][0]
        if tuple(ref_stream._out[0]["quantization"]) != y_off_q:  # the same int8 grid, or steps mean nothing
            raise StreamCheckFailed(f"output quantization {ref_stream._out[0]['quantization']} differs from the "
                                    f"offline int8 model's {y_off_q}")
        steps_off = np.abs(q_int8[:, delay + lo:].astype(int) - y_off[0][:, lo:hi].astype(int))
        int8_err = np.abs(y_int8[:, delay + lo:] - reference[:, lo:hi])
        agree = float(np.mean(y_int8[:, delay + lo:].argmax(0) == reference[:, lo:hi].argmax(0)) * 100)
        agree_off = float(np.mean(q_int8[:, delay + lo:].argmax(0) == y_off[0][:, lo:hi].argmax(0)) * 100)
        say("tflite-micro")
        x_rows, y_rows = recorded_steps(ref_stream, holdout, _TFLM_STEPS)
        try:
            y_tflm, arena = run_tflm(tflite, *x_rows, n_outputs=len(y_rows))
        except Exception as exc:
            raise StreamCheckFailed(f"TFLite Micro cannot run the streaming model: {exc}") from None
        tflm_diff = max(int(np.abs(a.astype(int) - c.astype(int)).max()) for a, c in zip(y_tflm, y_rows))
        manifest["checks"] = {
            "signal_samples": t_hold, "compared_samples": hi - lo,
            "reference": "offline model (BatchNorm folded) on the whole signal; stream sample t + delay vs "
                         "offline sample t, for warmup_samples <= t < T - delay",
            "float_max_abs_diff": sig(float_diff), "float_tolerance": sig(FLOAT_TOL * max(scale, 1.0)),
            "int8_vs_offline_int8_max_steps": int(steps_off.max()),
            "int8_vs_offline_int8_differing_pct": sig(float(np.mean(steps_off > 0) * 100)),
            "int8_vs_offline_int8_argmax_agreement_pct": sig(agree_off),
            "int8_vs_offline_int8_tolerance_steps": INT8_TOL_STEPS,
            "int8_max_abs_error": sig(float(int8_err.max())),
            "int8_max_error_steps": sig(float(int8_err.max() / out_scale)),
            "int8_mean_abs_error": sig(float(int8_err.mean())),
            "int8_argmax_agreement_pct": sig(agree),
            "full_int8": True,
        }
        manifest["tflm"] = {"arena_bytes": arena, "steps": _TFLM_STEPS, "max_abs_diff": tflm_diff,
                            "version": tflm_version()}
        if float_diff > FLOAT_TOL * max(scale, 1.0):
            raise StreamCheckFailed(f"the float stream differs from the offline model by {float_diff:.3g} "
                                    f"(> {FLOAT_TOL * max(scale, 1.0):.3g})")
        if steps_off.max() > INT8_TOL_STEPS:
            raise StreamCheckFailed(f"the int8 stream differs from the int8 network run offline by "
                                    f"{int(steps_off.max())} output steps (> {INT8_TOL_STEPS})")
        write_manifest(tmp, manifest)
    return manifest


def _moved_ranges(reference: bytes, target: bytes, ranges: dict, tied: list[tuple[int, int]] = ()) -> dict:
    """``ranges`` of ``reference``'s tensors, keyed by the paired tensors of ``target`` instead."""
    pairs = map_tensors(reference, target, tied=tied)
    missing = sorted(t for t, r in pairs.items() if r is None or r not in ranges)
    if missing:
        raise StreamCheckFailed(f"{len(missing)} tensors of the converted graph have no counterpart with a range "
                                f"in the window model (first: {missing[0]}); its int8 form would not equal the "
                                f"offline one")
    return {t: ranges[r] for t, r in pairs.items()}


# --------------------------------------------------------------------------- command line

def _resolve(source: str) -> Path:
    """A checkpoint path for SOURCE: a checkpoint file, a shipped model name or an artifact directory."""
    path = Path(source)
    if path.is_dir():
        mpath = path / "manifest.json"
        if not mpath.is_file():
            raise ValueError(f"{path}: not an artifact directory (no manifest.json)")
        from wearable.runtime.artifact import ArtifactError, check_name, read_manifest

        try:  # the name becomes a path: a plain name cannot leave CHECKPOINT_DIR
            model = read_manifest(path).get("model")
            model = model if isinstance(model, dict) else {}
            ckpt = CHECKPOINT_DIR / f"{check_name(model.get('name'), 'manifest field model.name')}.pt"
        except ArtifactError as exc:
            raise ValueError(f"{path}: {exc}") from None
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
    p.add_argument("--calibration-windows", type=int, default=None, metavar="N",
                   help="evaluation-set windows the ranges come from (default: as python -m quantize.export, the "
                        "release settings' calibration_windows or 500)")
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
        from .export import DEFAULT_CALIBRATION_WINDOWS, _export_settings

        ckpt = _resolve(args.source)
        if min(args.calibration_windows or 1, args.holdout_windows) < 1:
            raise ValueError("--calibration-windows and --holdout-windows must be >= 1")
        if args.out.exists() and not args.force:
            raise ValueError(f"{args.out} exists (use --force to replace it)")
        source = load_checkpoint(ckpt)
        ev_path = evalset_path(ckpt)
        if not ev_path.is_file():
            raise ValueError(f"{ckpt}: no evaluation set {ev_path.name} (make one with python -m quantize.evalset)")
        ev = load_evalset(ev_path)
        n_cal = (args.calibration_windows or _export_settings(ckpt).get("calibration_windows")
                 or DEFAULT_CALIBRATION_WINDOWS)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    calibration = ev.calibration_x[:int(n_cal)]
    holdout = np.concatenate(list(ev.holdout_x[:args.holdout_windows]), axis=-1)
    progress = None if args.quiet else (lambda stage: print(f"[{source.model_name}] {stage}", file=sys.stderr))
    try:
        m = stream_export(source.build(), args.out, calibration=calibration, holdout=holdout,
                          name=source.model_name, config=dict(source.config), labels=list(source.labels or []) or None,
                          block_samples=args.block_samples,
                          overwrite=args.force, progress=progress)
    except (StreamCheckFailed, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    s, c = m["stream"], m["checks"]
    print(f"{source.model_name}: block {s['block_samples']} samples, delay {s['delay_samples']}, "
          f"{len(s['states'])} states ({s['state_values']} values), {m['op_count']} ops; float max diff "
          f"{c['float_max_abs_diff']:.3g}; int8 vs the int8 network offline: max {c['int8_vs_offline_int8_max_steps']} "
          f"steps ({c['int8_vs_offline_int8_differing_pct']:g} % of values differ), vs offline float: max "
          f"{c['int8_max_error_steps']:.1f} steps, argmax agreement {c['int8_argmax_agreement_pct']:.2f} %; TFLM arena "
          f"{m['tflm']['arena_bytes']} B -> {args.out}")
    shipped = Path(args.source) / "manifest.json"
    if shipped.is_file():  # an artifact directory: are these its int8 parameters?
        sha = json.loads(shipped.read_text()).get("files", {}).get("model_int8.tflite", {}).get("sha256")
        same = sha == m["quantization"]["window_model_int8_sha256"]
        print(f"int8 parameters {'equal' if same else 'differ from'} {args.source}'s model_int8.tflite"
              + ("" if same else " (exported from other calibration windows?)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
