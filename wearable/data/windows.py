"""Fixed-length examples: the ``WindowSet`` container and window slicing helpers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["WindowSet", "window_starts", "windows_take"]


@dataclass(frozen=True, eq=False)
class WindowSet:
    """Model-ready windows with labels.

    ``x`` is float32 ``(N, C, W)``, already preprocessed. ``y`` is int64 ``(N,)`` class ids
    for classification, int64 ``(N, W)`` per-sample ids for segmentation, or float32 ``(N,)``
    for regression (``bidmc``/``hr``). ``labels`` names the ids (for regression: the target).
    ``records`` lists the records the windows came from, for provenance. ``mask`` is an
    optional second target, int64 ``(N, W)`` per-sample ids, for tasks whose windows carry a
    class and a mask at once (``ppg``/``rhythm_artifact``); ``None`` elsewhere. ``origin`` is
    int64 ``(N, 2)`` for windows cut from MIT-BIH records: the index into ``records`` and the
    start sample (at ``sampling_rate_hz``) of each window, for splits by time within a record;
    ``None`` elsewhere.
    """

    x: np.ndarray
    y: np.ndarray
    labels: tuple[str, ...]
    sampling_rate_hz: float
    source: str
    task: str
    records: tuple[str, ...]
    mask: np.ndarray | None = None
    origin: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])


def window_starts(n_samples: int, *, window_samples: int, hop_samples: int, start: int = 0) -> np.ndarray:
    """Start indices of every full window in ``[start, n_samples)``, one every ``hop_samples``."""
    last = n_samples - window_samples
    if last < start:
        return np.zeros(0, dtype=np.int64)
    return np.arange(start, last + 1, hop_samples, dtype=np.int64)


def windows_take(signal: np.ndarray, starts: np.ndarray, window_samples: int) -> np.ndarray:
    """Copy windows out of ``signal`` (``(n,)`` or ``(C, n)``) as float32 ``(N, C, W)``."""
    signal = np.atleast_2d(np.asarray(signal, dtype=np.float32))  # cast first: the gather copies
    view = np.lib.stride_tricks.sliding_window_view(signal, window_samples, axis=-1)  # (C, n-W+1, W)
    return np.ascontiguousarray(view[:, np.asarray(starts, dtype=np.int64), :].transpose(1, 0, 2), dtype=np.float32)
