"""Golden vectors: int8 inputs and the int8 outputs a reference runtime gave for them.

``golden.npz`` (written by the export stage next to ``model_int8.tflite``) holds arrays
``input_0 … input_{k-1}`` shaped ``(n, *input_shape[1:])`` and ``output_0 …`` shaped
``(n, *output_shape[1:])``. ``replay_golden`` runs the inputs through any backend of
``wearable.runtime`` and compares; ``python -m wearable.runtime.golden MODEL GOLDEN`` does the
same from a shell and prints one JSON line (used by the export stage to check
tflite-runtime 2.14 in its own numpy<2 environment).
"""

from __future__ import annotations

import argparse
import json
import sys
from os import PathLike

import numpy as np

from .interpreter import backend_version, invoke, load_interpreter

__all__ = ["load_golden", "replay_golden"]


def load_golden(path: str | PathLike) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(inputs, outputs)`` lists from a golden ``.npz``."""
    with np.load(path, allow_pickle=False) as z:
        inputs = [z[f"input_{i}"] for i in range(sum(k.startswith("input_") for k in z.files))]
        outputs = [z[f"output_{i}"] for i in range(sum(k.startswith("output_") for k in z.files))]
    if not inputs or not outputs:
        raise ValueError(f"{path}: not a golden file (no input_0/output_0 arrays)")
    return inputs, outputs


def replay_golden(model: str | PathLike | bytes, golden: str | PathLike, *, backend: str | None = None,
                  default_delegates: bool = False) -> dict:
    """Run the golden inputs through ``model`` and compare with the golden outputs.

    Golden outputs come from the reference int8 kernels (what TFLite Micro runs), so by
    default the replay uses them too and the outputs must be identical; with
    ``default_delegates=True`` the runtime's usual kernels and delegate (XNNPACK) run, and a
    few steps of rounding difference are possible.
    Returns ``{"backend", "version", "default_delegates", "windows", "identical",
    "max_abs_diff"}``; ``max_abs_diff`` is in integer steps over all outputs.
    """
    inputs, expected = load_golden(golden)
    interp = load_interpreter(model, backend=backend, default_delegates=default_delegates,
                              reference_kernels=not default_delegates)
    got = invoke(interp, *inputs)
    if len(got) != len(expected):
        raise ValueError(f"model has {len(got)} outputs, golden file {len(expected)}")
    diff = 0
    for g, e in zip(got, expected):
        if g.shape != e.shape:
            raise ValueError(f"output shape {g.shape} differs from golden {e.shape}")
        if g.size:
            diff = max(diff, int(np.max(np.abs(g.astype(np.int64) - e.astype(np.int64)))))
    name = getattr(interp, "wearable_backend", backend)
    return {"backend": name, "version": backend_version(name) if name else None,
            "default_delegates": default_delegates, "windows": int(inputs[0].shape[0]),
            "identical": diff == 0, "max_abs_diff": diff}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wearable.runtime.golden", description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("golden")
    parser.add_argument("--backend", default=None)
    parser.add_argument("--default-delegates", action="store_true",
                        help="let the runtime apply its default delegate (XNNPACK)")
    args = parser.parse_args(argv)
    try:
        result = replay_golden(args.model, args.golden, backend=args.backend, default_delegates=args.default_delegates)
    except Exception as exc:  # one JSON line either way: the caller parses it
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0 if result["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
