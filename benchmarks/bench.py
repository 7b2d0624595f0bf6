"""Per model × target figures: flash, RAM, MACs, latency (estimated or measured), fit verdict.

Everything in ``static_figures`` and the estimated columns of ``target_rows`` is a pure function
of the artifact bytes and the target files, so two runs give identical estimates; measured
figures come from ``benchmarks.measure`` and say so in their ``source``.
"""

from __future__ import annotations

from pathlib import Path

from .artifacts import Artifact
from .latency import estimate_ms
from .macs import count_macs, macs_by_kind, macs_by_type
from .targets import Target, runtime_allowance
from .tflite_graph import read_graph

__all__ = ["static_figures", "target_rows", "host_device_model", "HOST_TARGET"]

HOST_TARGET = "host"


def host_device_model() -> str:
    """``/proc/device-tree/model`` of this machine (e.g. "Raspberry Pi 4 Model B Rev 1.4"), or ""."""
    try:
        return Path("/proc/device-tree/model").read_bytes().rstrip(b"\0").decode("utf-8", "replace")
    except OSError:
        return ""


def static_figures(art: Artifact) -> dict:
    """Figures that need no runtime: MACs per op type, model bytes, RAM parts (bytes)."""
    graph = read_graph(art.model)
    counts = count_macs(graph)
    m = art.manifest
    channels = int(m.get("in_channels") or m["inputs"][0]["shape"][1])
    pre = (m.get("data") or {}).get("preprocessing") or {}
    sections = sum(len(ch.get("sos", [])) for ch in pre.get("channels", []))
    arena = (m.get("tflm") or {}).get("arena_bytes")
    agreement = ((m.get("checks") or {}).get("agreement") or [{}])[0]
    # The export's task metric (macro F1 %, per-sample F1 % or MAE) on held-out data; older
    # manifests only have the int8 accuracy.
    task_metric = (m.get("checks") or {}).get("task_metric") or {}
    return {
        "model": art.name,
        "version": str(m.get("model", {}).get("version", "")),
        "sha256": m["files"]["model_int8.tflite"]["sha256"],
        "model_bytes": len(art.model),
        "constant_bytes": graph.constant_bytes,
        "ops": len(graph.operators),
        "macs": sum(c.macs for c in counts),
        "macs_by_type": dict(macs_by_type(counts)),
        "work_by_kind": macs_by_kind(counts),
        "sampling_rate_hz": float(m["sampling_rate_hz"]),
        "window_samples": int(m["window_samples"]),
        "hop_samples": int(m["hop_samples"]),
        "hop_ms": 1e3 * int(m["hop_samples"]) / float(m["sampling_rate_hz"]),
        "compute_mode": _compute_mode(m),
        # Measured by the tflite-micro interpreter at export (manifest); re-measured when available.
        "arena_bytes": int(arena) if arena is not None else None,
        "arena_source": "manifest (tflite-micro at export)" if arena is not None else None,
        # The runtime keeps one window of int8 samples per channel (quantized as they arrive).
        "ring_buffer_bytes": int(m["window_samples"]) * channels,
        # Causal band-pass as second-order sections: 2 float32 state values per section.
        "preprocessing_state_bytes": 8 * sections,
        "accuracy_pct": agreement.get("accuracy_int8_pct"),
        "metric": task_metric.get("metric") or ("accuracy %" if agreement.get("accuracy_int8_pct") is not None
                                                else None),
        "metric_int8": task_metric.get("int8", agreement.get("accuracy_int8_pct")),
        "metric_higher_is_better": bool(task_metric.get("higher_is_better", True)),
        "task": m.get("task"),
    }


def _compute_mode(m: dict) -> str:
    window, hop = int(m["window_samples"]), int(m["hop_samples"])
    streaming = m.get("streaming")
    if streaming:
        return f"stateful streaming ({streaming})"
    overlap = 1 - hop / window if hop < window else 0.0
    return (f"sliding window: {window} samples every {hop} samples"
            + (f" ({overlap:.0%} of each window recomputed)" if overlap else "")
            + "; no streaming mode in this model")


