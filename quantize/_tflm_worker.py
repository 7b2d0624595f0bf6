"""Run a model in the TFLite Micro interpreter in a child process: ``python -m quantize._tflm_worker DIR N``.

Why a process: for some graphs the tflite-micro Python build aborts (SIGABRT) inside
``Interpreter.from_bytes`` instead of raising, which would kill the export with no message.
``DIR`` holds ``model.tflite`` and ``inputs.npz`` (``input_0``, ...); the worker writes
``outputs.npz`` (``output_0``, ...) and ``result.json`` (``{"arena_bytes": N}``), or
``result.json`` with ``{"error": ...}`` when the interpreter raised.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

from ._quiet import capture_output

_ARENA = re.compile(r"Arena allocation total (\d+) bytes")


def run(model: bytes, inputs: list[np.ndarray], n_outputs: int) -> tuple[list[np.ndarray], int]:
    """Outputs for inputs shaped ``(n, *input_shape[1:])`` and the arena bytes the recording allocator saw."""
    from tflite_micro.python.tflite_micro import runtime

    try:
        with capture_output() as log_text:
            # The arena given is an upper bound; print_allocations() reports what was used.
            interp = runtime.Interpreter.from_bytes(model, arena_size=max(10 * len(model), 4 << 20))
            outputs: list[list[np.ndarray]] = []
            for i in range(inputs[0].shape[0]):
                for k, x in enumerate(inputs):
                    interp.set_input(np.ascontiguousarray(x[i:i + 1]), k)
                interp.invoke()
                outputs.append([np.array(interp.get_output(k)) for k in range(n_outputs)])
    except Exception as exc:  # the C++ side says why (e.g. "Didn't find op for builtin opcode 'GELU'")
        reason = "; ".join(ln.strip() for ln in log_text.text.splitlines() if ln.strip())
        raise RuntimeError(f"{exc}{': ' + reason if reason else ''}") from None
    with capture_output() as out:
        interp.print_allocations()
    match = _ARENA.search(out.text)
    if match is None:
        raise RuntimeError(f"could not read the TFLM arena size from print_allocations(): {out.text[:200]!r}")
    return [np.concatenate([row[k] for row in outputs], axis=0) for k in range(n_outputs)], int(match.group(1))


def main(argv: list[str]) -> int:
    work, n_outputs = Path(argv[0]), int(argv[1])
    with np.load(work / "inputs.npz") as z:
        inputs = [z[f"input_{k}"] for k in range(len(z.files))]
    try:
        outputs, arena = run((work / "model.tflite").read_bytes(), inputs, n_outputs)
    except RuntimeError as exc:
        (work / "result.json").write_text(json.dumps({"error": str(exc)}))
        return 0
    np.savez(work / "outputs.npz", **{f"output_{k}": y for k, y in enumerate(outputs)})
    (work / "result.json").write_text(json.dumps({"arena_bytes": arena}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
