"""What one registered model costs: int8 flash, TFLite Micro arena, MACs per op type, MCU latency.

Used by ``python -m benchmarks.compare``. The model is converted the way ``quantize.export``
converts a shipped checkpoint (BatchNorm folded, litert-torch + ai-edge-quantizer full int8,
tensor names stripped), so its bytes and graph match an export of the same config. Calibration
uses a few seeded synthetic windows: the int8 scales then differ from a trained export, but
sizes, op graph, MACs and arena do not depend on weights or scales, so the cost figures of an
untrained model equal those of the trained one with the same config.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .bench import target_rows
from .macs import count_macs, macs_by_kind, macs_by_type
from .targets import Target
from .tflite_graph import read_graph
from wearable import CHECKPOINT_DIR

__all__ = ["CHECKPOINT_DIR", "CALIBRATION_WINDOWS", "model_cost", "convert_row", "finish_row", "shipped_metric",
           "convert_int8"]

log = logging.getLogger("benchmarks")

CALIBRATION_WINDOWS = 4  # enough for min/max ranges; the figures reported do not depend on them

# Task metrics of shipped checkpoints, as their metrics.json files name them (first found wins):
# (dotted key, label, scale). The files differ by who trained the model, hence the list.
_METRIC_KEYS = (
    ("test.per_sample_macro_f1_int8_pct", "per-sample macro F1 % (int8, test)", 1.0),
    ("metrics.test_int8_challenge_score", "challenge score % (int8, test recordings)", 100.0),
    ("int8.mae_int8_bpm", "HR MAE bpm (int8, test)", 1.0),
    ("metrics.test_class_macro_f1", "macro F1 % (float, test)", 100.0),
    ("metrics.test_fp32_macro_f1", "macro F1 % (float, test)", 100.0),
    ("validation.macro_f1", "macro F1 % (float, validation)", 100.0),
    ("test_mae_bpm", "HR MAE bpm (float, test)", 1.0),
)


def shipped_metric(name: str, checkpoint_dir: Path = CHECKPOINT_DIR) -> dict | None:
    """``{"metric", "value", "source"}`` from ``<name>.metrics.json``, or None (no shipped checkpoint)."""
    path = Path(checkpoint_dir) / f"{name}.metrics.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    for key, label, scale in _METRIC_KEYS:
        node = data
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, (int, float)) and not isinstance(node, bool):
            task = (data.get("data") or {})
            return {"metric": label, "value": round(float(node) * scale, 2), "source": f"{path.name}: {key}",
                    "task": f"{task.get('source')}/{task.get('task')}" if task else None}
    return {"metric": None, "value": None, "source": f"{path.name}: no known metric key", "task": None}


def _build(name: str, checkpoint_dir: Path):
    """The model and where its config came from: the shipped checkpoint's, else the default."""
    from wearable.models import create

    ckpt_path = Path(checkpoint_dir) / f"{name}.pt"
    if ckpt_path.is_file():
        from wearable.training import load_checkpoint

        ckpt = load_checkpoint(ckpt_path)
        return ckpt.build(), "shipped checkpoint", int(ckpt.data.get("hop_samples") or 0)
    return create(name).eval(), "default config (untrained)", 0


def convert_int8(model, seed: int = 0) -> bytes:
    """Full-int8 flatbuffer of ``model`` by the export's route, tensor names stripped."""
    import torch

    from quantize import fold_batchnorm
    from quantize._strip import strip_tensor_names
    from quantize.backends import get_backend

    cfg = model.config
    rng = np.random.default_rng(seed)
    windows = rng.standard_normal((CALIBRATION_WINDOWS, cfg.in_channels, cfg.window_samples)).astype(np.float32)
    folded, _ = fold_batchnorm(model)
    conv = get_backend("litert")
    with torch.no_grad():
        float_tflite = conv.to_float(folded, windows)
    return strip_tensor_names(conv.float_to_int8(float_tflite, windows))


def convert_row(name: str, *, checkpoint_dir: Path = CHECKPOINT_DIR) -> tuple[dict, bytes | None]:
    """Build and convert one model: its row without arena and target figures, and the int8
    flatbuffer (None, with ``row["error"]`` saying why, when it cannot be built or converted)."""
    import torch

    row: dict = {"model": name, "metric": shipped_metric(name, checkpoint_dir)}
    try:
        torch.manual_seed(0)  # untrained models: the same weights every run
        model, origin, hop = _build(name, checkpoint_dir)
    except Exception as exc:
        return {**row, "error": f"cannot build: {type(exc).__name__}: {exc}"[:300]}, None
    cfg = model.config
    row.update(config_source=origin, config=asdict(cfg), params=int(sum(p.numel() for p in model.parameters())),
               in_channels=int(cfg.in_channels), window_samples=int(cfg.window_samples),
               sampling_rate_hz=float(cfg.sampling_rate_hz))
    try:
        tflite = convert_int8(model)
    except Exception as exc:
        return {**row, "error": f"int8 conversion failed: {type(exc).__name__}: {exc}"[:300]}, None
    finally:
        torch.set_num_threads(1)  # litert-torch may reset it; keep the shared machine calm
    graph = read_graph(tflite)
    counts = count_macs(graph)
    hop = hop or int(cfg.window_samples)  # no shipped data spec: one window per inference, no overlap
    row.update({"model_bytes": len(tflite), "ops": len(graph.operators), "macs": sum(c.macs for c in counts),
                "macs_by_type": dict(macs_by_type(counts)), "work_by_kind": macs_by_kind(counts),
                "op_types": sorted({c.op for c in counts}),
                "ring_buffer_bytes": int(cfg.window_samples) * int(cfg.in_channels), "preprocessing_state_bytes": 0,
                "hop_samples": hop, "hop_ms": 1e3 * hop / float(cfg.sampling_rate_hz)})
    return row, tflite


def finish_row(row: dict, arena: int | None, why: str | None, targets: list[Target]) -> dict:
    """Add the TFLite Micro arena (or why it is unknown) and one estimate row per MCU/NPU target."""
    if "error" in row:
        return row
    row.update(arena_bytes=arena, arena_error=why)
    row["targets"] = target_rows(row, [t for t in targets if t.kind != "host"], vela=None)
    return row


def model_cost(name: str, targets: list[Target], *, checkpoint_dir: Path = CHECKPOINT_DIR) -> dict:
    """Cost row of one registered model; ``{"model", "error", ...}`` if it cannot be converted."""
    from ._compare_tflm import arenas

    row, tflite = convert_row(name, checkpoint_dir=checkpoint_dir)
    if tflite is None:
        return row
    ((arena, why),) = arenas([tflite])
    return finish_row(row, arena, why, targets)
