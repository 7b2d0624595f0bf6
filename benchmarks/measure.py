"""Measured host latency and peak memory of a ``.tflite`` model in each available runtime.

Each runtime runs in its own Python process (``python -m benchmarks.measure``), so its peak
resident memory (``ru_maxrss``) is its own and a crashing runtime cannot take the report down.
tflite-runtime 2.14 needs numpy < 2: in a numpy-2 environment it is measured through the
Python named by ``$WEARABLE_TFLITE_RUNTIME_PYTHON`` when that is set.

Timing: one thread, ``warmup`` invokes discarded, then ``invokes`` timed one by one with
``time.perf_counter_ns`` around ``invoke()`` only (input set once: the kernels do the same work
for any int8 input).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["RUNTIMES", "available_runtimes", "measure_runtime", "summarize_times"]

RUNTIMES = ("ai_edge_litert", "tflite_runtime", "tflite_micro")
_ARENA = re.compile(r"Arena allocation total (\d+) bytes")


def _numpy_major() -> int:
    return int(np.__version__.split(".")[0])


def available_runtimes() -> dict[str, str]:
    """``{runtime: python executable}`` for the runtimes this machine can measure."""
    found: dict[str, str] = {}
    if importlib.util.find_spec("ai_edge_litert") is not None:
        found["ai_edge_litert"] = sys.executable
    if importlib.util.find_spec("tflite_runtime") is not None and _numpy_major() < 2:
        found["tflite_runtime"] = sys.executable
    else:
        other = os.environ.get("WEARABLE_TFLITE_RUNTIME_PYTHON")
        if other and Path(other).is_file():
            found["tflite_runtime"] = other
    if importlib.util.find_spec("tflite_micro") is not None:
        found["tflite_micro"] = sys.executable
    return found


def summarize_times(times_ns: list[int]) -> dict:
    """p50/p90/p99/mean/min in milliseconds (linear-interpolated percentiles) and the count."""
    ms = np.asarray(times_ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"n": int(ms.size), "p50_ms": round(float(p50), 4), "p90_ms": round(float(p90), 4),
            "p99_ms": round(float(p99), 4), "mean_ms": round(float(ms.mean()), 4), "min_ms": round(float(ms.min()), 4)}


def measure_runtime(runtime: str, model: Path, x: Path | None, *, invokes: int = 200, warmup: int = 20,
                    python: str | None = None, timeout: float = 300) -> dict:
    """Run ``python -m benchmarks.measure`` for one runtime; the dict it printed, or ``{"error"}``."""
    from wearable.runtime.subproc import run_json_module

    args = [str(model), "--runtime", runtime, "--invokes", str(invokes), "--warmup", str(warmup),
            *(["--input", str(x)] if x else [])]
    result, output, problem = run_json_module(python or sys.executable, "benchmarks.measure", args, timeout=timeout)
    if result is None:
        return {"error": problem}
    arena = _ARENA.search(output)
    if arena:  # printed by TFLM's print_allocations() from C++, straight to our stdout
        result["arena_bytes"] = int(arena.group(1))
    return result


def _interpreter(runtime: str, model: bytes):
    if runtime == "tflite_micro":
        from tflite_micro.python.tflite_micro import runtime as tflm

        # An upper bound; print_allocations() reports what was actually used.
        return tflm.Interpreter.from_bytes(model, arena_size=max(10 * len(model), 4 << 20))
    from wearable.runtime import load_interpreter

    return load_interpreter(model, backend=runtime, num_threads=1, default_delegates=True)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.measure",
                                     description="Time one runtime on one model (used by benchmarks.run).")
    parser.add_argument("model", type=Path)
    parser.add_argument("--runtime", choices=RUNTIMES, required=True)
    parser.add_argument("--input", type=Path, help="golden.npz whose input_0[0] is fed (default: zeros)")
    parser.add_argument("--invokes", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    import resource

    try:
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        model = args.model.read_bytes()
        interp = _interpreter(args.runtime, model)
        if args.runtime == "tflite_micro":
            x = np.load(args.input)["input_0"][:1] if args.input else None
            if x is None:
                raise ValueError("tflite_micro needs --input")
            interp.set_input(np.ascontiguousarray(x), 0)
            run = interp.invoke
        else:
            d = interp.get_input_details()[0]
            x = np.load(args.input)["input_0"][:1] if args.input else np.zeros(d["shape"], d["dtype"])
            interp.set_tensor(d["index"], np.ascontiguousarray(x.reshape(d["shape"]).astype(d["dtype"])))
            run = interp.invoke
        for _ in range(args.warmup):
            run()
        times = []
        for _ in range(args.invokes):
            t0 = time.perf_counter_ns()
            run()
            times.append(time.perf_counter_ns() - t0)
        result = summarize_times(times)
        result["peak_rss_kb"] = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        result["python_rss_kb"] = int(rss_before)
        if args.runtime == "tflite_micro":
            sys.stdout.flush()
            interp.print_allocations()  # C++ prints "Arena allocation total N bytes"
    except Exception as exc:  # one JSON line either way: the parent parses it
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    sys.stdout.flush()
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
