"""``python -m benchmarks.run``: benchmark exported models on wearable targets and on this machine.

For every artifact directory (an export with ``manifest.json``) and every target profile it
reports flash, RAM, MACs, latency, duty cycle, energy per hour and a fit verdict, writes
``report.md``, ``report.json`` and PNG plots (when matplotlib is installed) into ``--out``, and
prints the table. MCU latencies are estimates (calibrated MAC model), the Ethos-U55 figure is
vela's estimate, and host/Raspberry Pi figures are measured here. Needs only numpy and one TFLite
runtime; tflite-micro and ethos-u-vela add measurements/estimates when installed. A stateful
streaming export (python -m quantize.stream_export) given among the directories is paired with
the window model it streams: the report compares their compute, in MACs per second of signal,
at the shipped hop, W/2 and W/4 against the stream.

Exit codes: 0 done; 2 bad input (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from pathlib import Path

from . import bench, measure
from .artifacts import ArtifactError, find_artifacts, load_artifact
from .latency import calibration_report
from .report import streaming_lines, table_lines, write_report
from .targets import Target, TargetError, load_targets, runtime_allowance
from .firmware import firmware_sizes
from .stream_compute import compute_rows
from .vela import run_vela, vela_available

__all__ = ["main"]

log = logging.getLogger("benchmarks")


class _Progress:
    """A one-line progress bar on stderr (no tqdm: the Pi environment has numpy only)."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.done, self.enabled, self.t0 = max(total, 1), 0, enabled, time.monotonic()
        self.tty = sys.stderr.isatty()

    def step(self, label: str) -> None:
        if not self.enabled:
            return
        filled = int(30 * self.done / self.total)
        line = f"[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} {label} ({time.monotonic() - self.t0:.1f} s)"
        sys.stderr.write(("\r\033[K" + line) if self.tty else line + "\n")
        sys.stderr.flush()
        self.done += 1

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[1].replace("``", ""),
                                epilog="Exit codes: 0 done; 2 bad input.")
    p.add_argument("artifacts", nargs="*", default=["artifacts"], metavar="ARTIFACT_DIR",
                   help="an export directory or a folder of them (default: artifacts)")
    p.add_argument("--target", action="append", metavar="NAME",
                   help="benchmark only this target (repeatable; default: all, plus 'host' = this machine)")
    p.add_argument("--targets", metavar="FILE", help="extra target profiles (JSON, same shape as benchmarks/targets.json)")
    p.add_argument("--list-targets", action="store_true", help="list the target profiles and exit")
    p.add_argument("--out", default="benchmark_report", metavar="DIR", help="report directory (default: benchmark_report)")
    p.add_argument("--invokes", type=int, default=200, metavar="N", help="timed invokes per runtime (default 200, at least 200 for the report's p99)")
    p.add_argument("--warmup", type=int, default=20, metavar="N", help="untimed invokes first (default 20)")
    p.add_argument("--no-measure", action="store_true", help="estimates only: do not time any runtime here")
    p.add_argument("--no-vela", action="store_true", help="skip the ethos-u-vela estimate")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def _select(targets: dict[str, Target], names: list[str] | None) -> list[Target]:
    host = Target(name=bench.HOST_TARGET, kind="host", description=f"this machine ({platform.machine()}, "
                  f"{platform.system()}; {bench.host_device_model() or platform.processor() or 'unknown CPU'})",
                  clock_mhz=1.0, sram_bytes=0, flash_bytes=0, active_power_mw=0.0, sources=("measured here",))
    every = {**targets, bench.HOST_TARGET: host}
    if not names:
        return list(every.values())
    unknown = [n for n in names if n not in every]
    if unknown:
        raise TargetError(f"unknown target {unknown[0]!r}; known: {', '.join(every)}")
    return [every[n] for n in dict.fromkeys(names)]


