"""Write a benchmark report: ``report.json``, ``report.md`` and PNG plots (with matplotlib only)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from wearable._staging import staged_dir

__all__ = ["streaming_lines", "table_lines", "write_report", "plots_available"]

log = logging.getLogger("benchmarks")

_COLUMNS = ("model", "target", "flash KB", "RAM KB", "latency ms", "how", "duty %", "J/h", "fits")


def _kb(n: int | None, limit: int | None = None) -> str:
    if n is None:
        return "-"
    text = f"{n / 1024:.1f}"
    return f"{text}/{limit / 1024:.0f}" if limit else text


def _row_cells(model: str, r: dict) -> tuple[str, ...]:
    how = "measured" if r["measured"] else ("-" if r["latency_ms"] is None else "estimated")
    verdict = {True: "yes", False: "NO", None: "?"}[r["fits"]]
    return (model, r["target"], _kb(r["flash_bytes"], r["flash_limit_bytes"]), _kb(r["ram_bytes"], r["ram_limit_bytes"]),
            "-" if r["latency_ms"] is None else f"{r['latency_ms']:.3f}", how,
            "-" if r["duty_cycle"] is None else f"{100 * r['duty_cycle']:.4f}",
            "-" if r["energy_j_per_hour"] is None else f"{r['energy_j_per_hour']:.4f}", verdict)


def table_lines(report: dict) -> list[str]:
    """The model × target table as aligned text lines (flash and RAM as needed/limit in KB)."""
    rows = [_COLUMNS] + [_row_cells(m["model"], r) for m in report["models"] for r in m["targets"]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]


def streaming_lines(report: dict) -> list[str]:
    """Sliding windows vs stateful streaming, per model with a streaming export: MACs per second
    of signal (Markdown table rows; none when no model has one)."""
    models = [m for m in report["models"] if m.get("streaming")]
    if not models:
        return []
    lines = ["| model | compute | samples per call | conv MACs/s | all MACs/s | × shipped hop |",
             "|---|---|---|---|---|---|"]
    for m in models:
        for r in m["streaming"]["rows"]:
            what = "stateful stream" if r["mode"] == "stream" else \
                f"sliding windows{' (shipped hop)' if r['shipped'] else ''}"
            lines.append(f"| {m['model']} | {what} | {r['hop']} | {r['conv']:,.0f} | {r['all']:,.0f} | "
                         f"{r['x_sliding']:.2f} |")
    return lines


def _streaming_md(report: dict) -> list[str]:
    rows = streaming_lines(report)
    if not rows:
        return []
    notes = []
    for m in (m for m in report["models"] if m.get("streaming")):
        s = m["streaming"]
        arena = "-" if s["arena_bytes"] is None else f"{s['arena_bytes'] / 1024:.1f}"
        notes.append(f"- {m['model']}: stateful stream `{s['path']}`, block {s['block_samples']} samples, answers "
                     f"{s['delay_ms']:.0f} ms late; {s['ops']} ops, {s['model_bytes'] / 1024:.1f} KB, TFLite Micro arena "
                     f"{arena} KB; int8 outputs vs the int8 window network run offline: max "
                     f"{s['int8_vs_offline_int8_max_steps']} steps")
    return ["## Sliding windows vs stateful streaming", "",
            "MACs per second of signal counted from the two graphs: a window model run every hop samples "
            "(the shipped hop, W/2, W/4) against its stateful streaming export (python -m quantize.stream_export), "
            "which takes each sample through each layer once; \"all\" adds elementwise ops as one MAC each.", ""] + \
        rows + [""] + notes + [""]


def plots_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def write_report(report: dict, out: Path) -> list[Path]:
    """Write report.json, report.md and (if matplotlib is installed) PNGs; return the paths.

    The files are written into a staging directory and renamed into ``out`` at the end
    (``wearable._staging``; other files in ``out`` stay): a full disk raises ``OSError`` and
    leaves ``out`` as it was.
    """
    with staged_dir(out, keep_others=True) as tmp:
        (tmp / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        pngs = [p.name for p in _plots(report, tmp)] if plots_available() else []
        (tmp / "report.md").write_text(_markdown(report, pngs))
    return [out / "report.json", out / "report.md", *(out / name for name in pngs)]


def _markdown(report: dict, pngs: list[str]) -> str:
    lines = ["# Benchmark report", "",
             f"Machine: {report['machine']['description']}. Estimated figures (MCU latency, NPU via vela) are "
             "model-based estimates, not measurements; measured figures are from this machine only.", ""]
    head = "| " + " | ".join(_COLUMNS) + " |"
    lines += [head, "|" + "---|" * len(_COLUMNS)]
    for m in report["models"]:
        for r in m["targets"]:
            lines.append("| " + " | ".join(_row_cells(m["model"], r)) + " |")
    lines += ["", "Flash and RAM are `needed/limit` in KB. Flash = model bytes + a runtime allowance of "
              f"{report['runtime_allowance']['flash_bytes'] // 1024} KB; RAM = TFLite Micro arena + input ring buffer "
              f"+ preprocessing state + {report['runtime_allowance']['ram_bytes'] // 1024} KB interpreter/stack allowance "
              "(on Ethos-U: vela's SRAM instead of the arena; on hosts: peak RSS of the measuring process). "
              "Duty = inference time per hop ÷ hop duration; J/h = active power × busy time per hour "
              "(inference only, sleep not included).", ""]
    lines += _comparison(report)
    lines += _streaming_md(report)
    for m in report["models"]:
        lines += [f"## {m['model']}", "",
                  f"- sha256 `{m['sha256'][:16]}…`, {m['model_bytes']} bytes, {m['ops']} ops, "
                  f"{m['macs']:,} MACs per inference; int8 {m['metric']} {m['metric_int8']} on held-out data "
                  f"({m['task']})",
                  f"- RAM parts: arena {m['arena_bytes']} B ({m['arena_source']}), ring buffer {m['ring_buffer_bytes']} B, "
                  f"preprocessing state {m['preprocessing_state_bytes']} B",
                  f"- compute: {m['compute_mode']}; hop {m['hop_ms']:.0f} ms", "",
                  "| op | count | MACs |", "|---|---|---|"]
        lines += [f"| {op} | {v['count']} | {v['macs']:,} |" for op, v in m["macs_by_type"].items()]
        if m.get("host"):
            lines += ["", "Measured on this machine (single thread, after warm-up; tflite_micro runs the x86 "
                      "reference kernels, so its time is not an MCU figure):", "",
                      "| runtime | n | p50 ms | p90 ms | p99 ms | peak RSS MB |", "|---|---|---|---|---|---|"]
            for rt, v in m["host"].items():
                if "error" in v:
                    lines.append(f"| {rt} | - | {v['error']} | | | |")
                else:
                    lines.append(f"| {rt} | {v['n']} | {v['p50_ms']} | {v['p90_ms']} | {v['p99_ms']} | "
                                 f"{v['peak_rss_kb'] / 1024:.1f} |")
        lines += _firmware(m.get("firmware") or {})
        if m.get("notes"):
            lines.append("")
        for note in m.get("notes", []):
            lines.append(f"- {note}")
        lines += ["", "| target | latency source |", "|---|---|"]
        lines += [f"| {r['target']} | {r['latency_source']} |" for r in m["targets"]]
        lines.append("")
    cal = report["calibration"]
    lines += ["## Latency model calibration (Cortex-M4F)", "",
              "| role | measurement | measured ms | estimated ms | error |", "|---|---|---|---|---|"]
    lines += [f"| {c['role']} | {c['name']} | {c['measured_ms']} | {c['estimated_ms']} | {c['error_pct']:+.1f} % |"
              for c in cal]
    lines += ["", "## Targets", "", "| target | description | sources |", "|---|---|---|"]
    lines += [f"| {t['name']} | {t['description']} | {'; '.join(t['sources'])} |" for t in report["target_profiles"]]
    if pngs:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in pngs]
    else:
        lines += ["", "(No plots: matplotlib is not installed.)"]
    return "\n".join(lines) + "\n"


def _firmware(fw: dict) -> list[str]:
    if "error" in fw:
        return ["", f"Cortex-M4 object sizes: not measured ({fw['error']})."]
    if not fw.get("files"):
        return []
    lines = ["", f"Cortex-M4 object sizes of the generated firmware sources (`{' '.join(fw['flags'])}`; "
             ".text includes read-only data such as the model array; objects only, no libraries):", "",
             "| file | .text | .data | .bss |", "|---|---|---|---|"]
    lines += [f"| {name} | {v['text']} | {v['data']} | {v['bss']} |" for name, v in sorted(fw["files"].items())]
    t = fw["total"]
    return lines + [f"| **total** | {t['text']} | {t['data']} | {t['bss']} |"]


def _comparison(report: dict) -> list[str]:
    """One row per model: what it costs, at a glance (estimated MCU ms per target, measured host ms)."""
    models = report["models"]
    if not models:
        return []
    mcus = [r["target"] for r in models[0]["targets"] if r["kind"] != "host"]
    runtimes = sorted({rt for m in models for rt, v in m.get("host", {}).items() if "error" not in v})
    head = ["model", "ops", "MACs", "model KB", "arena KB", "int8 metric"] + [f"{t} ms (est.)" for t in mcus] + \
        [f"{rt} p50 ms (measured)" for rt in runtimes]
    lines = ["## Model comparison", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in sorted(models, key=lambda m: m["macs"]):
        lat = {r["target"]: r["latency_ms"] for r in m["targets"]}
        cells = [m["model"], str(m["ops"]), f"{m['macs']:,}", f"{m['model_bytes'] / 1024:.1f}",
                 "-" if m["arena_bytes"] is None else f"{m['arena_bytes'] / 1024:.1f}",
                 "-" if m["metric_int8"] is None else f"{m['metric']} {m['metric_int8']:.2f}"]
        cells += ["-" if lat.get(t) is None else f"{lat[t]:.3f}" for t in mcus]
        cells += [f"{m['host'][rt]['p50_ms']:.3f}" if "error" not in m["host"].get(rt, {"error": 1}) else "-"
                  for rt in runtimes]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def _pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not beaten by another with lower latency and higher accuracy, by latency."""
    front, best = [], float("-inf")
    for lat, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.append((lat, acc))
            best = acc
    return front


