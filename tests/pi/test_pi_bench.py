"""``python -m benchmarks.run`` on exported artifacts in the Raspberry Pi-like environment.

Needs numpy and one TFLite runtime only; gets artifacts from ``WEARABLE_ARTIFACTS_DIR`` (skips
when it is unset), like ``test_pi_runtime.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

_ROOT = os.environ.get("WEARABLE_ARTIFACTS_DIR")
_REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not _ROOT, reason="WEARABLE_ARTIFACTS_DIR is not set")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(_REPO), os.environ.get("PYTHONPATH")) if p)}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", _ROOT, "--out", str(out), "-q", "--no-vela"],
                          capture_output=True, text=True, env=_env(), timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "measured here:" in proc.stdout and "estimated" in proc.stdout
    return json.loads((out / "report.json").read_text())


def test_benchmark_imports_no_training_stack():
    code = ("import sys, benchmarks.run; "
            "print(','.join(m for m in ('torch', 'scipy', 'wearable.models', 'tensorflow', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=True)
    assert out.stdout.strip() == "", f"benchmarks.run imported {out.stdout.strip()}"


def test_every_model_has_macs_and_estimates(report):
    assert report["models"]
    for m in report["models"]:
        assert m["macs"] == sum(v["macs"] for v in m["macs_by_type"].values()) > 0
        assert m["arena_bytes"] and m["arena_bytes"] > 0
        rows = {r["target"]: r for r in m["targets"]}
        for name in ("nrf52840", "stm32u5", "esp32-s3"):
            assert rows[name]["measured"] is False and rows[name]["latency_ms"] > 0


def test_this_machine_is_measured(report):
    for m in report["models"]:
        ok = {k: v for k, v in m["host"].items() if "error" not in v}
        assert ok, m["host"]
        for v in ok.values():
            assert v["n"] >= 200 and v["p50_ms"] <= v["p90_ms"] <= v["p99_ms"]
        host = next(r for r in m["targets"] if r["target"] == "host")
        assert host["measured"] is True
