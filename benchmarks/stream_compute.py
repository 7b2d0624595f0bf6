"""Compute saved by stateful streaming: ``python -m benchmarks.stream_compute STREAM_DIR --artifact DIR``.

Compares, on the same signal, the shipped window model run every ``hop`` samples (sliding
windows, ``--artifact``: an export of ``python -m quantize.export``) with its stateful
streaming export (``STREAM_DIR``: ``python -m quantize.stream_export``), which processes each
sample once:

* MACs per second of signal, counted from the two ``.tflite`` graphs (``benchmarks.macs``):
  sliding = MACs per window x rate / hop; streaming = MACs per step x rate / block. Shown at
  the manifest's hop and at W/2, W/4 (the overlap a per-sample merge would use); "conv" counts
  convolution MACs only, "all" adds elementwise ops as one MAC-equivalent per element.
* times real time of both, one thread, ai-edge-litert's builtin kernels (no delegate), Python
  loop included (int8 quantization of the input, state copies).
* with torch installed: the max |difference| of both int8 outputs against the offline float
  model over the whole signal (samples ``warmup <= t < T - delay``), in output int8 steps, and
  their argmax agreement with it. The sliding model's error includes its window-edge effect.
* the export's own check: int8 stream vs the same int8 network run offline (output steps), and
  whether the stream's int8 parameters are those of ``--artifact``'s ``model_int8.tflite``.
* with ``--data-dir``: QRS Se/+P on MIT-BIH DS2 of both int8 models, scored offline by
  ``wearable.continual.qrs`` (window model on consecutive windows; stream over each record).

``compute_rows`` (graphs only, no TFLite runtime) is what ``python -m benchmarks.run`` reports
for a window model given with its streaming export.

The signal is the checkpoint's evaluation set (held-out windows joined end to end), repeated
to ``--seconds``. Exit codes: 0 measured; 2 bad input (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "macs_per_second", "compute_rows"]


def macs_per_second(model: bytes, samples_per_call: float, rate_hz: float) -> dict[str, float]:
    """MACs per second of signal of a model invoked once every ``samples_per_call`` samples."""
    from .macs import count_macs
    from .tflite_graph import read_graph

    counts = count_macs(read_graph(model))
    calls = rate_hz / samples_per_call
    return {"conv": sum(c.macs for c in counts if c.kind in ("conv", "depthwise", "fc")) * calls,
            "all": sum(c.macs for c in counts) * calls}


def compute_rows(window_model: bytes, stream_model: bytes, *, rate_hz: float, window: int, hop: int,
                 block: int) -> list[dict]:
    """MACs per second of signal of the window model run every ``hop`` samples, every ``window // 2``
    and every ``window // 4``, then of its stateful stream run every ``block`` samples; each row has
    ``mode`` ("sliding" or "stream"), ``hop`` (samples per call), ``shipped`` (the row at ``hop``), ``conv``, ``all`` (see
    ``macs_per_second``) and ``x_sliding`` (conv MACs relative to the window model at ``hop``).
    Reads the two graphs only (numpy, no TFLite runtime)."""
    hops = sorted({h for h in (hop, window // 2, window // 4) if h > 0}, reverse=True)
    rows = [{"model": f"sliding, hop {h}", "mode": "sliding", "hop": h, "shipped": h == hop,
             **macs_per_second(window_model, h, rate_hz)} for h in hops]
    rows.append({"model": f"stateful stream, block {block}", "mode": "stream", "hop": block, "shipped": False,
                 **macs_per_second(stream_model, block, rate_hz)})
    base = rows[hops.index(hop)]["conv"]
    for r in rows:
        r["x_sliding"] = r["conv"] / base if base else float("nan")
    return rows


def _sliding(art, signal: np.ndarray, hop: int) -> tuple[np.ndarray, float]:
    """Per-sample dequantized outputs of windows every ``hop`` (later windows overwrite the
    overlap: each sample keeps the output of the last window covering it), and the wall time."""
    from wearable.runtime import dequantize, load_interpreter, quant_params
    from wearable.runtime.interpreter import quantize_with

    interp = load_interpreter(art.model, num_threads=1, default_delegates=False)
    d_in, d_out = interp.get_input_details()[0], interp.get_output_details()[0]
    q = quant_params(d_in)
    w = art.window
    out = np.zeros((int(d_out["shape"][1]), signal.shape[1]), dtype=np.float32)
    start = time.perf_counter()
    for s in range(0, signal.shape[1] - w + 1, hop):
        interp.set_tensor(d_in["index"], quantize_with(signal[None, :, s:s + w], *q, np.dtype(d_in["dtype"])))
        interp.invoke()
        out[:, s:s + w] = dequantize(interp.get_tensor(d_out["index"])[0], d_out)
    return out, time.perf_counter() - start


def _reference(stream_dir: Path, name: str, signal: np.ndarray) -> np.ndarray | None:
    try:
        import torch

        from quantize.stream_export import _resolve
        from wearable.training.checkpoint import load_checkpoint
    except ImportError:
        return None
    model = load_checkpoint(_resolve(name)).build().eval()
    with torch.no_grad():
        return model(torch.from_numpy(signal[None].astype(np.float32)))[0].numpy()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.stream_compute", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("stream", type=Path, help="directory written by python -m quantize.stream_export")
    p.add_argument("--artifact", type=Path, required=True, help="the window model's artifact (quantize.export)")
    p.add_argument("--seconds", type=float, default=600.0, help="signal length played through both")
    p.add_argument("--out", type=Path, help="also write the figures as JSON here")
    p.add_argument("--data-dir", type=Path, help="with the MIT-BIH records: also score QRS detection of both int8 "
                   "models on DS2 (a 'qrs' segmentation model only)")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from wearable.runtime import ArtifactError, load_artifact
    from wearable.runtime.stateful import StatefulStream

    try:
        art = load_artifact(args.artifact)
        stream = StatefulStream(args.stream, reference_kernels=False)
        sm = stream.artifact.manifest
        if sm["model"]["name"] != art.name or sm["model"]["config"] != art.manifest["model"]["config"]:
            raise ValueError(f"{args.stream} streams {sm['model']['name']}, {args.artifact} holds {art.name}")
        if args.seconds <= 0:
            raise ValueError("--seconds must be > 0")
        signal = _signal(art.name, art.sampling_rate, args.seconds, art.manifest["in_channels"])
        if args.data_dir is not None and ("qrs" not in art.labels or not args.data_dir.is_dir()):
            raise ValueError(f"--data-dir needs a model with a 'qrs' label and a directory ({args.data_dir})")
    except (ArtifactError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fs, w, b = art.sampling_rate, art.window, stream.block
    rows = compute_rows(art.model, stream.artifact.model, rate_hz=fs, window=w, hop=art.hop, block=b)
    hops = [r["hop"] for r in rows[:-1]]
    t = signal.shape[1]
    y_slide, t_slide = _sliding(art, signal, art.hop)
    start = time.perf_counter()
    y_stream = stream.run(signal)
    t_stream = time.perf_counter() - start
    rows[hops.index(art.hop)]["x_real_time"] = t / fs / t_slide
    rows[-1]["x_real_time"] = t / fs / t_stream
    ref = _reference(args.stream, art.name, signal)
    if ref is not None:
        d, lo = stream.delay_samples, stream.warmup_samples
        steps = stream._out[0]["quantization"][0]
        for row, y in ((rows[hops.index(art.hop)], y_slide[:, lo:t - d]), (rows[-1], y_stream[:, d + lo:])):
            r = ref[:, lo:t - d]
            row["max_abs_diff"] = float(np.abs(y - r).max())
            row["max_diff_steps"] = row["max_abs_diff"] / steps
            row["argmax_agreement_pct"] = float(np.mean(y.argmax(0) == r.argmax(0)) * 100)
    print(f"{art.name}: {t / fs:.0f} s of signal at {fs:g} Hz, window {w}, shipped hop {art.hop}; stream block {b}, "
          f"delay {stream.delay_samples} samples ({stream.delay_samples / fs:.2f} s)")
    print(f"{'model':<26} {'conv MACs/s':>12} {'all MACs/s':>12} {'x sliding':>10} {'x real time':>12} "
          f"{'max |diff|':>10} {'steps':>6} {'argmax %':>9}")
    for r in rows:
        fmt = lambda k, f: format(r[k], f) if k in r else "-"  # noqa: E731
        print(f"{r['model']:<26} {r['conv']:>12,.0f} {r['all']:>12,.0f} {r['x_sliding']:>10.2f} "
              f"{fmt('x_real_time', ',.0f'):>12} {fmt('max_abs_diff', '.3f'):>10} {fmt('max_diff_steps', '.1f'):>6} "
              f"{fmt('argmax_agreement_pct', '.2f'):>9}")
    print("max |diff|: int8 output (dequantized logits) vs the offline float model over the whole signal outside the "
          "stream's warm-up; steps: in the stream's output scale;"
          f" export check (float stream vs offline): {sm.get('checks', {}).get('float_max_abs_diff')}")
    checks = sm.get("checks", {})
    if "int8_vs_offline_int8_max_steps" in checks:
        same = sm.get("quantization", {}).get("window_model_int8_sha256") == \
            art.manifest.get("files", {}).get("model_int8.tflite", {}).get("sha256")
        print(f"export check (int8 stream vs the same int8 network run offline on {checks['compared_samples']} samples): "
              f"max {checks['int8_vs_offline_int8_max_steps']} steps, argmax agreement "
              f"{checks['int8_vs_offline_int8_argmax_agreement_pct']} %; int8 parameters "
              f"{'equal' if same else 'differ from'} {args.artifact}'s model_int8.tflite")
    qrs = _qrs(art, stream, args.data_dir) if args.data_dir is not None else None
    for key, v in (qrs or {}).items():
        print(f"QRS on MIT-BIH DS2 ({v['records']} records, {v['tp'] + v['fn']} beats), {key}: Se {v['se_pct']:.2f} %, "
              f"+P {v['ppv_pct']:.2f} %")
    if args.out:
        args.out.write_text(json.dumps({"model": art.name, "seconds": t / fs, "rows": rows, "qrs": qrs,
                                        "delay_samples": stream.delay_samples}, indent=1) + "\n")
    return 0


def _qrs(art, stream, data_dir: Path) -> dict:
    """QRS Se/+P on DS2 with ``wearable.continual.qrs`` (the offline scorer: record preprocessed as
    ``load_windows``, beats from the mask's runs) for the window model on consecutive windows and
    for the stream over the whole record (its outputs shifted back by the delay)."""
    from wearable.continual.qrs import qrs_evaluate
    from wearable.runtime import invoke, load_interpreter, quantize

    interp = load_interpreter(art.model, num_threads=1, default_delegates=False)  # the stream's kernels
    d_in = interp.get_input_details()[0]

    def windows(x: np.ndarray) -> np.ndarray:
        return invoke(interp, quantize(x, d_in))[0].astype(np.float32)

    def streamed(x: np.ndarray) -> np.ndarray:  # consecutive windows: the record, streamed in one go
        n, c, w = x.shape
        tail = -(-stream.delay_samples // stream.block) * stream.block
        y = stream.run(np.concatenate([x.transpose(1, 0, 2).reshape(c, n * w), np.zeros((c, tail))], axis=1))
        y = y[:, stream.delay_samples:stream.delay_samples + n * w]
        return y.reshape(y.shape[0], n, w).transpose(1, 0, 2)

    qrs = art.labels.index("qrs")
    return {name: qrs_evaluate(f, data_dir=data_dir, sampling_rate_hz=art.sampling_rate, window_samples=art.window,
                               qrs_class=qrs) for name, f in (("window model, hop W", windows),
                                                              ("stateful stream", streamed))}


def _signal(name: str, fs: float, seconds: float, channels: int) -> np.ndarray:
    """The evaluation set's held-out windows joined (a seeded random walk when there is none)."""
    n = int(seconds * fs) // 256 * 256 or 256
    from wearable import CHECKPOINT_DIR

    path = CHECKPOINT_DIR / f"{name}.evalset.npz"
    if path.is_file():
        with np.load(path) as z:
            base = np.concatenate(list(z["holdout_x"].astype(np.float32)), axis=-1)
    else:
        rng = np.random.default_rng(0)
        base = np.cumsum(rng.standard_normal((channels, 100_000)), axis=1).astype(np.float32) * 0.05
    reps = -(-n // base.shape[1])
    return np.tile(base, (1, reps))[:, :n]


if __name__ == "__main__":
    sys.exit(main())
