"""Run a full-int8 model in the runtimes we ship to: ai-edge-litert (in process), TFLite Micro
(in process, reference kernels, arena measured) and tflite-runtime 2.14 (in its own numpy<2
Python, replaying ``golden.npz`` in a subprocess)."""

from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path

import numpy as np

from ._quiet import capture_output, quiet

__all__ = ["run_litert", "run_tflm", "replay_in_python", "tflm_available", "tflm_version", "TFLITE_RUNTIME_PYTHON_ENV"]

TFLITE_RUNTIME_PYTHON_ENV = "WEARABLE_TFLITE_RUNTIME_PYTHON"
_ARENA = re.compile(r"Arena allocation total (\d+) bytes")


def run_litert(model: bytes, *inputs: np.ndarray, default_delegates: bool = False) -> list[np.ndarray]:
    """Outputs of ``model`` in ai-edge-litert for inputs shaped ``(n, *input_shape[1:])``;
    builtin kernels unless ``default_delegates`` (XNNPACK)."""
    from wearable.runtime import invoke, load_interpreter

    with quiet("ai-edge-litert"):
        interp = load_interpreter(model, backend="ai_edge_litert", num_threads=1, default_delegates=default_delegates)
        return invoke(interp, *inputs)


def tflm_available() -> bool:
    try:
        with quiet("tflite-micro import"):
            from tflite_micro.python.tflite_micro import runtime  # noqa: F401
    except ImportError:
        return False
    return True


def run_tflm(model: bytes, *inputs: np.ndarray, n_outputs: int = 1) -> tuple[list[np.ndarray], int]:
    """TFLite Micro outputs for inputs shaped ``(n, *input_shape[1:])``, and the arena bytes used.

    The tflite-micro Python build has no ``arena_used_bytes()``; ``print_allocations()``
    writes "Arena allocation total N bytes" from C++, which we read back from the captured
    file descriptors.
    """
    from tflite_micro.python.tflite_micro import runtime

    try:
        with capture_output() as log_text:
            # The arena given is an upper bound; the recording allocator reports what was used.
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
    stacked = [np.concatenate([row[k] for row in outputs], axis=0) for k in range(n_outputs)]
    return stacked, int(match.group(1))


def replay_in_python(python: str | os.PathLike, model_path: Path, golden_path: Path, *,
                     backend: str = "tflite_runtime", default_delegates: bool = False, timeout: float = 300) -> dict:
    """Replay ``golden_path`` through ``model_path`` with ``wearable.runtime`` in another Python.

    That Python needs numpy and the backend only; this checkout of ``wearable`` is put on its
    ``PYTHONPATH``. Returns the JSON dict of ``python -m wearable.runtime.golden``; raises
    ``RuntimeError`` when the subprocess fails without one.
    """
    from wearable.runtime.subproc import run_json_module

    args = [os.fspath(model_path), os.fspath(golden_path), "--backend", backend,
            *(["--default-delegates"] if default_delegates else [])]
    result, _, problem = run_json_module(python, "wearable.runtime.golden", args, timeout=timeout)
    if result is None:
        raise RuntimeError(f"{python} -m wearable.runtime.golden failed ({problem})")
    if "error" in result:
        raise RuntimeError(f"{backend} in {python}: {result['error']}")
    return result


def tflm_version() -> str | None:
    try:
        return metadata.version("tflite-micro")
    except metadata.PackageNotFoundError:
        return None