def _split_streams(found: list) -> tuple[list, dict]:
    """Window exports, and for each (by path) the compute of its stateful streaming export when
    one was given (same model name and config); a streaming export without its window model is
    an error."""
    arts = [a for a in found if not isinstance(a.manifest.get("stream"), dict)]
    streams: dict = {}
    for st in (a for a in found if isinstance(a.manifest.get("stream"), dict)):
        model = st.manifest.get("model", {})
        match = [a for a in arts if a.name == model.get("name") and a.manifest["model"].get("config") == model.get("config")]
        if not match:
            raise ArtifactError(f"{st.path} is a stateful streaming export of {model.get('name')}; give its window model's "
                                "export (python -m quantize.export) too")
        s = st.manifest["stream"]
        for art in match:
            streams[art.path] = {
                "path": str(st.path), "block_samples": int(s["block_samples"]), "delay_samples": int(s["delay_samples"]),
                "delay_ms": 1000 * int(s["delay_samples"]) / art.sampling_rate, "ops": st.manifest.get("op_count"),
                "model_bytes": len(st.model), "arena_bytes": st.manifest.get("tflm", {}).get("arena_bytes"),
                "int8_vs_offline_int8_max_steps": st.manifest.get("checks", {}).get("int8_vs_offline_int8_max_steps"),
                "rows": compute_rows(art.model, st.model, rate_hz=art.sampling_rate, window=art.window, hop=art.hop,
                                     block=int(s["block_samples"])),
            }
    return arts, streams


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        profiles = load_targets(args.targets)
        if args.list_targets:
            for t in profiles.values():
                print(f"{t.name:14s} {t.kind:5s} {t.description}")
            return 0
        targets = _select(profiles, args.target)
        if args.invokes < 1 or args.warmup < 0:
            raise ValueError("--invokes must be ≥ 1 and --warmup ≥ 0")
        found = [load_artifact(p, all_files=True) for p in find_artifacts(args.artifacts)]
        arts, streams = _split_streams(found)
    except (TargetError, ArtifactError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    here = bench.host_device_model()
    measure_here = not args.no_measure and any(
        t.kind == "host" and (t.name == bench.HOST_TARGET or (t.device_model and here.startswith(t.device_model)))
        for t in targets)
    runtimes = measure.available_runtimes() if measure_here else {}
    want_vela = not args.no_vela and any(t.kind == "npu" for t in targets)
    has_vela = want_vela and vela_available()
    progress = _Progress(len(arts) * (1 + len(runtimes) + int(has_vela)), enabled=not args.quiet)
    models = []
    for art in arts:
        progress.step(f"{art.name}: graph")
        fig = bench.static_figures(art)
        host: dict = {}
        for rt, python in runtimes.items():
            progress.step(f"{art.name}: {rt}")
            host[rt] = measure.measure_runtime(rt, art.path / "model_int8.tflite", art.golden,
                                               invokes=args.invokes, warmup=args.warmup, python=python)
            if "arena_bytes" in host[rt]:  # re-measured by tflite-micro now
                fig["arena_bytes"], fig["arena_source"] = host[rt].pop("arena_bytes"), "measured now (tflite-micro)"
        vela = None
        if has_vela:
            progress.step(f"{art.name}: vela")
            vela = run_vela(art.path / "model_int8.tflite")
        elif want_vela:
            vela = {"error": "ethos-u-vela is not installed (pip install ethos-u-vela==5.2.0)"}
        notes = []
        if not runtimes and not args.no_measure:
            notes.append("no TFLite runtime measured on this machine")
        if measure_here and "tflite_micro" not in runtimes:
            notes.append("tflite-micro not installed: TFLM arena taken from the manifest, no TFLM timing")
        fig.update(host=host, vela=vela, notes=notes, firmware=firmware_sizes(art.path), streaming=streams.get(art.path),
                   targets=bench.target_rows(fig, targets, host=host, vela=vela, device_model=here))
        models.append(fig)
    progress.close()
    m4f = next((t for t in profiles.values() if t.core == "cortex-m4f"), None)
    report = {
        "schema_version": 1,
        "machine": {"description": _select({}, [bench.HOST_TARGET])[0].description, "python": platform.python_version(),
                    "runtimes": sorted(runtimes)},
        "runtime_allowance": runtime_allowance(),
        "calibration": calibration_report(m4f.cycles_per_mac, m4f.cycles_per_op) if m4f else [],
        "target_profiles": [{"name": t.name, "kind": t.kind, "description": t.description, "sources": list(t.sources),
                             "core": t.core, "core_source": t.core_source, "cycles_per_mac": t.cycles_per_mac,
                             "cycles_per_op": t.cycles_per_op} for t in targets],
        "models": models,
    }
    out = Path(args.out)
    try:
        written = write_report(report, out)
    except OSError as exc:
        print(f"error: cannot write the report to {out}: {exc}", file=sys.stderr)
        return 2
    for line in table_lines(report):
        print(line)
    if any(m.get("streaming") for m in models):
        print("\nsliding windows vs stateful streaming, MACs per second of signal:")
    for line in streaming_lines(report):
        print(line)
    for m in models:
        for rt, v in m["host"].items():
            print(f"{m['model']} on this machine, {rt}: " + (v["error"] if "error" in v else
                  f"p50 {v['p50_ms']} ms, p90 {v['p90_ms']} ms, p99 {v['p99_ms']} ms over {v['n']} invokes, "
                  f"peak RSS {v['peak_rss_kb'] / 1024:.1f} MB"))
    print(f"measured here: {', '.join(sorted(runtimes)) or 'nothing'}; MCU and NPU figures are estimates")
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
