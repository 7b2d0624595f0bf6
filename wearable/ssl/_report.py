"""Tables and the student's checkpoint + int8 export for ``python -m wearable.ssl.run``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wearable.training import save_checkpoint

__all__ = ["summary", "efficiency_table", "robustness_table", "tables_write", "student_export"]

_FAMILY = {"scratch": "scratch", "cmssl": "CM-SSL", "cmsslbeat": "CM-SSL, beat-aligned patches",
           "ntxent": "NT-Xent", "masked": "masked reconstruction"}
_MODE = {"finetune": "fine-tune", "probe": "linear probe"}


def _label(row: dict, variants: list[str]) -> str:
    family, _, mode = row["method"].partition("_")
    name = _FAMILY.get(family, family) + (f" {_MODE.get(mode, mode)}" if mode else "")
    return name if len(variants) == 1 else f"{name} [{row['encoder']}]"


def _stats(values: list[float]) -> dict:
    """Mean and sample sd (ddof 1; 0 for one value) of the per-seed values."""
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(np.mean(values)), "sd": sd, "n": len(values), "values": [float(v) for v in values]}


def _cell(stats: dict | None) -> str:
    if not stats:
        return "-"
    return f"{stats['mean']:.2f}" + (f" ± {stats['sd']:.2f}" if stats["n"] > 1 else "")


def summary(results: list[dict], fractions: list[float], variants: list[str]) -> dict:
    """Per task, method and label fraction: mean ± sd over seeds of the test metric (and under noise).

    The robustness columns are the rows' ``test_snr`` keys ("20": PPG motion at 20 dB, "em 24":
    NSTDB electrode motion at 24 dB), shown with " dB".
    """
    out: dict = {}
    for task in dict.fromkeys(r["task"] for r in results):
        rows = [r for r in results if r["task"] == task]
        cells, robust = {}, {}
        for name in dict.fromkeys(_label(r, variants) for r in rows):
            mine = [r for r in rows if _label(r, variants) == name]
            cells[name] = {f"{f:g}": {**_stats([r["test"] for r in mine if r["fraction"] == f]),
                                      "n_train": next(r["n_train"] for r in mine if r["fraction"] == f)}
                           for f in fractions if any(r["fraction"] == f for r in mine)}
            top = [r for r in mine if r["fraction"] == max(fractions)]
            if top and top[0]["test_snr"]:
                robust[name] = {"clean": _stats([r["test"] for r in top]),
                                **{f"{k} dB": _stats([r["test_snr"][k] for r in top]) for k in top[0]["test_snr"]}}
        out[task] = {"metric": rows[0]["metric"], "cells": cells, "robustness": robust,
                     "seeds": sorted({r["seed"] for r in rows})}
    return out


def efficiency_table(task: str, stats: dict, title: str, fractions: list[float], baseline: tuple[str, float]) -> str:
    """Markdown label-efficiency table of one task from ``summary(...)[task]``."""
    first = next(iter(stats["cells"].values()), {})
    heads = [f"{f:.0%} labels" + (f" ({first[f'{f:g}']['n_train']})" if f"{f:g}" in first else "")
             for f in fractions]
    lines = [f"| {title} | " + " | ".join(heads) + " |", "|---|" + "---|" * len(fractions)]
    for name, cells in stats["cells"].items():
        lines.append(f"| {name} | " + " | ".join(_cell(cells.get(f"{f:g}")) for f in fractions) + " |")
    lines.append(f"| {baseline[0]} | " + " | ".join(f"{baseline[1]:.2f}" for _ in fractions) + " |")
    return "\n".join(lines)


def robustness_table(stats: dict, title: str, fraction: float, noise: str = "motion") -> str:
    """Markdown table of the test metric per noise column of ``summary``, models trained on ``fraction``."""
    cols = [k for k in next(iter(stats["robustness"].values())) if k != "clean"]
    under = "under motion" if noise == "motion" else "under NSTDB noise"
    lines = [f"| {title}, {fraction:.0%} labels, {under} | clean | " + " | ".join(cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for name, cells in stats["robustness"].items():
        lines.append(f"| {name} | {_cell(cells['clean'])} | " + " | ".join(_cell(cells.get(k)) for k in cols) + " |")
    return "\n".join(lines)


def tables_write(out: Path, report: dict, results: list[dict], args) -> str:
    """table.json (the summary) and table.md (every task's tables) in ``out``; returns the markdown."""
    from .tasks import DOWNSTREAM

    stats = summary(results, args.fractions, args.encoders)
    seeds = sorted({r["seed"] for r in results})
    what = ("seeds (each re-runs pretraining, tokenizers included, and the downstream run)"
            if args.reseed_pretraining else "downstream seeds (pretraining: seed 0)")
    parts = [f"`{report['command']}` ({report.get('seconds', 0) / 60:.1f} min)"]
    for task, st in stats.items():
        d = DOWNSTREAM[task]
        parts.append(efficiency_table(task, st, d.title, args.fractions, (d.baseline, report["baseline"][task])))
        if st["robustness"]:
            parts.append(robustness_table(st, d.title, max(args.fractions), d.noise))
    parts.append(f"mean ± sd (sample sd) over {what} {seeds}")
    text = "\n\n".join(parts)
    (out / "table.md").write_text(text + "\n")
    (out / "table.json").write_text(json.dumps({"command": report["command"], "seconds": report.get("seconds"),
                                                "seeds": seeds, "reseed_pretraining": bool(args.reseed_pretraining),
                                                "baseline": report["baseline"], "tasks": stats}, indent=1) + "\n")
    return text


def student_export(out: Path, model, row: dict, data: dict, ppg: dict, command: str, say) -> dict:
    """Checkpoint + metrics.json of the fine-tuned student and its full-int8 export; the figures or the failure."""
    import quantize  # the export stack is heavy: only when asked for

    name = row["model"]
    save_checkpoint(out / f"{name}.pt", model, model_name=name, data=data, labels=["hr_bpm"],
                    metrics={"test_mae_bpm": row["test"], "val_mae_bpm": row["val"]}, seed=row["seed"])
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
            "test_mae_bpm": row["test"], "val_mae_bpm": row["val"],
            "test_mae_bpm_motion_snr": row.get("test_snr", {}), "int8": result}
    (out / f"{name}.metrics.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return result
