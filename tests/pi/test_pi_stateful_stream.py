"""A stateful streaming export (``python -m quantize.stream_export``) in the Raspberry Pi-like
environment (numpy<2, tflite-runtime 2.14, no torch): ``StatefulStream`` runs it chunk-invariantly,
and ``python -m benchmarks.run`` reports sliding-window vs streaming compute for it.

Needs ``WEARABLE_STREAM_DIR`` (the streaming export) and ``WEARABLE_ARTIFACTS_DIR`` (a folder
holding the window model's export, as for the other tests here); skipped without them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wearable.runtime import StatefulStream, available_backends, load_artifact

_STREAM = os.environ.get("WEARABLE_STREAM_DIR")
_ROOT = os.environ.get("WEARABLE_ARTIFACTS_DIR")
_REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not (_STREAM and _ROOT), reason="WEARABLE_STREAM_DIR / WEARABLE_ARTIFACTS_DIR not set")


def _backend() -> str:
    found = available_backends()
    if not found:
        pytest.skip("no TFLite runtime installed")
    return "tflite_runtime" if "tflite_runtime" in found else found[0]


def test_stateful_stream_chunk_invariant_here():
    stream = StatefulStream(_STREAM, backend=_backend())
    t = np.arange(40 * stream.block) / 100.0
    beats = np.arange(0.3, t[-1], 0.8)
    x = 0.05 * np.sin(2 * np.pi * 0.3 * t) + sum(1.2 * np.exp(-0.5 * ((t - r) / 0.015) ** 2) for r in beats)
    whole = stream.run(x)
    assert whole.shape[1] == x.size and np.all(np.isfinite(whole))
    for size in (1, 7, 64):
        stream.reset()
        pieces = [stream.push(x[i:i + size]) for i in range(0, x.size, size)]
        assert np.array_equal(np.concatenate(pieces, axis=1), whole), size


def test_benchmark_reports_streaming_compute_here(tmp_path):
    model = load_artifact(_STREAM).name
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(_REPO), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", _ROOT, _STREAM, "--target", "nrf52840",
                           "--no-measure", "--no-vela", "-q", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    (m,) = [m for m in report["models"] if m["model"] == model]
    rows = m["streaming"]["rows"]
    shipped = next(r for r in rows if r["shipped"])
    stream = next(r for r in rows if r["mode"] == "stream")
    assert shipped["x_sliding"] == 1.0 and stream["conv"] > 0
    assert f"| {model} | stateful stream |" in proc.stdout
