"""The validated arguments of one ``load_windows`` call, and plumbing the real-data builders share."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ._errors import DataError
from .windows import WindowSet

__all__ = ["Request", "TaskSpec", "subsample", "split_records", "windows_collect"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskSpec:
    """What one task of a source gives: label names, the kind of target, the filter per input channel.

    ``kind`` is "classification" (y ``(N,)`` class ids), "segmentation" (y ``(N, W)``),
    "regression" (y float32 ``(N,)``) or "unlabelled". ``filters`` names a
    ``preprocess.FILTER_BANDS_HZ`` entry per input channel. ``mask_labels`` names the ids of
    the per-sample ``mask`` that some classification tasks carry as a second target (empty
    without one).
    """

    labels: tuple[str, ...]
    kind: str
    filters: tuple[str, ...] = ("ecg",)
    mask_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Request:
    source: str
    task: str
    split: str
    sampling_rate_hz: float
    window_samples: int
    data_dir: str | Path | None
    seed: int
    limit: int | None
    hop_samples: int | None


def subsample(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Indices of at most ``limit`` of ``n`` items, drawn by ``seed`` and kept in original order."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def split_records(req: Request, wanted: tuple[str, ...], present: Iterable[str]) -> list[str]:
    """The split's records that the data folder holds, in split order; none at all is an error."""
    present = set(present)
    records = [r for r in wanted if r in present]
    if not records:
        raise DataError(f"{req.source}: none of the {len(wanted)} {req.split} records ({wanted[0]}…) "
                        "are in the data dir")
    if len(records) < len(wanted):
        logger.warning("%s %s: %d of %d records missing", req.source, req.split, len(wanted) - len(records),
                       len(wanted))
    return records


def windows_collect(req: Request, xs: list[np.ndarray], ys: list[np.ndarray], *, labels: tuple[str, ...],
                    records: list[str], starts: list[np.ndarray] | None = None) -> WindowSet:
    """Join per-record windows, apply ``limit`` and wrap them; no window at all is an error.

    ``starts`` (per record, each window's start sample) becomes the set's ``origin``.
    """
    x, y = np.concatenate(xs), np.concatenate(ys)
    if not len(y):
        raise DataError(f"{req.source}/{req.task}: no windows of {req.window_samples} samples fit "
                        f"the {req.split} records")
    keep = subsample(len(y), req.limit, req.seed)
    origin = None
    if starts is not None:
        origin = np.stack([np.concatenate([np.full(len(s), i, dtype=np.int64) for i, s in enumerate(starts)]),
                           np.concatenate(starts).astype(np.int64)], axis=1)[keep]
    return WindowSet(x=x[keep], y=y[keep], labels=labels, sampling_rate_hz=float(req.sampling_rate_hz),
                     source=req.source, task=req.task, records=tuple(records), origin=origin)
