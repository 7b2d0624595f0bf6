"""Window builders for MIT-BIH Arrhythmia: beat (AAMI classes), rhythm and qrs tasks.

Splits are inter-patient (de Chazal 2004): train = DS1 without ``MITDB_VAL``, val =
``MITDB_VAL`` (three whole DS1 records), test = DS2. DS2 never reaches train or val.

beat: one window per annotated beat with an AAMI class, centred on it (the beat sits at
index ``W // 2``); beats too close to either end of the record are skipped.
rhythm: windows every ``hop_samples`` (default ``W``) inside each rhythm episode, labelled
by ``rhythm_label``; windows that would cross an episode boundary are not made.
qrs: windows every ``hop_samples`` (default ``W``) over the whole record, labelled per
sample: "qrs" within ``QRS_HALF_WIDTH_S`` of an annotated beat (AAMI classes, Q included),
"background" elsewhere. The annotation marks the R peak (the fiducial point), so the mask
is a 100 ms band around it rather than the exact QRS onset/offset.
"""

from __future__ import annotations

import numpy as np

from ._request import Request, TaskSpec, split_records, windows_collect
from .mitdb import (AAMI_CLASSES, DS1, DS2, MITDB_RHYTHM_LABELS, MITDB_VAL, MitdbRecord, mitdb_read, mitdb_records,
                    rhythm_label)
from .preprocess import ecg_clean, ecg_scale, samples_resample, signal_resample
from .windows import WindowSet, window_starts, windows_take

__all__ = ["MITDB_SPLITS", "MITDB_TASKS", "QRS_HALF_WIDTH_S", "mitdb_windows"]

MITDB_TASKS = {
    "beat": TaskSpec(AAMI_CLASSES, "classification"),
    "rhythm": TaskSpec(MITDB_RHYTHM_LABELS, "classification"),
    "qrs": TaskSpec(("background", "qrs"), "segmentation"),
}

QRS_HALF_WIDTH_S = 0.05

MITDB_SPLITS: dict[str, tuple[str, ...]] = {
    "train": tuple(r for r in DS1 if r not in MITDB_VAL),
    "val": MITDB_VAL,
    "test": DS2,
}


def mitdb_windows(req: Request) -> WindowSet:
    records = split_records(req, MITDB_SPLITS[req.split], mitdb_records(req.data_dir))
    take = {"beat": _beat_windows, "rhythm": _rhythm_windows, "qrs": _qrs_windows}[req.task]
    xs, ys = [], []
    for name in records:
        rec = mitdb_read(req.data_dir, name)
        ecg = ecg_scale(ecg_clean(signal_resample(rec.signal, sampling_rate=rec.sampling_rate,
                                                  target_rate=req.sampling_rate_hz),
                                  sampling_rate=req.sampling_rate_hz))
        x, y = take(rec, ecg, req)
        xs.append(x)
        ys.append(y)
    return windows_collect(req, xs, ys, labels=MITDB_TASKS[req.task].labels, records=records)


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


def _qrs_windows(rec: MitdbRecord, ecg: np.ndarray, req: Request) -> tuple[np.ndarray, np.ndarray]:
    w, hop = req.window_samples, req.hop_samples or req.window_samples
    peaks = samples_resample(rec.beat_samples, sampling_rate=rec.sampling_rate, target_rate=req.sampling_rate_hz)
    half = int(round(QRS_HALF_WIDTH_S * req.sampling_rate_hz))
    mask = np.zeros(ecg.size, dtype=np.int64)
    for p in peaks:
        mask[max(0, int(p) - half):int(p) + half + 1] = 1
    starts = window_starts(ecg.size, window_samples=w, hop_samples=hop)
    return windows_take(ecg, starts, w), windows_take(mask, starts, w)[:, 0].astype(np.int64)
