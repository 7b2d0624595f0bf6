"""QRS detection from a per-sample QRS segmentation, scored against MIT-BIH beat annotations.

Each record of a split is cut into consecutive windows, the model's per-sample masks are
joined back into one record-long mask, and every run of QRS samples gives one R-peak
estimate (its centre). A detection matches an annotated beat within ``tolerance_s``
(150 ms, as in the issue); sensitivity Se = TP / (TP + FN), positive predictivity
+P = TP / (TP + FP), summed over the records (gross statistics, ANSI/AAMI EC57 style).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from wearable.data._tasks_mitdb import MITDB_SPLITS
from wearable.data.mitdb import mitdb_read, mitdb_records
from wearable.data.preprocess import ecg_clean, ecg_scale, samples_resample, signal_resample
from wearable.data.windows import window_starts, windows_take
from wearable.runtime.streaming import BEAT_MIN_WIDTH_S, BEAT_REFRACTORY_S  # one beat rule, offline and streamed

__all__ = ["qrs_peaks", "detections_score", "qrs_evaluate"]


def qrs_peaks(mask: np.ndarray, *, sampling_rate: float, min_width_s: float = BEAT_MIN_WIDTH_S,
              refractory_s: float = BEAT_REFRACTORY_S) -> np.ndarray:
    """Sample index of the centre of each run of ones in ``mask`` (runs too short or too close dropped)."""
    m = np.concatenate([[0], (np.asarray(mask) > 0).astype(np.int8), [0]])
    edges = np.diff(m)
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = (stops - starts) >= max(1, int(round(min_width_s * sampling_rate)))
    centres = ((starts[keep] + stops[keep] - 1) // 2).astype(np.int64)
    out: list[int] = []
    for c in centres:  # one beat cannot follow another within the refractory period
        if not out or c - out[-1] >= refractory_s * sampling_rate:
            out.append(int(c))
    return np.asarray(out, dtype=np.int64)


def detections_score(reference: np.ndarray, detected: np.ndarray, *, sampling_rate: float,
                     tolerance_s: float = 0.15) -> dict[str, int]:
    """Greedy one-to-one matching in time order (sample indices): ``{"tp", "fn", "fp"}``."""
    from wearable.metrics import detections_match

    return detections_match(np.asarray(reference, dtype=np.float64), np.asarray(detected, dtype=np.float64),
                            tolerance=tolerance_s * sampling_rate)


def qrs_evaluate(predict: Callable[[np.ndarray], np.ndarray], *, data_dir: str | Path | None,
                 sampling_rate_hz: float, window_samples: int, split: str = "test", qrs_class: int = 1,
                 records: tuple[str, ...] | None = None) -> dict:
    """Se and +P (%) of ``predict`` ((n, 1, W) float32 -> (n, K, W) scores) on the MIT-BIH ``split``.

    The signal goes through the same resampling, band-pass and scaling as
    ``load_windows("mitdb", "qrs", ...)``. Only beats inside the covered part of each record
    (whole windows) count, so the last partial window is not held against the detector.
    """
    present = set(mitdb_records(data_dir))
    names = [r for r in (records or MITDB_SPLITS[split]) if r in present]
    totals = {"tp": 0, "fn": 0, "fp": 0}
    for name in names:
        rec = mitdb_read(data_dir, name)
        ecg = ecg_scale(ecg_clean(signal_resample(rec.signal, sampling_rate=rec.sampling_rate,
                                                  target_rate=sampling_rate_hz), sampling_rate=sampling_rate_hz))
        starts = window_starts(ecg.size, window_samples=window_samples, hop_samples=window_samples)
        scores = predict(windows_take(ecg, starts, window_samples))
        mask = (np.asarray(scores).argmax(axis=1) == qrs_class).reshape(-1)
        covered = mask.size
        ref = samples_resample(rec.beat_samples, sampling_rate=rec.sampling_rate, target_rate=sampling_rate_hz)
        ref = ref[(ref >= 0) & (ref < covered)]
        score = detections_score(ref, qrs_peaks(mask, sampling_rate=sampling_rate_hz),
                                 sampling_rate=sampling_rate_hz)
        for k in totals:
            totals[k] += score[k]
    tp, fn, fp = totals["tp"], totals["fn"], totals["fp"]
    return {**totals, "records": len(names), "se_pct": 100.0 * tp / max(tp + fn, 1),
            "ppv_pct": 100.0 * tp / max(tp + fp, 1)}
