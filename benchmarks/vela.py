"""Ethos-U estimate from Arm's ``ethos-u-vela`` compiler (cycles, SRAM, CPU-fallback operators).

Vela is run as ``python -m ethosu.vela`` in this Python; where it is not installed (a Raspberry
Pi, or an environment without it) ``vela_available()`` is False and the report says so.
"""

from __future__ import annotations

import csv
import importlib.util
import re
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["vela_available", "vela_version", "run_vela"]

_CPU_OPS = re.compile(r"CPU operators = (\d+)")
_NPU_OPS = re.compile(r"NPU operators = (\d+)")


def vela_available() -> bool:
    return importlib.util.find_spec("ethosu") is not None


def vela_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("ethos-u-vela")
    except metadata.PackageNotFoundError:
        return None


def run_vela(model: Path, *, accelerator_config: str = "ethos-u55-128",
             system_config: str = "Ethos_U55_High_End_Embedded", memory_mode: str = "Shared_Sram",
             timeout: float = 300) -> dict:
    """Compile ``model`` with vela's performance estimator; figures from its summary CSV."""
    with tempfile.TemporaryDirectory(prefix="vela-") as out:
        cmd = [sys.executable, "-m", "ethosu.vela", str(model), "--accelerator-config", accelerator_config,
               "--config", "Arm/vela.ini", "--system-config", system_config, "--memory-mode", memory_mode,
               "--output-dir", out]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"error": f"vela did not run: {exc}"}
        summaries = sorted(Path(out).glob("*_summary_*.csv"))
        if proc.returncode != 0 or not summaries:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            return {"error": f"vela failed (exit {proc.returncode}): {tail[0]}"}
        with summaries[0].open(newline="") as f:
            row = next(csv.DictReader(f))
    cpu = _CPU_OPS.search(proc.stdout)
    npu = _NPU_OPS.search(proc.stdout)
    return {
        "version": vela_version(),
        "accelerator_config": accelerator_config,
        "system_config": system_config,
        "memory_mode": memory_mode,
        "npu_clock_mhz": round(float(row["core_clock"]) / 1e6, 3),
        "cycles_total": int(float(row["cycles_total"])),
        "cycles_npu": int(float(row["cycles_npu"])),
        "latency_ms": round(float(row["inference_time"]) * 1e3, 4),
        "sram_bytes": int(round(float(row["sram_memory_used"]) * 1024)),
        "flash_bytes": int(round(float(row["off_chip_flash_memory_used"]) * 1024
                                 + float(row["on_chip_flash_memory_used"]) * 1024)),
        "nn_macs": int(float(row["nn_macs"])),
        "cpu_operators": int(cpu.group(1)) if cpu else None,
        "npu_operators": int(npu.group(1)) if npu else None,
    }
