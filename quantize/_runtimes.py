"""Run a full-int8 model in the runtimes we ship to: ai-edge-litert (in process), TFLite Micro
(in process, reference kernels, arena measured) and tflite-runtime 2.14 (in its own numpy<2
Python, replaying ``golden.npz`` in a subprocess)."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import numpy as np

from ._quiet import quiet

__all__ = ["run_litert", "run_tflm", "replay_in_python", "tflm_available", "tflm_version", "TFLITE_RUNTIME_PYTHON_ENV"]

TFLITE_RUNTIME_PYTHON_ENV = "WEARABLE_TFLITE_RUNTIME_PYTHON"


def run_litert(model: bytes, *inputs: np.ndarray, default_delegates: bool = False,
               reference_kernels: bool = False) -> list[np.ndarray]:
    """Outputs of ``model`` in ai-edge-litert for inputs shaped ``(n, *input_shape[1:])``;
    optimized builtin kernels, the reference kernels (``reference_kernels``, what TFLite Micro
    implements) or the default delegate (``default_delegates``, XNNPACK)."""
    from wearable.runtime import invoke, load_interpreter

    with quiet("ai-edge-litert"):
        interp = load_interpreter(model, backend="ai_edge_litert", num_threads=1, default_delegates=default_delegates,
                                  reference_kernels=reference_kernels)
        return invoke(interp, *inputs)


def tflm_available() -> bool:
    try:
        with quiet("tflite-micro import"):
            from tflite_micro.python.tflite_micro import runtime  # noqa: F401
    except ImportError:
        return False
    return True


def run_tflm(model: bytes, *inputs: np.ndarray, n_outputs: int = 1, timeout: float = 600) -> tuple[list[np.ndarray], int]:
    """TFLite Micro outputs for inputs shaped ``(n, *input_shape[1:])``, and the arena bytes used.

    Runs in a child process (``quantize._tflm_worker``): the interpreter aborts the process on
    some graphs instead of raising. ``RuntimeError`` says why it failed, with what the
    interpreter printed (it names a missing op) or the signal that killed it.
    """
    import json
    import signal
    import subprocess
    import sys
    import tempfile

    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    with tempfile.TemporaryDirectory(prefix="tflm-") as tmp:
        work = Path(tmp)
        (work / "model.tflite").write_bytes(model)
        np.savez(work / "inputs.npz", **{f"input_{k}": np.ascontiguousarray(x) for k, x in enumerate(inputs)})
        proc = subprocess.run([sys.executable, "-m", "quantize._tflm_worker", tmp, str(n_outputs)], env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)
        result_path = work / "result.json"
        if proc.returncode != 0 or not result_path.is_file():
            said = "; ".join(ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip())[-400:]
            how = (f"killed by {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
                   else f"exit status {proc.returncode}")
            raise RuntimeError(f"the interpreter crashed ({how}){': ' + said if said else ' without a message'}")
        result = json.loads(result_path.read_text())
        if "error" in result:
            raise RuntimeError(result["error"])
        with np.load(work / "outputs.npz") as z:
            outputs = [z[f"output_{k}"] for k in range(n_outputs)]
    return outputs, int(result["arena_bytes"])


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

