"""Rhythm of whole recordings from the streaming runtime: ``python -m benchmarks.stream_rhythm``.

Plays Challenge 2017 recordings (300 Hz, resampled inside the runtime) through ``StreamRuntime``
in sensor-sized chunks, exactly as a device or a Pi would, and scores each recording's ``record``
event (``wearable.runtime.record``: the tail is classified, noisy and too-short recordings are
``inconclusive``) against ``REFERENCE.csv``: the challenge score (mean F1 of normal, AF and other),
F1 per label, record-level AF sensitivity and specificity (inconclusive counts as "not AF") and
how many recordings came out inconclusive.

Which recordings: ``--split test`` (default) or ``val`` of the project's split (the artifact's
data seed, fold 0), or ``--split all`` for every recording that ``REFERENCE.csv`` in
``--data-dir`` lists (recordings held back from training, in their own folder).

Exit codes: 0 measured; 2 bad input (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "stream_record"]


def stream_record(artifact, signal: np.ndarray, sampling_rate: float, *, chunk: int, interpreter=None) -> dict:
    """The ``record`` event of one recording streamed in chunks of ``chunk`` samples."""
    from wearable.runtime import StreamRuntime

    rt = StreamRuntime(artifact, sampling_rate=sampling_rate, resample=sampling_rate != artifact.sampling_rate,
                       interpreter=interpreter)
    events = []
    for i in range(0, len(signal), chunk):
        events += rt.push(signal[i:i + chunk])
    events += rt.flush()
    (record,) = [e for e in events if e["type"] == "record"]
    return record


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.stream_rhythm", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifact", type=Path, help="artifact directory of a rhythm model (labels normal, af, other, noisy)")
    p.add_argument("--data-dir", type=Path, required=True, help="folder with challenge2017/ or the recordings themselves")
    p.add_argument("--split", choices=("test", "val", "all"), default="test", help="(default: %(default)s)")
    p.add_argument("--limit", type=int, default=0, help="score only the first N recordings; 0 = all (default: 0)")
    p.add_argument("--chunk", type=int, default=30, help="samples per push (default: 30 = 100 ms at 300 Hz)")
    p.add_argument("--out", type=Path, help="also write the figures and every recording's decision as JSON here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from wearable.data import DataError, challenge2017_read, challenge2017_reference, challenge2017_split, challenge_score
    from wearable.runtime import ArtifactError, load_artifact, load_interpreter

    try:
        if args.chunk < 1 or args.limit < 0:
            raise ValueError("--chunk must be >= 1 and --limit >= 0")
        art = load_artifact(args.artifact)
        labels = tuple(art.labels or ())
        if not {"normal", "af", "other"} <= set(labels):
            raise ValueError(f"{args.artifact}: not a rhythm model (labels: {', '.join(labels)})")
        reference = challenge2017_reference(args.data_dir)
        if args.split == "all":
            names = sorted(reference)
        else:
            seed = int((art.manifest.get("data") or {}).get("seed") or 0)
            names = list(challenge2017_split(reference, seed=seed)[args.split])
        names = names[:args.limit] if args.limit else names
        interp = load_interpreter(art.model, default_delegates=True)
    except (ValueError, OSError, DataError, ArtifactError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    from tqdm.auto import tqdm

    truth, pred, rows, wall, signal_s = [], [], [], 0.0, 0.0
    for name in tqdm(names, desc=art.name, unit="rec", disable=args.quiet):
        try:
            rec = challenge2017_read(args.data_dir, name)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        start = time.perf_counter()
        decision = stream_record(art, rec.signal.astype(np.float32), rec.sampling_rate, chunk=args.chunk,
                                 interpreter=interp)
        wall += time.perf_counter() - start
        signal_s += rec.signal.size / rec.sampling_rate
        truth.append(reference[name])
        pred.append(decision["label"])
        rows.append({"record": name, "truth": reference[name], **decision})
    scores = challenge_score(truth, pred)
    inconclusive = sum(x == "inconclusive" for x in pred)
    print(f"{art.name}: {len(names)} recordings ({args.split}), challenge score {scores['score']:.4f} "
          f"(F1 normal {scores['f1_normal']:.3f}, af {scores['f1_af']:.3f}, other {scores['f1_other']:.3f}, "
          f"noisy {scores['f1_noisy']:.3f}), AF Se {100 * scores['af_se']:.1f} %, Sp {100 * scores['af_sp']:.1f} %, "
          f"{inconclusive} inconclusive; streamed in chunks of {args.chunk} samples, "
          f"{signal_s / max(wall, 1e-9):.0f}x real time")
    if args.out is not None:
        args.out.write_text(json.dumps({"model": art.name, "split": args.split, "chunk": args.chunk,
                                        "scores": scores, "inconclusive": inconclusive, "records": rows},
                                       indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