def _plots(report: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    targets = [r["target"] for r in report["models"][0]["targets"]] if report["models"] else []
    fig, ax = plt.subplots(figsize=(8, 5))
    for t in targets:
        # higher-is-better metrics only (F1, accuracy); an MAE would invert the Pareto front
        named = [(r["latency_ms"], m["metric_int8"], m["model"]) for m in report["models"] for r in m["targets"]
                 if r["target"] == t and r["latency_ms"] and m["metric_int8"] is not None
                 and m["metric_higher_is_better"]]
        if not named:
            continue
        pts = [(lat, acc) for lat, acc, _ in named]
        line = ax.scatter(*zip(*pts), label=t)
        for lat, acc, model in named:
            ax.annotate(model, (lat, acc), fontsize=6, xytext=(3, 3), textcoords="offset points")
        front = _pareto(pts)
        ax.plot(*zip(*front), color=line.get_facecolor()[0], alpha=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("latency per inference, ms (log; estimated or measured, see report)")
    ax.set_ylabel("int8 task metric on held-out data (macro F1 % or accuracy %)")
    ax.set_title("Task metric vs latency per target (lines: Pareto front)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / "accuracy_vs_latency.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    for key, label in (("ram", "RAM"), ("flash", "flash")):
        fig, ax = plt.subplots(figsize=(9, 4.5))
        rows = [(m["model"], r) for m in report["models"] for r in m["targets"]
                if r[f"{key}_bytes"] is not None and r["kind"] != "host"]
        names = [f"{mod}\n{r['target']}" for mod, r in rows]
        ax.bar(names, [r[f"{key}_bytes"] / 1024 for _, r in rows], label=f"{label} needed")
        ax.scatter(names, [r[f"{key}_limit_bytes"] / 1024 for _, r in rows], marker="_", s=400, color="red",
                   label=f"target {label}")
        ax.set_yscale("log")
        ax.set_ylabel("KB (log)")
        ax.set_title(f"{label} needed vs each target's limit")
        ax.tick_params(axis="x", labelsize=6)
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(out / f"{key}.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths
