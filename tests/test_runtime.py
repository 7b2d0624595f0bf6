"""wearable.runtime: backend selection, int8 helpers, golden files (fast; no conversion)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wearable.runtime import (
    BACKENDS,
    RuntimeUnavailableError,
    available_backends,
    dequantize,
    load_golden,
    load_interpreter,
    quant_params,
    quantize,
)
from wearable.runtime.golden import main as golden_main

ROOT = Path(__file__).resolve().parents[1]
DETAIL = {"name": "x", "dtype": np.int8, "quantization": (0.5, 3),
          "quantization_parameters": {"scales": np.array([0.5], np.float32), "zero_points": np.array([3], np.int32)}}


def test_backends_in_preference_order():
    assert list(BACKENDS) == ["ai_edge_litert", "tflite_runtime", "tensorflow"]
    found = available_backends()
    assert found == [b for b in BACKENDS if b in found]


def test_unknown_backend_lists_accepted():
    with pytest.raises(ValueError, match="ai_edge_litert, tflite_runtime, tensorflow"):
        load_interpreter(b"", backend="onnx")


def test_missing_backend_is_a_clear_error():
    missing = [b for b in BACKENDS if b not in available_backends()]
    if int(np.__version__.split(".")[0]) >= 2:
        with pytest.raises(RuntimeUnavailableError, match="numpy<2"):
            load_interpreter(b"", backend="tflite_runtime")
        missing = [b for b in missing if b != "tflite_runtime"]
    if not missing:
        pytest.skip("every backend is installed")
    with pytest.raises(RuntimeUnavailableError, match="not installed"):
        load_interpreter(b"", backend=missing[0])


def test_quantize_rounds_half_away_from_zero_and_clips():
    x = np.array([-1.25, -0.25, 0.25, 0.75, 1000.0, -1000.0])
    q = quantize(x, DETAIL)
    assert q.dtype == np.int8
    # x / 0.5 = -2.5, -0.5, 0.5, 1.5 -> -3, -1, 1, 2; + zero point 3
    np.testing.assert_array_equal(q, [0, 2, 4, 5, 127, -128])
    np.testing.assert_allclose(dequantize(q[:4], DETAIL), [-1.5, -0.5, 0.5, 1.0])
    assert dequantize(q, DETAIL).dtype == np.float32


def test_quant_params_from_either_field():
    assert quant_params(DETAIL) == (0.5, 3)
    assert quant_params({"name": "x", "quantization": (0.25, -1)}) == (0.25, -1)
    with pytest.raises(ValueError, match="not per-tensor quantized"):
        quant_params({"name": "f", "quantization": (0.0, 0),
                      "quantization_parameters": {"scales": np.array([]), "zero_points": np.array([])}})


def test_runtime_import_stays_light():
    code = ("import sys, wearable.runtime; print(','.join(m for m in "
            "('torch', 'scipy', 'wearable.models', 'tensorflow', 'ai_edge_litert', 'tflite_runtime') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""


def test_golden_round_trip_and_errors(tmp_path, capsys):
    path = tmp_path / "golden.npz"
    np.savez(path, input_0=np.zeros((2, 1, 4), np.int8), output_0=np.ones((2, 3), np.int8))
    inputs, outputs = load_golden(path)
    assert [a.shape for a in inputs] == [(2, 1, 4)] and [a.shape for a in outputs] == [(2, 3)]
    np.savez(tmp_path / "bad.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a golden file"):
        load_golden(tmp_path / "bad.npz")
    assert golden_main([str(tmp_path / "missing.tflite"), str(path)]) == 1
    assert "error" in json.loads(capsys.readouterr().out)
