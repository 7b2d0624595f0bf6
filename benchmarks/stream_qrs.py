"""QRS detection measured on the streaming runtime's event stream: ``python -m benchmarks.stream_qrs``.

Plays MIT-BIH records (MLII, at their own 360 Hz, resampled inside the runtime) through
``StreamRuntime`` in sensor-sized chunks, exactly as a device would, and scores the ``beat``
events against the reference beat annotations: a detection within ``--tolerance-ms`` (150)
of an annotated beat is a true positive (greedy one-to-one), Se = TP/(TP+FN),
+P = TP/(TP+FP), per record and gross over all records (ANSI/AAMI EC57 style). The first
window of each record cannot produce beats (the runtime needs a full window), so beats
before it are not counted; everything after is.

Needs an artifact of a segmentation model with a ``qrs`` label and the records (``--data-dir``).
Exit codes: 0 measured; 2 bad input (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "stream_beats"]


def stream_beats(artifact, signal: np.ndarray, sampling_rate: float, *, chunk: int) -> tuple[np.ndarray, float]:
    """Beat times (s) from the runtime's events for one record, and the wall time it took."""
    from wearable.runtime import StreamRuntime

    rt = StreamRuntime(artifact, sampling_rate=sampling_rate, resample=sampling_rate != artifact.sampling_rate)
    start, beats = time.perf_counter(), []
    for i in range(0, len(signal), chunk):
        beats += [e["t"] for e in rt.push(signal[i:i + chunk]) if e["type"] == "beat"]
    beats += [e["t"] for e in rt.flush() if e["type"] == "beat"]
    return np.asarray(beats, dtype=np.float64), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.stream_qrs", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("artifact", type=Path, help="artifact directory of a QRS segmentation model")
    p.add_argument("--data-dir", type=Path, required=True, help="folder with the MIT-BIH records")
    p.add_argument("--records", nargs="*", help="record names (default: DS2, the inter-patient test set)")
    p.add_argument("--tolerance-ms", type=float, default=150.0)
    p.add_argument("--chunk", type=int, default=36, help="samples per push (36 = 100 ms at 360 Hz)")
    p.add_argument("--out", type=Path, help="also write the figures as JSON here")
    p.add_argument("--quiet", action="store_true", help="no per-record lines")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from wearable.data import DS2, mitdb_read, mitdb_records
    from wearable.metrics import detections_match
    from wearable.runtime import load_artifact

    try:
        if args.chunk < 1 or args.tolerance_ms <= 0:
            raise ValueError("--chunk must be >= 1 and --tolerance-ms > 0")
        art = load_artifact(args.artifact)
        if "qrs" not in (art.labels or ()):
            raise ValueError(f"{args.artifact}: the model has no 'qrs' label (labels: {art.labels})")
        present = set(mitdb_records(args.data_dir))
        names = [r for r in (args.records or DS2) if r in present]
        if not names:
            raise ValueError(f"none of the records are in {args.data_dir}")
    except (ValueError, OSError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    window_s = art.window / art.sampling_rate
    rows, total, wall, signal_s = [], {"tp": 0, "fn": 0, "fp": 0}, 0.0, 0.0
    for name in names:
        rec = mitdb_read(args.data_dir, name)
        beats, seconds = stream_beats(art, rec.signal.astype(np.float32), rec.sampling_rate, chunk=args.chunk)
        ref = rec.beat_samples / rec.sampling_rate
        ref = ref[ref >= window_s]
        counts = detections_match(ref, beats[beats >= window_s - args.tolerance_ms / 1e3],
                                  tolerance=args.tolerance_ms / 1e3)
        total = {k: total[k] + counts[k] for k in total}
        wall, signal_s = wall + seconds, signal_s + len(rec.signal) / rec.sampling_rate
        rows.append({"record": name, **counts, **_rates(counts)})
        if not args.quiet:
            print(f"{name}: beats {len(ref)}, TP {counts['tp']}, FN {counts['fn']}, FP {counts['fp']}, "
                  f"Se {rows[-1]['se_pct']:.2f} %, +P {rows[-1]['ppv_pct']:.2f} %", file=sys.stderr, flush=True)
    gross = {**total, **_rates(total)}
    print(f"{art.name}: {len(names)} records, {total['tp'] + total['fn']} beats, QRS Se {gross['se_pct']:.2f} %, "
          f"+P {gross['ppv_pct']:.2f} % (tolerance {args.tolerance_ms:g} ms, streamed in chunks of {args.chunk} "
          f"samples at {rec.sampling_rate:g} Hz, {signal_s / max(wall, 1e-9):.0f}x real time)")
    if args.out is not None:
        args.out.write_text(json.dumps({"model": art.name, "tolerance_ms": args.tolerance_ms, "chunk": args.chunk,
                                        "gross": gross, "records": rows}, indent=1) + "\n")
    return 0


def _rates(c: dict) -> dict:
    se = 100.0 * c["tp"] / max(1, c["tp"] + c["fn"])
    ppv = 100.0 * c["tp"] / max(1, c["tp"] + c["fp"])
    return {"se_pct": round(se, 3), "ppv_pct": round(ppv, 3)}


if __name__ == "__main__":
    sys.exit(main())
