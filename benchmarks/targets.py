"""Target profiles: the wearable MCUs, the NPU system and the Raspberry Pis we benchmark for.

The shipped profiles are ``benchmarks/targets.json`` (figures with their sources). Users add
their own with a JSON file of the same shape (``{"targets": [...], "cores": {...}}``, cores
optional) passed to ``load_targets(extra=...)`` or ``python -m benchmarks.run --targets FILE``;
a user target with a shipped name replaces it.

>>> targets = load_targets()
>>> targets["nrf52840"].clock_mhz
64.0
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

__all__ = ["Target", "TargetError", "KINDS", "REQUIRED", "load_targets", "runtime_allowance", "TARGETS_FILE"]

TARGETS_FILE = Path(__file__).with_name("targets.json")
KINDS = ("mcu", "npu", "host")
# Fields every target needs; MCU and NPU targets also need "core".
REQUIRED = ("name", "kind", "description", "clock_mhz", "sram_bytes", "flash_bytes", "active_power_mw", "sources")


class TargetError(ValueError):
    """A target file is missing, unreadable or has a bad or missing field."""


@dataclass(frozen=True)
class Target:
    """One device. ``cycles_per_mac`` (per kernel kind) and ``cycles_per_op`` are set for MCU/NPU
    targets, from their core's coefficients; ``device_model`` is the ``/proc/device-tree/model``
    prefix a host target is recognised by."""

    name: str
    kind: str
    description: str
    clock_mhz: float
    sram_bytes: int
    flash_bytes: int
    active_power_mw: float
    sources: tuple[str, ...]
    core: str | None = None
    cycles_per_mac: dict = field(default_factory=dict)
    cycles_per_op: float = 0.0
    core_source: str = ""
    device_model: str | None = None
    vela: dict | None = None


def load_targets(extra: str | PathLike | None = None) -> dict[str, Target]:
    """Shipped targets plus those of ``extra`` (a JSON file), by name, in file order."""
    base = _read(TARGETS_FILE)
    cores = dict(base.get("cores", {}))
    raw = list(base["targets"])
    if extra is not None:
        user = _read(Path(extra))
        if not isinstance(user.get("targets"), list):
            raise TargetError(f"{extra}: needs a \"targets\" list")
        cores.update(user.get("cores", {}))
        names = {t.get("name") for t in user["targets"] if isinstance(t, dict)}
        raw = [t for t in raw if t["name"] not in names] + user["targets"]
        where = str(extra)
    else:
        where = str(TARGETS_FILE)
    resolved = {name: _resolve_core(name, cores) for name in cores}
    out: dict[str, Target] = {}
    for i, t in enumerate(raw):
        target = _target(t, resolved, f"{where}: target {i + 1}")
        out[target.name] = target
    return out


def runtime_allowance() -> dict:
    """The stated runtime code (flash) and RAM allowance added to every MCU figure."""
    return dict(_read(TARGETS_FILE)["runtime_allowance"])


def _read(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise TargetError(f"target file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"cannot read target file {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise TargetError(f"target file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise TargetError(f"target file {path} must hold a JSON object")
    return data


def _resolve_core(name: str, cores: dict, seen: tuple = ()) -> dict:
    """Absolute coefficients of a core; ``relative_to`` + ``factor`` scales another core's."""
    if name in seen:
        raise TargetError(f"core {name!r}: relative_to forms a loop")
    core = cores[name]
    if "relative_to" in core:
        parent_name = core["relative_to"]
        if parent_name not in cores:
            raise TargetError(f"core {name!r}: relative_to names unknown core {parent_name!r}")
        parent = _resolve_core(parent_name, cores, (*seen, name))
        f = float(core.get("factor", 1.0))
        return {"cycles_per_mac": {k: v * f for k, v in parent["cycles_per_mac"].items()},
                "cycles_per_op": parent["cycles_per_op"],
                "source": f"{core.get('source', '')} (x{f:g} of {parent_name})".strip()}
    for key in ("cycles_per_mac", "cycles_per_op"):
        if key not in core:
            raise TargetError(f"core {name!r} is missing field {key!r}")
    per_mac = {k: float(v) for k, v in core["cycles_per_mac"].items()}
    source = core.get("source", "")
    if core.get("scale") == "calibrated":
        # The file holds relative weights; the absolute scale comes from a published measurement.
        from .latency import calibrated_scale

        scale = calibrated_scale(per_mac, float(core["cycles_per_op"]))
        per_mac = {k: v * scale for k, v in per_mac.items()}
        source = f"{source} (scale {scale:.3f} cycles per weighted MAC)"
    return {"cycles_per_mac": per_mac, "cycles_per_op": float(core["cycles_per_op"]), "source": source}


def _target(t: object, cores: dict, where: str) -> Target:
    if not isinstance(t, dict):
        raise TargetError(f"{where} must be a JSON object")
    label = f"{where} ({t['name']})" if isinstance(t.get("name"), str) else where
    for key in REQUIRED:
        if key not in t:
            raise TargetError(f"{label} is missing field {key!r}")
    if t["kind"] not in KINDS:
        raise TargetError(f"{label}: kind {t['kind']!r} is not one of {', '.join(KINDS)}")
    for key in ("clock_mhz", "sram_bytes", "flash_bytes", "active_power_mw"):
        if not isinstance(t[key], (int, float)) or isinstance(t[key], bool) or t[key] < 0:
            raise TargetError(f"{label}: field {key!r} must be a non-negative number")
    if t["clock_mhz"] <= 0:
        raise TargetError(f"{label}: field 'clock_mhz' must be positive")
    sources = t["sources"]
    if isinstance(sources, str):
        sources = [sources]
    if not sources or not all(isinstance(s, str) and s.strip() for s in sources):
        raise TargetError(f"{label}: field 'sources' must name at least one source")
    coeffs: dict = {}
    if t["kind"] in ("mcu", "npu"):
        if "core" not in t:
            raise TargetError(f"{label} is missing field 'core'")
        if t["core"] not in cores:
            raise TargetError(f"{label}: unknown core {t['core']!r}; known: {', '.join(sorted(cores))}")
        coeffs = cores[t["core"]]
    return Target(
        name=str(t["name"]), kind=t["kind"], description=str(t["description"]), clock_mhz=float(t["clock_mhz"]),
        sram_bytes=int(t["sram_bytes"]), flash_bytes=int(t["flash_bytes"]),
        active_power_mw=float(t["active_power_mw"]), sources=tuple(sources), core=t.get("core"),
        cycles_per_mac=dict(coeffs.get("cycles_per_mac", {})), cycles_per_op=float(coeffs.get("cycles_per_op", 0.0)),
        core_source=coeffs.get("source", ""), device_model=t.get("device_model"), vela=t.get("vela"),
    )
