"""Motion-artifact segments measured on the streaming runtime's event stream: ``python -m benchmarks.stream_artifacts``.

Simulates PPG records (``wearable.data.ecg_ppg_simulate``, rhythms sinus / ectopic / af in
turn) with one segment of each motion-artifact kind (``ppg_artifacts_add``: exact per-sample
masks), plays them through ``StreamRuntime`` in sensor-sized chunks and scores the model's
``artifact`` events (from a second output named by the manifest's ``mask_labels``, the PPG
dual-stream model's mask) against the true masks, per sample after the first window: Se
(artifact samples inside an event), precision, IoU; and per segment: true segments touched by
an event, events touching no true segment. The runtime divides the PPG by a fixed scale: here
each record's robust std of its band-passed signal, as the training windows were scaled.

Needs an artifact whose manifest names ``mask_labels`` with a ``clean`` label, and the training
environment (``wearable.data`` simulates the records; like ``stream_qrs``, this is an accuracy
benchmark, not one of the Pi's).
Exit codes: 0 measured; 2 bad input (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

__all__ = ["main", "score_record"]

_RHYTHMS = ("normal", "ectopic", "af")  # simulator names of the PPG model's sinus / ectopic / af


def score_record(artifact, seconds: float, seed: int, *, chunk: int) -> dict:
    """Stream one simulated record; per-sample and per-segment counts of its artifact events."""
    from wearable.data import ecg_ppg_simulate, ppg_clean
    from wearable.data.ppg_artifacts import ppg_artifacts_add
    from wearable.runtime import StreamRuntime
    from wearable.runtime.dsp import robust_std

    fs = artifact.sampling_rate
    rec = ecg_ppg_simulate(seconds, sampling_rate=fs, rhythm=_RHYTHMS[seed % 3], seed=seed)
    raw, mask = ppg_artifacts_add(rec.ppg, sampling_rate=fs, seed=seed)
    filtered = ppg_clean(raw, sampling_rate=fs)
    rt = StreamRuntime(artifact, ppg_scale=robust_std(filtered))
    events = []
    for i in range(0, len(raw), chunk):
        events += rt.push(raw[i:i + chunk])
    events += rt.flush()
    spans = [(int(round(e["start"] * fs)), int(round(e["end"] * fs))) for e in events
             if e["type"] == "artifact" and e["kind"] != "clean"]
    pred = np.zeros(len(raw), dtype=bool)
    for a, b in spans:
        pred[a:b] = True
    lo = artifact.window  # the first window's samples are final like any other, but start the stream
    truth, pred_s = mask[lo:] > 0, pred[lo:]
    edges = np.flatnonzero(np.diff(np.concatenate([[0], (mask > 0).astype(np.int8), [0]])))
    segments = [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b > lo]
    return {"seed": seed, "samples": int(truth.size), "tp": int((truth & pred_s).sum()), "fn": int((truth & ~pred_s).sum()),
            "fp": int((~truth & pred_s).sum()), "segments": len(segments),
            "segments_hit": sum(bool(pred[a:b].any()) for a, b in segments),
            "events": len(spans), "events_false": sum(not (mask[a:b] > 0).any() for a, b in spans)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.stream_artifacts", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("artifact", type=Path, help="artifact directory of a model with an artifact mask output")
    p.add_argument("--records", type=int, default=20, help="simulated records (seeds 0..N-1)")
    p.add_argument("--seconds", type=float, default=120.0, help="length of each record")
    p.add_argument("--chunk", type=int, default=25, help="samples per push")
    p.add_argument("--out", type=Path, help="also write the figures as JSON here")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from wearable.runtime import load_artifact

    try:
        if args.records < 1 or args.chunk < 1:
            raise ValueError("--records and --chunk must be >= 1")
        art = load_artifact(args.artifact)
        if "clean" not in art.mask_labels:
            raise ValueError(f"{args.artifact}: the manifest names no artifact mask output "
                             f"(data.mask_labels with 'clean'; got {art.mask_labels})")
        if not args.seconds * art.sampling_rate >= 2 * art.window:
            raise ValueError(f"--seconds must cover at least two windows ({2 * art.window / art.sampling_rate:g} s)")
    except (ValueError, OSError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    rows = [score_record(art, args.seconds, seed, chunk=args.chunk) for seed in range(args.records)]
    tot = {k: sum(r[k] for r in rows) for k in rows[0] if k != "seed"}
    gross = {"se_pct": round(100 * tot["tp"] / max(1, tot["tp"] + tot["fn"]), 2),
             "precision_pct": round(100 * tot["tp"] / max(1, tot["tp"] + tot["fp"]), 2),
             "iou": round(tot["tp"] / max(1, tot["tp"] + tot["fn"] + tot["fp"]), 3),
             "segments_hit_pct": round(100 * tot["segments_hit"] / max(1, tot["segments"]), 1),
             "events": tot["events"], "events_false": tot["events_false"]}
    print(f"{art.name}: {args.records} simulated records of {args.seconds:g} s, {tot['segments']} artifact segments "
          f"({100 * (tot['tp'] + tot['fn']) / tot['samples']:.1f} % of the scored samples); per sample Se {gross['se_pct']:.2f} %, precision {gross['precision_pct']:.2f} %, "
          f"IoU {gross['iou']:.3f}; segments hit {gross['segments_hit_pct']:.1f} %; "
          f"{tot['events']} events, {tot['events_false']} on clean signal only")
    if args.out is not None:
        args.out.write_text(json.dumps({"model": art.name, "records": args.records, "seconds": args.seconds,
                                        "chunk": args.chunk, "gross": gross, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
