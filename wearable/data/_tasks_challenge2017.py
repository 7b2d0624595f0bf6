"""Window builder for the PhysioNet/CinC Challenge 2017 recordings: the rhythm task.

rhythm: every record of the split (``challenge2017_split``, stratified by label, ``seed``
picks the split) is resampled to the model rate, band-passed causally and clipped (the
streaming front end), then cut into windows every ``hop_samples`` (default ``W``) plus one
window that ends at the record's last sample when the regular ones leave a tail, so the whole
record is covered. Every window carries its record's label. A record shorter than one window
gives no window (the runtime's record decision calls such a record ``inconclusive``); the
number skipped is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._request import Request, TaskSpec, windows_collect
from .challenge2017 import (CHALLENGE2017_FOLDS, CHALLENGE2017_LABELS, challenge2017_read, challenge2017_reference,
                            challenge2017_split)
from wearable.runtime.record import record_window_starts

from .preprocess import ecg_model_input
from .windows import WindowSet, windows_take

__all__ = ["CHALLENGE2017_TASKS", "Challenge2017Signals", "challenge2017_signals", "challenge2017_windows",
           "covering_starts"]

logger = logging.getLogger(__name__)

CHALLENGE2017_TASKS = {"rhythm": TaskSpec(CHALLENGE2017_LABELS, "classification")}


@dataclass(frozen=True, eq=False)
class Challenge2017Signals:
    """The preprocessed records of one split: names, label ids, one float32 signal each."""

    records: tuple[str, ...]
    y: np.ndarray  # int64 index into CHALLENGE2017_LABELS
    signals: tuple[np.ndarray, ...]
    sampling_rate_hz: float


def challenge2017_signals(data_dir: str | Path | None, split: str, *, sampling_rate_hz: float, seed: int = 0,
                          folds: int = CHALLENGE2017_FOLDS, fold: int = 0, limit: int | None = None,
                          progress: bool = False) -> Challenge2017Signals:
    """Read and preprocess every record of ``split`` ("train", "val", "test"); ``limit`` keeps the
    first ``limit`` records of a seeded stratified order (every label represented for small limits)."""
    reference = challenge2017_reference(data_dir)
    names = challenge2017_split(reference, seed=seed, folds=folds, fold=fold)[split]
    if limit is not None and limit < len(names):
        # round robin over the labels in a seeded order, so a small limit still holds every label
        rank: dict[str, int] = {}
        seen = dict.fromkeys(CHALLENGE2017_LABELS, 0)
        for i in np.random.default_rng(seed).permutation(len(names)):
            label = reference[names[i]]
            rank[names[i]] = seen[label]
            seen[label] += 1
        ordered = sorted(names, key=lambda n: (rank[n], CHALLENGE2017_LABELS.index(reference[n])))
        names = tuple(sorted(ordered[:limit]))
    iterator = names
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(names, desc=f"challenge2017 {split}", unit="rec", leave=False)
    signals = []
    for name in iterator:
        rec = challenge2017_read(data_dir, name)
        signals.append(ecg_model_input(rec.signal, sampling_rate=rec.sampling_rate,
                                       target_rate=sampling_rate_hz).astype(np.float32))
    y = np.array([CHALLENGE2017_LABELS.index(reference[n]) for n in names], dtype=np.int64)
    return Challenge2017Signals(records=tuple(names), y=y, signals=tuple(signals),
                                sampling_rate_hz=float(sampling_rate_hz))


# the runtime's record windows (every hop, plus one ending at the last sample): training windows
# cover a recording the way the record decision reads it
covering_starts = record_window_starts


def challenge2017_windows(req: Request) -> WindowSet:
    data = challenge2017_signals(req.data_dir, req.split, sampling_rate_hz=req.sampling_rate_hz, seed=req.seed)
    w, hop = req.window_samples, req.hop_samples or req.window_samples
    xs, ys, starts, short = [], [], [], 0
    for signal, label in zip(data.signals, data.y):
        s = covering_starts(signal.size, window_samples=w, hop_samples=hop)
        short += not s.size
        xs.append(windows_take(signal, s, w) if s.size else np.zeros((0, 1, w), dtype=np.float32))
        ys.append(np.full(s.size, label, dtype=np.int64))
        starts.append(s)
    if short:
        logger.warning("challenge2017 %s: %d of %d records are shorter than one window (%d samples) and give "
                       "no window", req.split, short, len(data.records), w)
    return windows_collect(req, xs, ys, labels=CHALLENGE2017_LABELS, records=list(data.records), starts=starts)
