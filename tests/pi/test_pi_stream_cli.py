"""python -m wearable.stream on an exported artifact, in the numpy<2 + tflite-runtime env (CSV input).

Needs ``WEARABLE_ARTIFACTS_DIR``; skipped without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

_ROOT = os.environ.get("WEARABLE_ARTIFACTS_DIR")
pytestmark = pytest.mark.skipif(not _ROOT, reason="WEARABLE_ARTIFACTS_DIR is not set")
REPO = Path(__file__).resolve().parents[2]


def _artifact(classifier: bool = False) -> Path:
    """The first artifact under $WEARABLE_ARTIFACTS_DIR (with ``classifier``: the first whose output
    is one probability vector per window, skipping the test when there is none)."""
    root = Path(_ROOT)
    found = [root] if (root / "manifest.json").is_file() else sorted(p.parent for p in root.glob("*/manifest.json"))
    if classifier:
        found = [p for p in found if _is_classifier(json.loads((p / "manifest.json").read_text()))]
    if not found:
        pytest.skip("no (classification) artifact under $WEARABLE_ARTIFACTS_DIR")
    return found[0]


def _is_classifier(manifest: dict) -> bool:
    shape = manifest["outputs"][0]["shape"]
    return len(shape) == 2 and shape[1] > 1


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "wearable.stream", *args], capture_output=True, text=True, env=env)


def test_csv_at_another_rate_streams_to_jsonl(tmp_path):
    rate = 250.0
    t = np.arange(int(45 * rate)) / rate
    x = 0.05 * np.sin(2 * np.pi * 0.3 * t)
    for r in np.arange(0.4, 45, 0.8):
        x += 1.2 * np.exp(-0.5 * ((t - r) / 0.015) ** 2)
    rows = [f"{v:.5f}" for v in x]
    rows[2500:2550] = ["nan"] * 50  # a sensor hiccup: 0.2 s of NaN
    (tmp_path / "rec.csv").write_text("mv\n" + "\n".join(rows))
    out = tmp_path / "ev.jsonl"
    res = _cli(str(_artifact(classifier=True)), "--record", str(tmp_path / "rec.csv"), "--sampling-rate", "250",
               "--out", str(out), "--class-events", "--quiet", "--chunk", "100")
    assert res.returncode == 0, res.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert {"type": "artifact", "kind": "nonfinite", "start": 10.0, "end": 10.2} in events
    assert any(e["type"] == "class" for e in events) and any(e["type"] == "rhythm" for e in events)
    assert "45.0 s at 250 Hz" in res.stderr


def test_tampered_artifact_exits_2(tmp_path):
    art = tmp_path / "art"
    art.mkdir()
    src = _artifact()
    (art / "manifest.json").write_bytes((src / "manifest.json").read_bytes())
    data = bytearray((src / "model_int8.tflite").read_bytes())
    data[-1] ^= 1
    (art / "model_int8.tflite").write_bytes(bytes(data))
    (tmp_path / "r.csv").write_text("0\n" * 10)
    res = _cli(str(art), "--record", str(tmp_path / "r.csv"), "--sampling-rate", "100")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "sha256" in lines[0]
