"""A rhythm artifact away from its training data: ``python -m benchmarks.rhythm_robustness``.

Two checks of an exported int8 rhythm model (labels normal, af, other, noisy), run with TFLite's
reference kernels (the ones TFLite Micro reproduces):

- **Cross-dataset, MIT-BIH Arrhythmia** (Holter ECG, 360 Hz, a different device and population; the
  model never trained on it): every record in ``--data-dir``'s mitdb (all 48 by default), MLII
  lead (the first lead where a record has none), cut into the model's windows (every hop) inside the annotated rhythm episodes; a window is
  AF when its episode is "(AFIB". Scored as AF vs not AF per window: Se, Sp, F1; windows the
  model calls noisy are counted apart.
- **Noise, Challenge 2017 validation recordings** with MIT-BIH Noise Stress Test ``em`` (electrode
  motion) and ``ma`` (muscle) noise added to the whole recording at ``--snr`` dB (power ratio,
  ``nstdb_noise_add(method="power")``, seeded per recording), then the runtime's record decision:
  challenge score, AF F1 and the share of inconclusive recordings, beside the clean recordings.

Preprocessing is the runtime's (resample, causal band-pass, clip, int8 at the input scale).
Exit codes: 0 measured; 2 bad input (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

__all__ = ["main"]


def _predict(art):
    from wearable.runtime import int8_predictor, softmax

    run = int8_predictor(art.model)
    return lambda windows: softmax(run(windows))


def mitdb_af(art, data_dir: Path, records: list[str] | None) -> dict:
    """Window-level AF vs not-AF figures on MIT-BIH records."""
    from wearable.data import ecg_model_input, mitdb_read, mitdb_records, samples_resample, window_starts

    probs = _predict(art)
    labels = list(art.labels)
    names = records or list(mitdb_records(data_dir))
    truth, called, noisy = [], [], 0
    for name in names:
        rec = mitdb_read(data_dir, name, lead=None)  # the paced 102 and 104: their first lead (no MLII)
        x = ecg_model_input(rec.signal, sampling_rate=rec.sampling_rate, target_rate=art.sampling_rate)
        for ep in rec.rhythms:
            a, b = samples_resample(np.array([ep.start, ep.stop]), sampling_rate=rec.sampling_rate,
                                    target_rate=art.sampling_rate)
            starts = window_starts(min(int(b), x.size), window_samples=art.window, hop_samples=art.hop, start=int(a))
            if not starts.size:
                continue
            p = probs(np.stack([x[s:s + art.window] for s in starts])[:, None, :].astype(np.float32))
            top = p.argmax(axis=1)
            keep = top != labels.index("noisy") if "noisy" in labels else np.ones(len(top), dtype=bool)
            noisy += int((~keep).sum())
            truth += [ep.aux == "(AFIB"] * int(keep.sum())
            called += list(top[keep] == labels.index("af"))
    t, c = np.array(truth, dtype=bool), np.array(called, dtype=bool)
    tp, fp, fn = int((t & c).sum()), int((~t & c).sum()), int((t & ~c).sum())
    return {"records": len(names), "windows": int(t.size), "af_windows": int(t.sum()), "noisy_windows": noisy,
            "af_se": tp / max(t.sum(), 1), "af_sp": int((~t & ~c).sum()) / max((~t).sum(), 1),
            "af_f1": 2 * tp / max(2 * tp + fp + fn, 1)}


def noise_scores(art, data_dir: Path, snrs: list[float], limit: int) -> list[dict]:
    """Record-level scores on the validation recordings, clean and with em/ma noise at each SNR."""
    from wearable.data import challenge2017_read, challenge2017_reference, challenge2017_split, challenge_score
    from wearable.data import ecg_model_input, nstdb_noise_add
    from wearable.runtime.record import record_labels, record_probs

    probs = _predict(art)
    reference = challenge2017_reference(data_dir)
    seed = int((art.manifest.get("data") or {}).get("seed") or 0)
    names = list(challenge2017_split(reference, seed=seed)["val"])[:limit or None]
    raw = {n: challenge2017_read(data_dir, n) for n in names}
    rows = []
    for noise, snr in [("clean", None)] + [(k, s) for k in ("em", "ma") for s in snrs]:
        signals = []
        for i, name in enumerate(names):
            rec = raw[name]
            signal = rec.signal
            if snr is not None:
                signal, _ = nstdb_noise_add(signal, sampling_rate=rec.sampling_rate, noise=noise, snr_db=snr,
                                            data_dir=data_dir, method="power", seed=i)
            signals.append(ecg_model_input(signal, sampling_rate=rec.sampling_rate,
                                           target_rate=art.sampling_rate).astype(np.float32))
        pred = record_labels(record_probs(probs, signals, window=art.window, hop=art.hop), signals, art.labels,
                             window=art.window)
        s = challenge_score([reference[n] for n in names], pred)
        rows.append({"noise": noise, "snr_db": snr, "score": s["score"], "f1_af": s["f1_af"],
                     "inconclusive": sum(p == "inconclusive" for p in pred) / len(pred)})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.rhythm_robustness", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifact", type=Path, help="artifact directory of a rhythm model")
    p.add_argument("--data-dir", type=Path, required=True, help="data root with mitdb/, nstdb/ and challenge2017/")
    p.add_argument("--records", nargs="*", help="MIT-BIH records (default: all in the data dir)")
    p.add_argument("--snr", type=float, nargs="+", default=[12.0, 6.0, 0.0], help="noise SNRs in dB (default: 12 6 0)")
    p.add_argument("--limit", type=int, default=0, help="at most N validation recordings for the noise check; 0 = all")
    p.add_argument("--skip", choices=("mitdb", "noise"), action="append", default=[], help="leave a check out")
    p.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = p.parse_args(argv)
    from wearable.data import DataError
    from wearable.runtime import ArtifactError, load_artifact

    try:
        if args.limit < 0 or not all(np.isfinite(args.snr)):
            raise ValueError("--limit must be >= 0 and every --snr finite")
        art = load_artifact(args.artifact)
        if not {"normal", "af", "other", "noisy"} <= set(art.labels or ()):
            raise ValueError(f"{args.artifact}: not a Challenge 2017 rhythm model (labels: {art.labels})")
        result: dict = {"model": art.name}
        if "mitdb" not in args.skip:
            m = mitdb_af(art, args.data_dir, args.records)
            result["mitdb"] = m
            print(f"{art.name} on MIT-BIH ({m['records']} records, {m['windows']} windows, {m['af_windows']} AF, "
                  f"{m['noisy_windows']} called noisy and left out): AF Se {100 * m['af_se']:.1f} %, "
                  f"Sp {100 * m['af_sp']:.1f} %, F1 {m['af_f1']:.3f}")
        if "noise" not in args.skip:
            result["noise"] = noise_scores(art, args.data_dir, list(args.snr), args.limit)
            for r in result["noise"]:
                level = "clean" if r["snr_db"] is None else f"{r['noise']} {r['snr_db']:g} dB"
                print(f"{art.name} on validation recordings, {level}: challenge score {r['score']:.3f}, "
                      f"AF F1 {r['f1_af']:.3f}, inconclusive {100 * r['inconclusive']:.1f} %")
    except (ValueError, OSError, DataError, ArtifactError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
