"""Play a WFDB or CSV record through the streaming runtime and write its events as JSON lines.

    python -m wearable.stream artifacts/dscnn_tiny --record ../shared/data/mitdb/100
    python -m wearable.stream artifacts/dscnn_tiny --record ecg.csv --sampling-rate 250 --out events.jsonl
    python -m wearable.stream artifacts/dscnn_tiny --record ../shared/data/mitdb/100 --realtime --plot ev.png

The record is fed in chunks (``--chunk`` samples) as fast as possible, or paced at real time
with ``--realtime``; the sensor rate is resampled to the model's unless ``--no-resample``.
Progress and a summary go to stderr, events to ``--out`` (default stdout); a rhythm model's
summary ends with the record decision (``record`` event: one label for the whole record, the
share of windows per label, e.g. the AF burden). Exit 2 with one
``error:`` line on bad input (missing or tampered artifact, unreadable record, rate mismatch,
a non-positive or non-finite rate or duration, a header rate that is not a number, a CSV row
with another number of cells than the first, an unwritable ``--out``); exit 141, silently,
when the reader of the events goes away (``| head``). Stderr holds only our lines: the TFLite
runtime's log lines are dropped.
Needs numpy and a TFLite runtime; ``wfdb`` for WFDB records and ``matplotlib`` for ``--plot``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from .runtime import ArtifactError, RateMismatchError, RuntimeUnavailableError, StreamRuntime, load_artifact
from .runtime.interpreter import BACKENDS
from .runtime.dsp import robust_std

__all__ = ["main", "read_record", "select_channel"]

_PER_WINDOW = ("class", "estimate")  # one event per window: written only with --class-events


class _InputError(ValueError):
    pass


def read_record(path: str, *, sampling_rate: float | None = None, channel: str | None = None,
                column: int = 0, kind: str | None = None) -> tuple[np.ndarray, float, str]:
    """``(samples (n,), sampling rate Hz, description)`` from a WFDB record path or a CSV file.

    CSV: one sample per row, ``column`` picks the column, a non-numeric first row is a header,
    empty or non-numeric cells become NaN (the runtime reports them); ``sampling_rate`` is required.
    WFDB: the path without extension; ``channel`` names the signal (a trailing comma, as BIDMC
    writes its names, need not be given). Without it the signal is chosen by the model input's
    channel ``kind`` (``select_channel``); without a kind, MLII, else the first.
    """
    p = Path(path)
    if p.suffix.lower() in (".csv", ".txt"):
        if sampling_rate is None:
            raise _InputError("a CSV record needs --sampling-rate")
        if not p.is_file():
            raise _InputError(f"record {p} not found")
        return _read_csv(p, column), float(sampling_rate), f"{p.name} column {column}"
    hea = next((h for h in (Path(str(p) + ".hea"), p.with_suffix(".hea")) if h.is_file()), None)
    if hea is None:
        raise _InputError(f"record {p}: no {p.name}.hea (give a WFDB record path without extension, or a .csv)")
    try:
        import wfdb
    except ImportError:
        raise _InputError("reading WFDB records needs the wfdb package (pip install wfdb)") from None
    try:
        rec = wfdb.rdrecord(str(p))
    except Exception as exc:  # wfdb raises many types for corrupt files
        raise _InputError(f"record {p}: unreadable ({type(exc).__name__}: {exc})") from None
    names = list(rec.sig_name)
    try:
        name = select_channel(names, channel=channel, kind=kind)
    except ValueError as exc:
        raise _InputError(f"record {p}: {exc}") from None
    x = rec.p_signal[:, names.index(name)].astype(np.float64)
    fs = _header_fs(hea)
    if fs is None:  # the format's default would be 250 Hz: a guess we do not make for the user
        if sampling_rate is None:
            raise _InputError(f"record {p}: the header gives no sampling frequency; give --sampling-rate")
        fs = sampling_rate
    if sampling_rate is not None and abs(sampling_rate - fs) > 1e-9:
        raise _InputError(f"--sampling-rate {sampling_rate:g} contradicts the record header's {fs:g} Hz")
    return x, fs, f"{p.name} {name} ({rec.units[names.index(name)]})"


def _bare(name: str) -> str:
    """A signal name without case, blanks and the trailing comma BIDMC writes ("PLETH," -> "PLETH")."""
    return name.strip().rstrip(",").strip().upper()


def select_channel(names: list[str], *, channel: str | None = None, kind: str | None = None) -> str:
    """The signal of a record to play: ``channel`` when given, else the one of the model's ``kind``.

    ``kind`` "ecg*": lead II (MLII, II) when the record has it, else its only ECG lead; "ppg": its
    only PLETH/PPG signal. ``ValueError`` naming the signals when none or several fit, since
    another signal (a PPG model on BIDMC's respiration) would give confident nonsense.

    >>> select_channel(["RESP,", "PLETH,", "V,", "AVR,", "II,"], kind="ppg")
    'PLETH,'
    >>> select_channel(["V5", "V2", "MLII"], kind="ecg")
    'MLII'
    """
    listing = ", ".join(repr(n) for n in names)
    if channel is not None:
        found = [n for n in names if n == channel] or [n for n in names if _bare(n) == _bare(channel)]
        if len(found) != 1:
            raise ValueError(f"{'no' if not found else 'more than one'} channel {channel!r} among {listing}")
        return found[0]
    if kind is None:
        return "MLII" if "MLII" in names else names[0]
    if kind.startswith("ecg"):
        fits = [n for n in names if _ECG_NAME.fullmatch(_bare(n))]
        fits = [n for n in fits if _bare(n) in ("MLII", "II")] or fits
    elif kind == "ppg":
        fits = [n for n in names if _PPG_NAME.fullmatch(_bare(n))]
    else:
        raise ValueError(f"no rule chooses a {kind!r} channel among {listing}; give --channel")
    if len(fits) != 1:
        which = "no" if not fits else f"{len(fits)}"
        raise ValueError(f"{which} {kind.upper()} channels among {listing} for a model of {kind} input; "
                         "give --channel")
    return fits[0]


# ECG lead names as WFDB databases write them (MIT-BIH MLII/V1-V5, BIDMC II/V/AVR, Challenge 2017 ECG)
_ECG_NAME = re.compile(r"(ML)?(I{1,3}|AV[RLF]|V[1-6]?)|(ECG|EKG)[ _-]?\w*|LEAD[ _-]?\w+")
_PPG_NAME = re.compile(r"PLETH\w*|PPG\w*")


def _read_csv(p: Path, column: int) -> np.ndarray:
    """Column ``column`` of a CSV file, one sample per row (see ``read_record``).

    Every row must have as many cells as the first data row: a row with a missing or extra cell
    is refused, naming its line, since skipping it would shift every later sample in time.
    """
    try:
        lines = p.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise _InputError(f"{p}: unreadable CSV ({exc})") from None
    start = 1 if lines and any(c.strip() and _number(c) is None for c in lines[0].split(",")) else 0  # header
    first = next((i for i in range(start, len(lines)) if lines[i].strip()), None)
    if first is None:
        raise _InputError(f"{p}: no column {column} of numbers")
    width = len(lines[first].split(","))
    if column >= width:
        raise _InputError(f"{p}: no column {column} of numbers (line {first + 1} has {width})")
    x = np.full(len(lines) - start, np.nan)
    for i in range(start, len(lines)):
        if not lines[i].strip():
            continue  # a blank line is a missing sample (NaN), not nothing: time must not shift
        cells = lines[i].split(",")
        if len(cells) != width:
            raise _InputError(f"{p}: line {i + 1} has {len(cells)} columns, the first data row (line "
                              f"{first + 1}) has {width}")
        value = _number(cells[column])
        if value is not None:
            x[i - start] = value  # empty or non-numeric cells stay NaN: the runtime reports them
    return x


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _header_fs(hea: Path) -> float | None:
    """The sampling frequency on a WFDB header's record line (None when the line has none).

    Read here because ``wfdb`` takes an unparsable frequency ("abc", "nan", "-5") for the
    format's default of 250 Hz, and a record read at the wrong rate gives wrong events silently.
    """
    try:
        text = hea.read_text(errors="replace")
    except OSError as exc:
        raise _InputError(f"{hea}: unreadable ({exc})") from None
    line = next((s for s in text.splitlines() if s.strip() and not s.lstrip().startswith("#")), "")
    fields = line.split()
    if len(fields) < 3:
        return None
    fs = _number(fields[2].split("/")[0])
    if fs is None or not (np.isfinite(fs) and fs > 0):
        raise _InputError(f"{hea}: sampling frequency {fields[2]!r} is not a positive number of Hz")
    return fs


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m wearable.stream", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Events (JSON lines): class, estimate, rhythm, artifact, beat, hr; "
                                        "times in seconds of stream time. See wearable.runtime.streaming.")
    ap.add_argument("artifact", metavar="ARTIFACT_DIR", help="an exported artifact (manifest.json, model_int8.tflite)")
    ap.add_argument("--record", required=True, metavar="PATH", help="WFDB record path without extension, or a .csv")
    ap.add_argument("--sampling-rate", type=float, metavar="HZ", help="sensor rate (required for CSV)")
    ap.add_argument("--channel", metavar="NAME",
                    help="WFDB signal name (default: the record's signal of the model's channel kind: lead II "
                         "or its only ECG lead; its only PLETH/PPG signal)")
    ap.add_argument("--column", type=int, default=0, metavar="N", help="CSV column (default 0)")
    ap.add_argument("--seconds", type=float, metavar="S", help="play only the first S seconds")
    ap.add_argument("--chunk", type=int, default=256, metavar="N",
                    help="samples per push (default 256; events do not depend on it; each push "
                         "costs some tens of microseconds of Python)")
    ap.add_argument("--realtime", action="store_true", help="pace the chunks at the sensor rate")
    ap.add_argument("--no-resample", action="store_true", help="refuse a sensor rate that differs from the model's")
    ap.add_argument("--smoothing", type=int, default=3, metavar="K", help="mean of the last K windows (default 3)")
    ap.add_argument("--threshold", type=float, default=0.5, metavar="P",
                    help="below this smoothed probability the decision is 'inconclusive' (default 0.5)")
    ap.add_argument("--rails", type=float, nargs=2, metavar=("LOW", "HIGH"),
                    help="sensor rails: a sample at one is saturation, beyond one out of range (default range: "
                         "ECG +-20 mV, PPG +-2**32)")
    ap.add_argument("--ppg-scale", default="auto", metavar="S",
                    help="PPG models: divide the band-passed PPG by S, as training divided each record by its "
                         "robust std; 'auto' (default): 1.4826 x MAD of the band-passed first 60 s of the record")
    ap.add_argument("--backend", help="TFLite backend (default: first installed)")
    ap.add_argument("--out", default="-", metavar="FILE", help="JSON-lines file for events (default stdout)")
    ap.add_argument("--class-events", action="store_true",
                    help="also write the per-window 'class' (or a regression model's 'estimate') events")
    ap.add_argument("--plot", metavar="PNG", help="draw a stretch of the model input with the events")
    ap.add_argument("--plot-start", type=float, default=0.0, metavar="S", help="plot from S seconds (default 0)")
    ap.add_argument("--plot-seconds", type=float, default=60.0, metavar="S", help="plot length (default 60)")
    ap.add_argument("--quiet", action="store_true", help="no progress line")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (_InputError, ArtifactError, RateMismatchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader of our events left (``| head``): stop quietly, as a shell tool killed by
        # SIGPIPE would, and keep the interpreter's final flush of stdout from failing again
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _check_args(args: argparse.Namespace) -> None:
    if args.chunk < 1:
        raise _InputError(f"--chunk must be >= 1, got {args.chunk}")
    if not 0.0 <= args.threshold <= 1.0 or args.smoothing < 1:
        raise _InputError("--threshold must be in [0, 1] and --smoothing >= 1")
    # NaN passes no comparison, and a negative --seconds would slice from the end
    positive = {"--sampling-rate": args.sampling_rate, "--seconds": args.seconds, "--plot-seconds": args.plot_seconds}
    for flag, value in positive.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            raise _InputError(f"{flag} must be a positive number, got {value}")
    if not (math.isfinite(args.plot_start) and args.plot_start >= 0):
        raise _InputError(f"--plot-start must be a number >= 0, got {args.plot_start}")
    if args.rails is not None and not all(math.isfinite(v) for v in args.rails):
        raise _InputError(f"--rails must be two finite numbers, got {args.rails}")
    if args.backend is not None and args.backend not in BACKENDS:
        raise _InputError(f"unknown --backend {args.backend!r}; accepted: {', '.join(BACKENDS)}")


def _runtime(art, **kwargs) -> StreamRuntime:
    """``StreamRuntime(art, **kwargs)`` with the TFLite runtime's own log lines (``INFO: Created
    TensorFlow Lite XNNPACK delegate``, written by C++ to file descriptor 2) kept off stderr,
    which holds only our lines; a failure becomes one error line."""
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                return StreamRuntime(art, **kwargs)
            finally:
                os.dup2(saved, 2)
    except (ValueError, RuntimeUnavailableError) as exc:
        raise _InputError(str(exc)) from None
    finally:
        os.close(saved)


def _open_out(path: str):
    if path == "-":
        return sys.stdout
    try:
        return open(path, "w")
    except OSError as exc:
        raise _InputError(f"--out {path}: {exc.strerror or exc}") from None


def _run(args: argparse.Namespace) -> int:
    _check_args(args)
    art = load_artifact(args.artifact)
    if "stream" in art.manifest:
        raise _InputError(f"{args.artifact} is a stateful streaming export (quantize.stream_export); this command "
                          "plays window models: give the window model's artifact")
    x, fs, desc = read_record(args.record, sampling_rate=args.sampling_rate, channel=args.channel,
                              column=args.column, kind=art.channel_kinds[0] if art.channel_kinds else None)
    if args.seconds is not None:
        x = x[: int(round(args.seconds * fs))]
    if len(x) == 0:
        raise _InputError(f"record {args.record} has no samples")
    plot = _PlotCapture(args.plot_start, args.plot_seconds, art.sampling_rate) if args.plot else None
    if args.plot:
        _check_matplotlib()
    rt = _runtime(art, sampling_rate=fs, resample=not args.no_resample, smoothing=args.smoothing,
                  threshold=args.threshold, rails=tuple(args.rails) if args.rails else None,
                  backend=args.backend, on_samples=plot.add if plot else None,
                  ppg_scale=_ppg_scale(args.ppg_scale, art, x, fs, resample=not args.no_resample))
    out = _open_out(args.out)
    counts: Counter = Counter()
    kept: list[dict] = []
    records: list[dict] = []  # the record decision at flush (classification models)
    duration = len(x) / fs
    t_start = time.perf_counter()
    last_progress = 0.0
    def write(events: list[dict]) -> None:
        for e in events:
            counts[e["type"]] += 1
            if e["type"] == "record":
                records.append(e)
            per_window = e["type"] in _PER_WINDOW
            if plot and not per_window:
                kept.append(e)
            if not per_window or args.class_events:
                out.write(json.dumps(e) + "\n")

    try:
        for i in range(0, len(x), args.chunk):
            write(rt.push(x[i:i + args.chunk]))
            now = time.perf_counter()
            done = min(i + args.chunk, len(x)) / fs
            if args.realtime and done > now - t_start:
                time.sleep(done - (now - t_start))
            if not args.quiet and now - last_progress > 0.25:
                last_progress = now
                events = sum(n for kind, n in counts.items() if kind not in _PER_WINDOW)
                print(f"\r{desc}: {done:8.1f} / {duration:.1f} s  windows {rt.windows}  events {events}", end="",
                      file=sys.stderr, flush=True)
        write(rt.flush())
    finally:
        if out is not sys.stdout:
            out.close()
    wall = time.perf_counter() - t_start
    if not args.quiet:
        print(file=sys.stderr)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"{desc}: {duration:.1f} s at {fs:g} Hz -> model {art.sampling_rate:g} Hz, {rt.windows} windows, "
          f"{wall:.2f} s wall ({duration / wall:.0f}x real time); events: {summary}", file=sys.stderr)
    for r in records:
        burden = ", ".join(f"{k} {100 * v:.0f} %" for k, v in r["burden"].items() if v)
        why = f" ({r['reason']})" if r.get("reason") else f" (p {r['p']:.2f})"
        print(f"record: {r['label']}{why} over {r['windows']} windows; window labels: {burden or 'none'}",
              file=sys.stderr)
    if plot:
        ppg = art.channel_kinds[:1] == ["ppg"]  # the plotted channel
        plot.draw(args.plot, kept, title=f"{art.manifest.get('model', {}).get('name', art.path.name)} on {desc}",
                  ylabel="model input (PPG / scale, band-passed)" if ppg else "model input (mV, band-passed)")
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0


def _ppg_scale(value: str, art, x: np.ndarray, fs: float, *, resample: bool) -> float:
    """``--ppg-scale``: a positive number, or 'auto' (robust std of the first 60 s, band-passed as the model's input)."""
    if value != "auto":
        try:
            scale = float(value)
        except ValueError:
            scale = float("nan")
        if not (np.isfinite(scale) and scale > 0):
            raise _InputError(f"--ppg-scale must be 'auto' or a positive number, got {value!r}")
        return scale
    if "ppg" not in art.channel_kinds:
        return 1.0
    from .runtime import Preprocessor

    pre = Preprocessor(art.channels, model_rate=art.sampling_rate, sampling_rate=fs, resample=resample,
                       ppg_clip=np.inf)
    head = np.nan_to_num(np.asarray(x[: int(60 * fs)], dtype=np.float64))
    y = pre(head.reshape(len(head), -1))[int(2 * art.sampling_rate):, 0]  # after the high-pass settles
    scale = robust_std(y) if y.size else 0.0
    if not scale > 1.4826e-9 * max(1e-3, float(np.abs(head).max(initial=0.0))):  # rounding noise of a flat line
        raise _InputError("--ppg-scale auto: the first 60 s of the record are flat; give --ppg-scale S")
    return scale


def _check_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise _InputError("--plot needs matplotlib (pip install matplotlib)") from None


class _PlotCapture:
    """Keeps only the model-rate samples inside the plotted stretch."""

    def __init__(self, start_s: float, seconds: float, rate: float) -> None:
        self.a, self.b, self.rate = int(start_s * rate), int((start_s + seconds) * rate), rate
        self.parts: list[tuple[int, np.ndarray]] = []

    def add(self, m0: int, y: np.ndarray) -> None:
        lo, hi = max(m0, self.a), min(m0 + len(y), self.b)
        if lo < hi:
            self.parts.append((lo, np.array(y[lo - m0:hi - m0, 0])))

    def draw(self, path: str, events: list[dict], *, title: str, ylabel: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(14, 4))
        for lo, y in self.parts:
            ax.plot((lo + np.arange(len(y))) / self.rate, y, color="k", lw=0.6)
        t0, t1 = self.a / self.rate, self.b / self.rate
        colours = plt.get_cmap("tab10")
        seen: dict[str, int] = {}
        for e in events:
            if e["type"] == "rhythm" and e["end"] > t0 and e["start"] < t1:
                c = colours(seen.setdefault(e["label"], len(seen)) % 10)
                ax.axvspan(max(e["start"], t0), min(e["end"], t1), color=c, alpha=0.15, label=f"rhythm: {e['label']}")
            elif e["type"] == "artifact" and e["end"] > t0 and e["start"] < t1:
                ax.axvspan(max(e["start"], t0), min(e["end"], t1), color="red", alpha=0.3, hatch="//",
                           label=f"artifact: {e['kind']}")
            elif e["type"] == "beat" and t0 <= e["t"] < t1:
                ax.axvline(e["t"], color="tab:blue", lw=0.5, alpha=0.6)
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        if uniq:
            ax.legend(uniq.values(), uniq.keys(), loc="upper right", fontsize=8)
        ax.set(xlim=(t0, t1), xlabel="stream time (s)", ylabel=ylabel, title=title)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
