"""Tables and the student's checkpoint + int8 export for ``python -m wearable.ssl.run``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wearable.training import save_checkpoint

__all__ = ["efficiency_table", "robustness_table", "student_export"]


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    sd = f" ± {np.std(values):.2f}" if len(values) > 1 else ""
    return f"{np.mean(values):.2f}{sd}"


def _name(row: dict, variants: list[str]) -> str:
    return row["method"] if len(variants) == 1 else f"{row['method']} [{row['encoder']}]"


def efficiency_table(results: list[dict], fractions: list[float], mean_mae: float, variants: list[str],
                     reseeded: bool = False) -> str:
    """Markdown table of test MAE (mean ± sd over seeds) per method (and encoder) and label fraction."""
    lines = ["| PPG-only HR, test MAE (bpm) | " + " | ".join(f"{f:.0%} labels" for f in fractions) + " |",
             "|---|" + "---|" * len(fractions)]
    names = list(dict.fromkeys(_name(r, variants) for r in results))
    for name in names:
        cells = [_cell([r["test_mae_bpm"] for r in results if _name(r, variants) == name and r["fraction"] == f])
                 for f in fractions]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| predict the training mean | " + " | ".join(f"{mean_mae:.2f}" for _ in fractions) + " |")
    seeds = sorted({r["seed"] for r in results})
    what = "seeds (pretraining and downstream)" if reseeded else "downstream seeds (pretraining: seed 0)"
    lines.append(f"\nmean ± sd over {what} {seeds}")
    return "\n".join(lines)


def robustness_table(results: list[dict], fraction: float, snrs: list[float], variants: list[str]) -> str:
    """Markdown table of test MAE under motion artifacts per SNR, models trained on ``fraction`` of the labels."""
    rows = [r for r in results if r["fraction"] == fraction and "test_mae_snr" in r]
    lines = [f"| PPG-only HR test MAE (bpm), {fraction:.0%} labels | clean | "
             + " | ".join(f"{s:g} dB" for s in snrs) + " |", "|---|---|" + "---|" * len(snrs)]
    for name in dict.fromkeys(_name(r, variants) for r in rows):
        mine = [r for r in rows if _name(r, variants) == name]
        cells = [_cell([r["test_mae_bpm"] for r in mine])]
        cells += [_cell([r["test_mae_snr"][f"{s:g}"] for r in mine]) for s in snrs]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def student_export(out: Path, model, row: dict, data: dict, ppg: dict, command: str, say) -> dict:
    """Checkpoint + metrics.json of the fine-tuned student and its full-int8 export; the figures or the failure."""
    import quantize  # the export stack is heavy: only when asked for

    name = row["model"]
    save_checkpoint(out / f"{name}.pt", model, model_name=name, data=data, labels=["hr_bpm"],
                    metrics={"test_mae_bpm": row["test_mae_bpm"], "val_mae_bpm": row["val_mae"]}, seed=row["seed"])
    pick = np.random.default_rng(0).permutation(len(ppg["train"][0]))[:512]
    result: dict = {}
    try:
        manifest = quantize.export_model(model.eval(), out / "export", calibration=ppg["train"][0][pick],
                                         holdout=ppg["test"][0], holdout_labels=ppg["test"][1],
                                         labels=["hr_bpm"], overwrite=True)
        metric = manifest.data["checks"].get("task_metric") or {}
        result = {"flash_bytes": manifest.tflite_bytes, "arena_bytes": manifest.arena_bytes,
                  "mae_float_bpm": metric.get("float"), "mae_int8_bpm": metric.get("int8")}
        say(f"int8 export ({row['method']}, {row['fraction']:.0%} labels, seed {row['seed']}): "
            f"{result['flash_bytes']} B flash, TFLM arena {result['arena_bytes']} B, test MAE float "
            f"{result['mae_float_bpm']} / int8 {result['mae_int8_bpm']} bpm")
    except Exception as exc:  # a failed gate is a result to report, not a crash of the table
        say(f"export failed: {exc}")
        result = {"error": str(exc)}
    card = {"model": name, "data": data, "labels": ["hr_bpm"], "seed": row["seed"],
            "origin": f"{row['method']} at {row['fraction']:.0%} labels, seed {row['seed']}, of: {command}",
            "test_mae_bpm": row["test_mae_bpm"], "val_mae_bpm": row["val_mae"],
            "test_mae_bpm_motion_snr": row.get("test_mae_snr", {}), "int8": result}
    (out / f"{name}.metrics.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return result
