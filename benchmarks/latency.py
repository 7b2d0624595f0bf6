"""MCU latency estimate from per-kind MAC counts, and its calibration on published measurements.

Model: ``cycles = Σ_kind cycles_per_mac[kind] × work[kind] + cycles_per_op × ops`` and
``ms = cycles / (clock_mhz × 1000)``, where ``work`` is MACs per kernel kind (elements moved for
``move``), from ``benchmarks.macs``. The Cortex-M4F coefficients in ``targets.json`` are
relative weights whose scale is fitted to one published measurement (``calibration.json``
"fit": MLPerf Tiny v0.5 keyword spotting on a 120 MHz Cortex-M4F) and checked on another it
was not fitted to ("check": the anomaly-detection autoencoder on the same board); the other
cores are stated multiples of it. These are estimates, and every report says so.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

__all__ = ["CALIBRATION_FILE", "calibrated_scale", "calibration_report", "estimate_cycles", "estimate_ms"]

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


@lru_cache(maxsize=1)
def _calibration() -> dict:
    return json.loads(CALIBRATION_FILE.read_text())


def estimate_cycles(work: dict[str, int], ops: int, cycles_per_mac: dict[str, float], cycles_per_op: float) -> float:
    """Cycles for one inference; a kind missing from ``cycles_per_mac`` costs 0 (and is unusual)."""
    return sum(cycles_per_mac.get(k, 0.0) * n for k, n in work.items()) + cycles_per_op * ops


def estimate_ms(work: dict[str, int], ops: int, cycles_per_mac: dict[str, float], cycles_per_op: float,
                clock_mhz: float) -> float:
    """Estimated milliseconds per inference at ``clock_mhz``."""
    return estimate_cycles(work, ops, cycles_per_mac, cycles_per_op) / (clock_mhz * 1e3)


def calibrated_scale(weights: dict[str, float], cycles_per_op: float) -> float:
    """Cycles per weighted MAC that makes the model reproduce the "fit" measurement exactly."""
    fit = _calibration()["fit"]
    measured_cycles = fit["measured_ms"] * fit["clock_mhz"] * 1e3
    weighted = estimate_cycles(fit["work"], 0, weights, 0.0)
    return (measured_cycles - cycles_per_op * fit["ops"]) / weighted


def calibration_report(cycles_per_mac: dict[str, float], cycles_per_op: float) -> list[dict]:
    """Estimate vs measurement for each calibration entry (error in percent of the measurement)."""
    rows = []
    for role in ("fit", "check"):
        entry = _calibration()[role]
        est = estimate_ms(entry["work"], entry["ops"], cycles_per_mac, cycles_per_op, entry["clock_mhz"])
        rows.append({"role": role, "name": entry["name"], "measured_ms": entry["measured_ms"],
                     "estimated_ms": round(est, 3),
                     "error_pct": round(100.0 * (est - entry["measured_ms"]) / entry["measured_ms"], 1),
                     "sources": entry["sources"]})
    return rows
