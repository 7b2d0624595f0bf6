"""Window builders for MIT-BIH Arrhythmia: beat (AAMI classes), rhythm and qrs tasks.

Splits are inter-patient (de Chazal 2004): train = DS1 without ``MITDB_VAL``, val =
``MITDB_VAL`` (three whole DS1 records), test = DS2. DS2 never reaches train or val.

beat: one window per annotated beat with an AAMI class, centred on it (the beat sits at
index ``W // 2``); beats too close to either end of the record are skipped.
beat_rr: the beat windows (N, S, V, F; Q beats are dropped as in de Chazal 2004 but still
count as beats for the intervals) with a second input channel ``rr_channel``: at each sample,
the RR interval that contains it divided by the record's running mean RR (``RR_REFERENCE_BEATS``
past intervals, causal), minus 1, times ``RR_CHANNEL_GAIN``; 0 outside the first and last beat.
The centre beat's pre-RR sits left of ``W // 2``, its post-RR right of it: supraventricular
beats are recognised mostly by prematurity, which one ECG window does not show in absolute terms.
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

__all__ = ["MITDB_SPLITS", "MITDB_TASKS", "QRS_HALF_WIDTH_S", "RR_REFERENCE_BEATS", "RR_CHANNEL_GAIN", "mitdb_windows",
           "rr_reference", "rr_channel"]

MITDB_TASKS = {
    "beat": TaskSpec(AAMI_CLASSES, "classification"),
    # only channel 0 is a band-passed signal; the RR channel (rr_channel) is made from beat
    # times, which the streaming front end does not produce, so it is not listed as a filter
    "beat_rr": TaskSpec(AAMI_CLASSES[:4], "classification"),
    "rhythm": TaskSpec(MITDB_RHYTHM_LABELS, "classification"),
    "qrs": TaskSpec(("background", "qrs"), "segmentation"),
}

QRS_HALF_WIDTH_S = 0.05
# beat_rr: intervals in the running mean (about half a minute), and the gain that spreads the
# ratio over the int8 input range the ECG channel sets (±5 mV clip)
RR_REFERENCE_BEATS = 32
RR_CHANNEL_GAIN = 2.0
RR_CHANNEL_CLIP = (-2.0, 3.0)

MITDB_SPLITS: dict[str, tuple[str, ...]] = {
    "train": tuple(r for r in DS1 if r not in MITDB_VAL),
    "val": MITDB_VAL,
    "test": DS2,
}


def mitdb_windows(req: Request) -> WindowSet:
    records = split_records(req, MITDB_SPLITS[req.split], mitdb_records(req.data_dir))
    take = {"beat": _beat_windows, "beat_rr": _beat_rr_windows, "rhythm": _rhythm_windows,
            "qrs": _qrs_windows}[req.task]
    xs, ys, starts = [], [], []
    for name in records:
        rec = mitdb_read(req.data_dir, name)
        ecg = ecg_scale(ecg_clean(signal_resample(rec.signal, sampling_rate=rec.sampling_rate,
                                                  target_rate=req.sampling_rate_hz),
                                  sampling_rate=req.sampling_rate_hz))
        x, y, s = take(rec, ecg, req)
        xs.append(x)
        ys.append(y)
        starts.append(s)
    return windows_collect(req, xs, ys, labels=MITDB_TASKS[req.task].labels, records=records, starts=starts)


def _beat_windows(rec: MitdbRecord, ecg: np.ndarray, req: Request) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = req.window_samples
    starts = samples_resample(rec.beat_samples, sampling_rate=rec.sampling_rate,
                              target_rate=req.sampling_rate_hz) - w // 2
    fits = (starts >= 0) & (starts + w <= ecg.size)
    return windows_take(ecg, starts[fits], w), rec.beat_classes[fits], starts[fits]


def rr_reference(peaks: np.ndarray, n_past: int = RR_REFERENCE_BEATS) -> np.ndarray:
    """Per beat, the mean of the ``n_past`` RR intervals that end at or before the previous beat.

    Past beats only, so a streaming runtime can compute it. The first beats use the intervals
    there are; beat 1 has none before its own pre-RR and uses that; beat 0 gets NaN (no reference).
    """
    peaks = np.asarray(peaks, dtype=np.float64)
    rr = np.diff(peaks)  # rr[i] ends at beat i + 1
    csum = np.concatenate([[0.0], np.cumsum(rr)])
    ref = np.full(peaks.size, np.nan)
    for k in range(peaks.size):  # intervals rr[lo:hi] end at beats lo + 1 .. k - 1
        hi = k - 1
        lo = max(0, hi - n_past)
        if hi > lo:
            ref[k] = (csum[hi] - csum[lo]) / (hi - lo)
        elif k >= 1:
            ref[k] = rr[k - 1]
    return ref


def rr_channel(peaks: np.ndarray, centre: int, reference: float, start: int, width: int) -> np.ndarray:
    """The RR channel of the window ``[start, start + width)`` around beat ``centre``.

    Sample ``t`` between beats ``i`` and ``i + 1`` holds ``RR_CHANNEL_GAIN * (rr_i / reference - 1)``
    (clipped to ``RR_CHANNEL_CLIP``): the same reference (the centre beat's) for every interval
    of the window, so the window shows the intervals around the beat relative to the record's rhythm.
    """
    out = np.zeros(width, dtype=np.float64)
    if not np.isfinite(reference) or reference <= 0:
        return out
    t = np.arange(start, start + width)
    i = np.searchsorted(peaks, t, side="right") - 1  # beat at or before t
    inside = (i >= 0) & (i + 1 < peaks.size)
    rr = peaks[np.minimum(i + 1, peaks.size - 1)] - peaks[np.maximum(i, 0)]
    out[inside] = RR_CHANNEL_GAIN * (rr[inside] / reference - 1.0)
    return np.clip(out, *RR_CHANNEL_CLIP)


def _beat_rr_windows(rec: MitdbRecord, ecg: np.ndarray, req: Request) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = req.window_samples
    peaks = samples_resample(rec.beat_samples, sampling_rate=rec.sampling_rate, target_rate=req.sampling_rate_hz)
    reference = rr_reference(peaks)
    starts = peaks - w // 2
    keep = np.flatnonzero((starts >= 0) & (starts + w <= ecg.size) & (rec.beat_classes < 4))  # no Q
    x = np.empty((keep.size, 2, w), dtype=np.float32)
    if keep.size:
        x[:, 0] = windows_take(ecg, starts[keep], w)[:, 0]
        peaks_f = peaks.astype(np.float64)
        for row, k in enumerate(keep):
            x[row, 1] = rr_channel(peaks_f, k, reference[k], int(starts[k]), w)
    return x, rec.beat_classes[keep], starts[keep]


def _rhythm_windows(rec: MitdbRecord, ecg: np.ndarray, req: Request) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    return windows_take(ecg, starts_arr, w), labels_arr, starts_arr


def _qrs_windows(rec: MitdbRecord, ecg: np.ndarray, req: Request) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w, hop = req.window_samples, req.hop_samples or req.window_samples
    peaks = samples_resample(rec.beat_samples, sampling_rate=rec.sampling_rate, target_rate=req.sampling_rate_hz)
    half = int(round(QRS_HALF_WIDTH_S * req.sampling_rate_hz))
    mask = np.zeros(ecg.size, dtype=np.int64)
    for p in peaks:
        mask[max(0, int(p) - half):int(p) + half + 1] = 1
    starts = window_starts(ecg.size, window_samples=w, hop_samples=hop)
    return windows_take(ecg, starts, w), windows_take(mask, starts, w)[:, 0].astype(np.int64), starts
