"""Exported artifacts in a Raspberry Pi-like environment: numpy<2 + tflite-runtime 2.14 only.

Point ``WEARABLE_ARTIFACTS_DIR`` at an export (``artifacts/`` or one ``artifacts/<model>/``)::

    WEARABLE_ARTIFACTS_DIR=artifacts PYTHONPATH=. python -m pytest tests/pi -q -p no:cacheprovider

Must not import torch, scipy or ``wearable.models``: only ``wearable.runtime``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wearable.runtime import available_backends, invoke, load_golden, load_interpreter, quant_params

_ROOT = os.environ.get("WEARABLE_ARTIFACTS_DIR")


def _artifact_dirs() -> list[Path]:
    if not _ROOT:
        return []
    root = Path(_ROOT)
    if (root / "manifest.json").is_file():
        return [root]
    return sorted(p.parent for p in root.glob("*/manifest.json"))


_DIRS = _artifact_dirs()
pytestmark = pytest.mark.skipif(not _ROOT, reason="WEARABLE_ARTIFACTS_DIR is not set")


def _backend() -> str:
    found = available_backends()
    if not found:
        pytest.skip("no TFLite runtime installed")
    return "tflite_runtime" if "tflite_runtime" in found else found[0]


def test_artifacts_found():
    assert _DIRS, f"no */manifest.json under {_ROOT}"


def test_runtime_imports_no_training_stack():
    # In a fresh interpreter: other test modules of a full run may have imported torch.
    code = ("import sys, wearable.runtime; "
            "print(','.join(m for m in ('torch', 'scipy', 'wearable.models', 'tensorflow') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                        os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "", f"wearable.runtime imported {out.stdout.strip()}"


@pytest.mark.parametrize("art", _DIRS, ids=lambda p: p.name)
def test_manifest_hashes(art: Path):
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["schema_version"] == 1
    assert {"model.onnx", "model_int8.tflite", "golden.npz"} <= set(manifest["files"])
    for name, entry in manifest["files"].items():
        data = (art / name).read_bytes()
        assert len(data) == entry["bytes"], name
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name


@pytest.mark.parametrize("art", _DIRS, ids=lambda p: p.name)
def test_io_matches_manifest(art: Path):
    manifest = json.loads((art / "manifest.json").read_text())
    interp = load_interpreter(art / "model_int8.tflite", backend=_backend())
    for kind, details in (("inputs", interp.get_input_details()), ("outputs", interp.get_output_details())):
        assert len(details) == len(manifest[kind])
        for d, m in zip(details, manifest[kind]):
            assert [int(s) for s in d["shape"]] == m["shape"]
            assert np.dtype(d["dtype"]).name == m["dtype"] == "int8"
            assert quant_params(d) == (m["scale"], m["zero_point"])


@pytest.mark.parametrize("art", _DIRS, ids=lambda p: p.name)
def test_golden_replay_matches_what_the_export_measured(art: Path):
    """Bit-exact for the runtime that made the golden outputs (ai-edge-litert's builtin kernels);
    tflite-runtime 2.14's kernels may round a few elements differently on deep graphs, by at most
    the difference the export measured in this runtime and recorded in the manifest."""
    backend = _backend()
    measured = json.loads((art / "manifest.json").read_text())["verified_runtimes"].get(backend) or {}
    tolerance = 0 if backend == "ai_edge_litert" else int(measured.get("max_abs_diff", 0))
    inputs, expected = load_golden(art / "golden.npz")
    interp = load_interpreter(art / "model_int8.tflite", backend=backend, reference_kernels=True)
    assert interp.wearable_backend == backend
    got = invoke(interp, *inputs)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype == np.int8
        assert int(np.max(np.abs(g.astype(np.int32) - e))) <= tolerance
