"""TFLite Micro arena of many models in one child process: ``python -m benchmarks._compare_tflm DIR``.

``DIR`` holds ``<i>.tflite`` files; the worker runs one zero int8 window through each, in index
order, and writes ``<i>.json`` (``{"arena_bytes": N}`` or ``{"error": ...}``) after each. One
process for all models saves the interpreter start-up per model (seconds each on a shared
2-core machine). The interpreter aborts the process on some graphs instead of raising, so the
parent (``arenas``) records the model being run as crashed and starts a new worker after it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["arenas"]


def arenas(models: list[bytes], timeout: float = 600) -> list[tuple[int | None, str | None]]:
    """``(arena_bytes, None)`` or ``(None, why)`` for each flatbuffer, in order."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    results: list[tuple[int | None, str | None]] = [(None, "not run")] * len(models)
    with tempfile.TemporaryDirectory(prefix="tflm-compare-") as tmp:
        work = Path(tmp)
        for i, m in enumerate(models):
            (work / f"{i}.tflite").write_bytes(m)
        start = 0
        while start < len(models):
            proc = subprocess.run([sys.executable, "-m", "benchmarks._compare_tflm", tmp, str(start)], env=env,
                                  capture_output=True, text=True, timeout=timeout, check=False)
            done = start
            while done < len(models) and (work / f"{done}.json").is_file():
                got = json.loads((work / f"{done}.json").read_text())
                results[done] = (got.get("arena_bytes"), got.get("error"))
                done += 1
            if done < len(models) and proc.returncode != 0:  # crashed inside model `done`
                said = "; ".join(ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip())[-300:]
                how = (f"killed by {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
                       else f"exit status {proc.returncode}")
                results[done] = (None, f"TFLite Micro cannot run it: the interpreter crashed ({how})"
                                 + (f": {said}" if said else ""))
                done += 1
            elif done < len(models):
                raise RuntimeError(f"TFLite Micro worker stopped at model {done} without a result")
            start = done
    return results


def _main(argv: list[str]) -> int:
    from quantize._tflm_worker import run
    from benchmarks.tflite_graph import read_graph

    work, start = Path(argv[0]), int(argv[1])
    i = start
    while (work / f"{i}.tflite").is_file():
        model = (work / f"{i}.tflite").read_bytes()
        graph = read_graph(model)
        shape = tuple(max(int(d), 1) for d in graph.tensors[graph.inputs[0]].shape)
        try:
            _, arena = run(model, [np.zeros(shape, np.int8)], len(graph.outputs))
            result = {"arena_bytes": arena}
        except RuntimeError as exc:  # e.g. "Didn't find op for builtin opcode 'GELU'"
            result = {"error": f"TFLite Micro cannot run it: {exc}"[:300]}
        (work / f"{i}.json").write_text(json.dumps(result))
        i += 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
