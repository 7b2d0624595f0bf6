"""The validated arguments of one ``load_windows`` call, shared by the per-source builders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Request", "subsample"]


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
