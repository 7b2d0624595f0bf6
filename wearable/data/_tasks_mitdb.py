"""Window builders for MIT-BIH Arrhythmia: beat (AAMI classes) and rhythm tasks.

Splits are inter-patient (de Chazal 2004): train = DS1 without ``MITDB_VAL``, val =
``MITDB_VAL`` (three whole DS1 records), test = DS2. DS2 never reaches train or val.

beat: one window per annotated beat with an AAMI class, centred on it (the beat sits at
index ``W // 2``); beats too close to either end of the record are skipped.
rhythm: windows every ``hop_samples`` (default ``W``) inside each rhythm episode, labelled
by ``rhythm_label``; windows that would cross an episode boundary are not made.
"""

from __future__ import annotations

import logging

import numpy as np

from ._errors import DataError
from ._request import Request, subsample
from .mitdb import AAMI_CLASSES, DS1, DS2, MITDB_RHYTHM_LABELS, MITDB_VAL, MitdbRecord, mitdb_read, mitdb_records, rhythm_label
from .preprocess import ecg_clean, ecg_scale, samples_resample, signal_resample
from .windows import WindowSet, window_starts, windows_take

__all__ = ["MITDB_SPLITS", "mitdb_windows"]

logger = logging.getLogger(__name__)

MITDB_SPLITS: dict[str, tuple[str, ...]] = {
    "train": tuple(r for r in DS1 if r not in MITDB_VAL),
    "val": MITDB_VAL,
    "test": DS2,
}


def mitdb_windows(req: Request) -> WindowSet:
    wanted = MITDB_SPLITS[req.split]
    present = set(mitdb_records(req.data_dir))
    records = [r for r in wanted if r in present]
    if not records:
        raise DataError(f"mitdb: none of the {len(wanted)} {req.split} records ({wanted[0]}…) are in the data dir")
    if len(records) < len(wanted):
        logger.warning("mitdb %s: %d of %d records missing", req.split, len(wanted) - len(records), len(wanted))
    take = _beat_windows if req.task == "beat" else _rhythm_windows
    xs, ys = [], []
    for name in records:
        rec = mitdb_read(req.data_dir, name)
        ecg = ecg_scale(ecg_clean(signal_resample(rec.signal, sampling_rate=rec.sampling_rate,
                                                  target_rate=req.sampling_rate_hz),
                                  sampling_rate=req.sampling_rate_hz))
        x, y = take(rec, ecg, req)
        xs.append(x)
        ys.append(y)
    x, y = np.concatenate(xs), np.concatenate(ys)
    if not len(y):
        raise DataError(f"mitdb/{req.task}: no windows of {req.window_samples} samples fit the {req.split} records")
    keep = subsample(len(y), req.limit, req.seed)
    labels = AAMI_CLASSES if req.task == "beat" else MITDB_RHYTHM_LABELS
    return WindowSet(x=x[keep], y=y[keep], labels=labels, sampling_rate_hz=float(req.sampling_rate_hz),
                     source="mitdb", task=req.task, records=tuple(records))


def _beat_windows(rec: MitdbRecord, ecg: np.ndarray, req: Request) -> tuple[np.ndarray, np.ndarray]:
    w = req.window_samples
    starts = samples_resample(rec.beat_samples, sampling_rate=rec.sampling_rate,
                              target_rate=req.sampling_rate_hz) - w // 2
    fits = (starts >= 0) & (starts + w <= ecg.size)
    return windows_take(ecg, starts[fits], w), rec.beat_classes[fits]


def _rhythm_windows(rec: MitdbRecord, ecg: np.ndarray, req: Request) -> tuple[np.ndarray, np.ndarray]:
    w, hop = req.window_samples, req.hop_samples or req.window_samples
    starts, labels = [], []
    for episode in rec.rhythms:
        a, b = samples_resample(np.array([episode.start, episode.stop]), sampling_rate=rec.sampling_rate,
                                target_rate=req.sampling_rate_hz)
        s = window_starts(min(int(b), ecg.size), window_samples=w, hop_samples=hop, start=int(a))
        starts.append(s)
        labels.append(np.full(s.size, MITDB_RHYTHM_LABELS.index(rhythm_label(episode.aux)), dtype=np.int64))
    starts_arr = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)
    labels_arr = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
    return windows_take(ecg, starts_arr, w), labels_arr