def target_rows(fig: dict, targets: list[Target], *, host: dict | None = None, vela: dict | None = None,
                device_model: str = "") -> list[dict]:
    """One row per target. ``host``: ``{runtime: measurement}`` of this machine; ``vela``: the
    ``run_vela`` result (or ``{"error"}``/None). ``device_model`` decides which host targets are
    this machine."""
    allowance = runtime_allowance()
    # No arena figure (manifest without "tflm" and no tflite-micro here): RAM is unknown, not small.
    ram_parts = None if fig["arena_bytes"] is None else (
        fig["arena_bytes"] + fig["ring_buffer_bytes"] + fig["preprocessing_state_bytes"])
    rows = []
    for t in targets:
        row: dict = {"target": t.name, "kind": t.kind, "description": t.description}
        if t.kind == "host":
            is_here = t.name == HOST_TARGET or bool(t.device_model and device_model.startswith(t.device_model))
            row.update(_host_row(fig, t, host if is_here else None))
        else:
            flash = fig["model_bytes"] + allowance["flash_bytes"]
            ram = None if ram_parts is None else ram_parts + allowance["ram_bytes"]
            ms = round(estimate_ms(fig["work_by_kind"], fig["ops"], t.cycles_per_mac, t.cycles_per_op, t.clock_mhz), 4)
            source = f"estimate: calibrated MAC model, {t.core} at {t.clock_mhz:g} MHz"
            if t.kind == "npu":
                if vela and "error" not in vela and vela.get("npu_operators"):
                    ms, flash = vela["latency_ms"], vela["flash_bytes"] + allowance["flash_bytes"]
                    ram = vela["sram_bytes"] + fig["ring_buffer_bytes"] + fig["preprocessing_state_bytes"] + allowance["ram_bytes"]
                    source = (f"estimate: ethos-u-vela {vela['version']} {vela['accelerator_config']} at "
                              f"{vela['npu_clock_mhz']:g} MHz, {vela['npu_operators']} NPU ops")
                    if vela.get("cpu_operators"):
                        source += f"; {vela['cpu_operators']} CPU-fallback ops NOT included in the latency"
                elif vela and "error" not in vela:
                    source += " (CPU only: vela mapped no operator to the NPU)"
                else:
                    why = (vela or {}).get("error", "ethos-u-vela not installed")
                    source += f" (CPU only: {why})"
            row.update({"flash_bytes": flash, "ram_bytes": ram, "latency_ms": ms, "latency_source": source,
                        "measured": False})
        row["flash_limit_bytes"], row["ram_limit_bytes"] = t.flash_bytes, t.sram_bytes
        # A limit of 0 in a profile = not the limiting resource (SD card, this host's RAM).
        row["fits_flash"] = None if row.get("flash_bytes") is None else (
            t.flash_bytes == 0 or row["flash_bytes"] <= t.flash_bytes)
        row["fits_ram"] = None if row.get("ram_bytes") is None else (
            t.sram_bytes == 0 or row["ram_bytes"] <= t.sram_bytes)
        ms = row.get("latency_ms")
        if ms is None:
            row["duty_cycle"] = row["energy_j_per_hour"] = row["real_time"] = None
        else:
            duty = ms / fig["hop_ms"]
            row["duty_cycle"] = round(duty, 8)
            row["real_time"] = duty < 1.0
            # Inference energy only (active power × busy time); sleep power is not included.
            row["energy_j_per_hour"] = (round(t.active_power_mw * 1e-3 * duty * 3600.0, 6)
                                        if t.active_power_mw > 0 else None)
        checks = (row["fits_flash"], row["fits_ram"], row["real_time"])
        # False if any check fails; None (unknown) if none fails but one could not be made.
        row["fits"] = False if False in checks else (None if None in checks else True)
        rows.append(row)
    return rows


def _host_row(fig: dict, t: Target, host: dict | None) -> dict:
    if not host:
        return {"flash_bytes": None, "ram_bytes": None, "latency_ms": None, "measured": False,
                "latency_source": "not measured: run python -m benchmarks.run on this device"}
    ok = {k: v for k, v in host.items() if "error" not in v}
    # The runtime a Pi deploys: tflite-runtime when present, else ai-edge-litert, else TFLM.
    pick = next((r for r in ("tflite_runtime", "ai_edge_litert", "tflite_micro") if r in ok), None)
    if pick is None:
        return {"flash_bytes": None, "ram_bytes": None, "latency_ms": None, "measured": False,
                "latency_source": "not measured: no runtime ran"}
    m = ok[pick]
    return {"flash_bytes": fig["model_bytes"], "ram_bytes": m["peak_rss_kb"] * 1024, "latency_ms": m["p50_ms"],
            "measured": True, "latency_source": f"measured: {pick} p50 of {m['n']} invokes, 1 thread (RAM = peak RSS)"}
