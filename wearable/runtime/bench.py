"""Streaming benchmark: throughput, Python overhead vs interpreter time, resident memory over a long stream.

    python -m wearable.runtime.bench artifacts/dscnn_tiny --hours 24
    python -m wearable.runtime.bench artifacts/dscnn_tiny --hours 1 --sampling-rate 360 --chunk 36

Plays a synthetic ECG-like signal, or PPG-like for a model whose input is a PPG (a 10-minute
numpy buffer, repeated) through
``StreamRuntime`` on one interpreter thread, and prints one JSON line: seconds of signal,
windows, wall seconds, × real time, seconds inside the interpreter (set_tensor + invoke +
get_tensor), Python overhead (everything else: input checks, filtering, resampling,
quantization, ring buffer, events) as a percentage of interpreter time, split into the
preprocessing kernels (``dsp``: resample, band-pass, clip, int8 quantization: numerical work
that firmware does too) and the rest (``bookkeeping``: Python-level scheduling, merging and
events), and resident memory
(VmRSS) after the first window and at the end. Rates and overhead are steady-state figures,
measured from the first window on (imports and set-up excluded); ``wall_s`` and
``x_real_time`` include them. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from .artifact import ArtifactError, load_artifact
from .interpreter import backend_version, load_interpreter
from .streaming import StreamRuntime

__all__ = ["main", "rss_bytes", "synthetic_ecg", "synthetic_ppg"]


def rss_bytes() -> int | None:
    """Resident set size of this process (Linux ``/proc``), or None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def synthetic_ecg(seconds: float, rate: float, *, bpm: float = 72.0, seed: int = 0) -> np.ndarray:
    """Gaussian R waves at ``bpm`` with small jitter and noise (numpy only; not physiological)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.03 * rng.normal(size=t.size) + 0.1 * np.sin(2 * np.pi * 0.25 * t)
    beats = np.cumsum(60.0 / bpm + 0.03 * rng.normal(size=int(seconds * bpm / 60) + 2))
    width = int(0.06 * rate)
    kernel = 1.2 * np.exp(-0.5 * (np.arange(-width, width + 1) / (0.012 * rate)) ** 2)
    for b in (beats * rate).astype(np.int64):
        lo, hi = b - width, b + width + 1
        if lo >= 0 and hi <= t.size:
            x[lo:hi] += kernel
    return x


def synthetic_ppg(seconds: float, rate: float, *, bpm: float = 72.0, seed: int = 0) -> np.ndarray:
    """Systolic + dicrotic Gaussian pulses at ``bpm`` with jitter, wander and noise, about unit
    robust std like the training windows (numpy only; not physiological)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.05 * rng.normal(size=t.size) + 0.2 * np.sin(2 * np.pi * 0.2 * t)
    beats = np.cumsum(60.0 / bpm + 0.03 * rng.normal(size=int(seconds * bpm / 60) + 2))
    width = int(0.6 * rate)
    k = np.arange(width) / rate
    pulse = 2.0 * np.exp(-0.5 * ((k - 0.15) / 0.06) ** 2) + 0.8 * np.exp(-0.5 * ((k - 0.4) / 0.08) ** 2)
    for b in (beats * rate).astype(np.int64):
        if b + width <= t.size:
            x[b:b + width] += pulse
    return x


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wearable.runtime.bench", description=__doc__.split("\n")[0])
    ap.add_argument("artifact", metavar="ARTIFACT_DIR")
    ap.add_argument("--hours", type=float, default=24.0, help="signal hours to stream (default 24)")
    ap.add_argument("--sampling-rate", type=float, metavar="HZ", help="sensor rate (default: the model's; "
                    "another rate is resampled inside)")
    ap.add_argument("--chunk", type=int, default=None, metavar="N",
                    help="samples per push (default: one hop's worth at the sensor rate)")
    ap.add_argument("--backend", default="ai_edge_litert", help="TFLite backend (default ai_edge_litert)")
    ap.add_argument("--quiet", action="store_true", help="no progress line")
    args = ap.parse_args(argv)
    try:
        art = load_artifact(args.artifact)
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fs = args.sampling_rate or art.sampling_rate
    chunk = args.chunk or max(1, int(round(art.hop * fs / art.sampling_rate)))
    if args.hours <= 0 or chunk < 1:
        print("error: --hours and --chunk must be positive", file=sys.stderr)
        return 2
    try:
        interp = load_interpreter(art.model, backend=args.backend, num_threads=1)
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rt = StreamRuntime(art, sampling_rate=fs, resample=fs != art.sampling_rate, interpreter=interp)
    ppg = art.channel_kinds[:1] == ["ppg"]
    block = (synthetic_ppg if ppg else synthetic_ecg)(600.0, fs)
    block = block[: len(block) // chunk * chunk]
    total = int(args.hours * 3600 * fs)
    events = 0
    n = 0
    rss_start = None
    t0 = time.perf_counter()
    last = t0
    while n < total:
        for i in range(0, len(block), chunk):
            if n >= total:
                break
            piece = block[i:i + min(chunk, total - n)]
            events += len(rt.push(piece))
            n += len(piece)
            if rss_start is None and rt.windows:
                # steady state starts after the first window (imports, delegate set-up, allocations)
                rss_start, t_warm, i_warm, n_warm = rss_bytes(), time.perf_counter(), rt.interpreter_s, n
                d_warm, w_warm = rt.dsp_s, rt.windows
        now = time.perf_counter()
        if not args.quiet and now - last > 0.5:
            last = now
            print(f"\r{n / fs / 3600:6.2f} / {args.hours:g} h of signal, {rt.windows} windows, "
                  f"{n / fs / (now - t0):,.0f}x real time", end="", file=sys.stderr, flush=True)
    events += len(rt.flush())
    wall = time.perf_counter() - t0
    if not args.quiet:
        print(file=sys.stderr)
    rss_end = rss_bytes()
    if rss_start is None:
        print("error: the stream was shorter than one window; raise --hours", file=sys.stderr)
        return 2
    steady = time.perf_counter() - t_warm
    interp_s = rt.interpreter_s - i_warm
    dsp_s = rt.dsp_s - d_warm
    overhead = steady - interp_s
    per_window = 1000 / max(rt.windows - w_warm, 1)

    def pct(t: float) -> float | None:
        return round(100 * t / interp_s, 1) if interp_s else None

    result = {
        "model": art.manifest.get("model", {}).get("name", art.path.name),
        "backend": args.backend, "backend_version": backend_version(args.backend), "threads": 1,
        "signal": "synthetic_ppg" if ppg else "synthetic_ecg",
        "sensor_rate_hz": fs, "model_rate_hz": art.sampling_rate, "window": art.window, "hop": art.hop,
        "chunk": chunk, "signal_s": round(n / fs, 1), "windows": rt.windows, "events": events,
        "wall_s": round(wall, 3), "x_real_time": round(n / fs / wall, 1),
        "steady_wall_s": round(steady, 3), "steady_x_real_time": round((n - n_warm) / fs / steady, 1),
        "interpreter_s": round(interp_s, 3),
        "interpreter_ms_per_window": round(per_window * interp_s, 4),
        "python_overhead_s": round(overhead, 3),
        "python_overhead_ms_per_window": round(per_window * overhead, 4),
        "python_overhead_pct_of_interpreter": pct(overhead),
        "dsp_ms_per_window": round(per_window * dsp_s, 4),
        "dsp_pct_of_interpreter": pct(dsp_s),
        "bookkeeping_ms_per_window": round(per_window * (overhead - dsp_s), 4),
        "bookkeeping_pct_of_interpreter": pct(overhead - dsp_s),
        "rss_start_mib": round(rss_start / 2**20, 1) if rss_start else None,
        "rss_end_mib": round(rss_end / 2**20, 1) if rss_end else None,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
