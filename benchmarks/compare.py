"""``python -m benchmarks.compare``: what every registered model costs on each wearable target.

Builds every registered model (or those named with --model) with its shipped checkpoint's
config, else its default config, converts it to full int8 by the export's route (BatchNorm
folded, litert-torch + ai-edge-quantizer, names stripped) with a few synthetic calibration
windows, and reports parameters, MACs per inference (per op type), int8 flash bytes, the
TFLite Micro arena, the estimated latency and the flash/RAM/real-time fit on each MCU target.
Untrained models have no task metric ("-"); their cost figures equal a trained model's with the
same config (same graph). Needs the full environment (torch, litert-torch, ai-edge-quantizer,
tflite-micro); python -m benchmarks.run stays numpy-only.

Writes compare.md, compare.json and compare.png into --out and prints the table.
Exit codes: 0 done; 2 bad input (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from .latency import calibration_report
from .targets import Target, TargetError, load_targets, runtime_allowance

__all__ = ["main", "table_lines", "compare_models"]

log = logging.getLogger("benchmarks")


def _parser() -> argparse.ArgumentParser:
    doc = __doc__.split("\n\n")
    p = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=doc[1].replace("``", ""),
                                epilog=doc[2].replace("``", ""),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", nargs="+", metavar="NAME", help="compare only these registered models (default: all)")
    p.add_argument("--target", action="append", metavar="NAME",
                   help="MCU/NPU target to report (repeatable; default: every MCU and NPU target)")
    p.add_argument("--targets", metavar="FILE", help="extra target profiles (JSON, same shape as benchmarks/targets.json)")
    p.add_argument("--checkpoints", metavar="DIR", help="shipped checkpoints (default: wearable/checkpoints)")
    p.add_argument("--out", default="compare_report", metavar="DIR", help="output directory (default: compare_report)")
    p.add_argument("--keep-tflite", action="store_true", help="also write each <model>_int8.tflite into --out")
    p.add_argument("--jobs", type=int, default=2, metavar="N",
                   help="models converted at once, one process each (default 2; 1 = in this process)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def _targets(args) -> list[Target]:
    profiles = load_targets(args.targets)
    chips = {n: t for n, t in profiles.items() if t.kind != "host"}
    if not args.target:
        return list(chips.values())
    unknown = [n for n in args.target if n not in chips]
    if unknown:
        raise TargetError(f"unknown target {unknown[0]!r}; MCU/NPU targets: {', '.join(chips)}")
    return [chips[n] for n in dict.fromkeys(args.target)]


def compare_models(names: list[str], targets: list[Target], *, checkpoint_dir: Path | None = None,
                   out_dir: Path | None = None, progress: bool = False, jobs: int = 1) -> list[dict]:
    """One cost row per model (see ``benchmarks._compare_cost``), in the order given.

    ``jobs`` > 1 converts that many models at once, each in its own process (conversion is
    single-threaded Python/torch work); the figures are the same either way. The TFLite Micro
    arenas are then measured in one child process for all models.
    """
    from tqdm import tqdm

    from ._compare_cost import CHECKPOINT_DIR, finish_row
    from ._compare_tflm import arenas

    ckpt = Path(checkpoint_dir or CHECKPOINT_DIR)
    bar = tqdm(total=len(names) + 1, disable=not progress, unit="step", file=sys.stderr)
    done: dict[str, tuple[dict, bytes | None]] = {}
    if jobs <= 1 or len(names) <= 1:
        for name in names:
            bar.set_postfix_str(f"convert {name}")
            done[name] = _convert(name, ckpt)
            bar.update()
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_convert, n, ckpt): n for n in names}
            for fut in as_completed(futures):
                name = futures[fut]
                try:
                    done[name] = fut.result()
                except Exception as exc:  # a worker killed by the OS; convert_row itself does not raise
                    done[name] = ({"model": name, "error": f"worker failed: {type(exc).__name__}: {exc}"[:300]}, None)
                bar.set_postfix_str(f"converted {name}")
                bar.update()
    bar.set_postfix_str("TFLite Micro arenas")
    ok = [n for n in names if done[n][1] is not None]
    measured = dict(zip(ok, arenas([done[n][1] for n in ok])))
    bar.update()
    bar.close()
    rows = []
    for name in names:
        row, tflite = done[name]
        if tflite is not None and out_dir is not None:
            (Path(out_dir) / f"{name}_int8.tflite").write_bytes(tflite)
        rows.append(finish_row(row, *measured.get(name, (None, None)), targets))
    return rows


def _convert(name: str, checkpoint_dir: Path) -> tuple[dict, bytes | None]:
    import torch

    from . import _compare_cost

    torch.set_num_threads(1)  # the figures do not depend on threads; the machine is shared
    return _compare_cost.convert_row(name, checkpoint_dir=checkpoint_dir)


def _cells(row: dict, targets: list[str]) -> list[str]:
    metric = row.get("metric")
    m = "- (untrained)" if metric is None else (
        "-" if metric["value"] is None else f"{metric['value']:g} {metric['metric']}")
    if "error" in row:
        return [row["model"], f"{row['params']:,}" if "params" in row else "-"] + ["-"] * 4 + \
            [f"FAILED: {row['error']}"] + [""] * (len(targets) - 1) + [m]
    arena = "-" if row["arena_bytes"] is None else f"{row['arena_bytes'] / 1024:.1f}"
    lat = {r["target"]: r for r in row["targets"]}
    verdict = {True: "", False: " NO", None: " ?"}
    cells = [row["model"], f"{row['params']:,}", f"{row['macs']:,}", str(row["ops"]),
             f"{row['model_bytes'] / 1024:.1f}", arena]
    cells += [f"{lat[t]['latency_ms']:.2f}{verdict[lat[t]['fits']]}" for t in targets]
    return cells + [m]


def _head(targets: list[str]) -> list[str]:
    return ["model", "params", "MACs", "ops", "int8 KB", "arena KB"] + [f"{t} ms" for t in targets] + ["task metric"]


def table_lines(report: dict) -> list[str]:
    """The comparison as aligned text lines, cheapest model first."""
    targets = [t["name"] for t in report["targets"]]
    rows = [_head(targets)] + [_cells(r, targets) for r in report["models"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows] + _why_unknown(report)


def _why_unknown(report: dict) -> list[str]:
    """Why a model has no arena (and so no RAM verdict): what TFLite Micro said."""
    return [f"{r['model']}: arena unknown, {r['arena_error']}" for r in report["models"] if r.get("arena_error")]


_NOTES = ("Latencies are estimates (calibrated MAC model per core, see benchmarks/latency.py), not "
          "measurements; the Ethos-U55 column is the system's Cortex-M55 CPU estimate (vela is run by "
          "python -m benchmarks.run on exported models). A suffix NO = does not fit that target (flash = model + "
          "{flash} KB runtime allowance; RAM = TFLite Micro arena + one input window + {ram} KB allowance; real "
          "time = inference per hop < hop); ? = unknown (no arena). Models without a shipped checkpoint are built "
          "with their default config and are untrained: no task metric, but the same graph, so the same cost "
          "as once trained. Metrics come from wearable/checkpoints/<model>.metrics.json and differ by task, "
          "so compare them within a task only. int8 scales come from {n} synthetic calibration windows; sizes, "
          "MACs and arena do not depend on them.")


def _markdown(report: dict, png: str | None) -> str:
    targets = [t["name"] for t in report["targets"]]
    head = _head(targets)
    lines = ["# Model comparison", "", _NOTES.format(**report["notes_args"]), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cells(r, targets)) + " |" for r in report["models"]]
    lines += [""] + [f"- {line}" for line in _why_unknown(report)] if _why_unknown(report) else []
    lines += ["", "| model | config | input | task | metric source | op types |", "|---|---|---|---|---|---|"]
    for r in report["models"]:
        metric = r.get("metric") or {}
        lines.append(f"| {r['model']} | {r.get('config_source', '-')} | "
                     f"{r.get('in_channels', '?')} × {r.get('window_samples', '?')} @ {r.get('sampling_rate_hz', '?')} Hz | "
                     f"{metric.get('task') or '-'} | {metric.get('source') or 'no shipped checkpoint'} | "
                     f"{', '.join(r.get('op_types', [])) or r.get('error', '')} |")
    lines += ["", "| target | clock MHz | flash KB | SRAM KB | core |", "|---|---|---|---|---|"]
    lines += [f"| {t['name']} | {t['clock_mhz']:g} | {t['flash_bytes'] // 1024} | {t['sram_bytes'] // 1024} | "
              f"{t['core']} |" for t in report["targets"]]
    if png:
        lines += ["", f"![{png}]({png})"]
    return "\n".join(lines) + "\n"


def _plot(report: dict, path: Path) -> bool:
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in report["models"] if "error" not in r]
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 5))
    for r in ok:
        a.scatter(r["model_bytes"] / 1024, r["macs"], color="C0")
        a.annotate(r["model"], (r["model_bytes"] / 1024, r["macs"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    allowance = report["runtime_allowance"]["flash_bytes"] / 1024
    for i, t in enumerate(report["targets"]):
        a.axvline(t["flash_bytes"] / 1024 - allowance, color=f"C{i + 1}", ls="--", lw=1,
                  label=f"{t['name']} flash − runtime")
    a.set(xscale="log", yscale="log", xlabel="int8 model flash, KB (log)", ylabel="MACs per inference (log)",
          title="MACs vs flash (dashed: flash left for the model on each target)")
    a.legend(fontsize=6)
    ram = [(r["model"], r["targets"][0]["ram_bytes"] / 1024) for r in ok if r["targets"] and r["targets"][0]["ram_bytes"]]
    if ram:
        b.barh([n for n, _ in ram], [v for _, v in ram], color="C0", label="RAM needed (arena + window + allowance)")
    for i, t in enumerate(report["targets"]):
        b.axvline(t["sram_bytes"] / 1024, color=f"C{i + 1}", ls="--", lw=1, label=f"{t['name']} SRAM")
    b.set(xscale="log", xlabel="KB (log)", title="RAM needed vs each target's SRAM (no bar: arena unknown)")
    b.tick_params(axis="y", labelsize=7)
    b.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        from wearable.models import list_models

        targets = _targets(args)
        registered = list_models()
        names = list(dict.fromkeys(args.model or registered))
        unknown = [n for n in names if n not in registered]
        if unknown:
            raise ValueError(f"unknown model {unknown[0]!r}; registered: {', '.join(registered)}")
        if args.jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
        if args.checkpoints and not Path(args.checkpoints).is_dir():
            raise ValueError(f"--checkpoints {args.checkpoints} is not a directory")
    except (TargetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: cannot create {out}: {exc}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    rows = compare_models(names, targets, checkpoint_dir=args.checkpoints, out_dir=out if args.keep_tflite else None,
                          progress=not args.quiet, jobs=args.jobs)
    rows.sort(key=lambda r: ("error" in r, r.get("macs", 0), r["model"]))
    m4f = next((t for t in load_targets(args.targets).values() if t.core == "cortex-m4f"), None)
    allowance = runtime_allowance()
    from ._compare_cost import CALIBRATION_WINDOWS

    report = {"schema_version": 1, "models": rows, "runtime_allowance": allowance,
              "notes_args": {"flash": allowance["flash_bytes"] // 1024, "ram": allowance["ram_bytes"] // 1024,
                             "n": CALIBRATION_WINDOWS},
              "calibration": calibration_report(m4f.cycles_per_mac, m4f.cycles_per_op) if m4f else [],
              "targets": [{"name": t.name, "kind": t.kind, "core": t.core, "clock_mhz": t.clock_mhz,
                           "flash_bytes": t.flash_bytes, "sram_bytes": t.sram_bytes} for t in targets]}
    png = out / "compare.png"
    has_png = _plot(report, png)
    (out / "compare.json").write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    (out / "compare.md").write_text(_markdown(report, png.name if has_png else None))
    for line in table_lines(report):
        print(line)
    print(_NOTES.format(**report["notes_args"]))
    print(f"{len(rows)} models in {time.monotonic() - t0:.0f} s; wrote {out / 'compare.md'}, {out / 'compare.json'}"
          + (f", {png}" if has_png else " (no PNG: matplotlib is not installed)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
