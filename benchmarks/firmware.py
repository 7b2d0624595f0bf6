"""Cortex-M4 object sizes of an artifact's generated firmware sources (``firmware_bridge``).

Optional: needs ``firmware/`` in the artifact (written by ``python -m quantize.export``), the
``firmware_bridge`` package importable (it needs jinja2, absent on a bare Raspberry Pi) and
``arm-none-eabi-gcc``. Otherwise the report says which of these was missing.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["firmware_sizes"]


def firmware_sizes(artifact_dir: Path) -> dict:
    """``{"files": {name: {text, data, bss}}, "total": {...}, "flags": [...]}`` or ``{"error": why}``."""
    firmware = Path(artifact_dir) / "firmware"
    if not firmware.is_dir():
        return {"error": "no firmware/ in the artifact (python -m firmware_bridge.generate writes it)"}
    try:
        from firmware_bridge import ToolchainMissing, cross_compile_sizes
    except ImportError as exc:
        return {"error": f"firmware_bridge not importable here ({exc.name or exc})"}
    try:
        return cross_compile_sizes(firmware)
    except ToolchainMissing as exc:
        return {"error": str(exc)}
