"""Window builders for the synthetic source: rhythm, waves and artifact tasks.

Every window is its own simulated record; record seeds come from
``SeedSequence([seed, split, task, index])``, so train, val and test never share a record
and the same arguments always give byte-identical arrays. Classes are balanced by taking
window ``i`` from class ``i % n_classes``. Each record runs a pad (up to 1 s) past both
ends of the window so the band-pass has settled inside it.
"""

from __future__ import annotations

import numpy as np

from ._request import Request, TaskSpec
from .artifacts import ARTIFACT_KINDS, ARTIFACT_LABELS, artifacts_add
from .preprocess import ecg_clean, ecg_scale
from .synthetic import RHYTHMS, WAVE_LABELS, SyntheticRecord, ecg_ppg_simulate
from .windows import WindowSet

__all__ = ["SYNTHETIC_DEFAULT_LIMITS", "SYNTHETIC_TASKS", "synthetic_windows"]

SYNTHETIC_TASKS = {
    "rhythm": TaskSpec(RHYTHMS, "classification"),
    "waves": TaskSpec(WAVE_LABELS, "segmentation"),
    "artifact": TaskSpec(ARTIFACT_LABELS, "segmentation", ("ecg_wide",)),
}

SYNTHETIC_DEFAULT_LIMITS = {"train": 2000, "val": 500, "test": 500}
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
_TASK_CODE = {"rhythm": 0, "waves": 1, "artifact": 2}
_NOISE_MV = (0.0, 0.03)  # white sensor noise on every synthetic window
_MAX_TRIES = 20


def synthetic_windows(req: Request) -> WindowSet:
    n = SYNTHETIC_DEFAULT_LIMITS[req.split] if req.limit is None else req.limit
    fs, w = req.sampling_rate_hz, req.window_samples
    pad = int(round(min(1.0, 0.5 * w / fs) * fs))
    x = np.empty((n, 1, w), dtype=np.float32)
    y = np.empty((n,) if req.task == "rhythm" else (n, w), dtype=np.int64)
    records = []
    for i in range(n):
        rhythm = RHYTHMS[i % len(RHYTHMS)]
        for attempt in range(_MAX_TRIES):
            record_seed = int(np.random.SeedSequence([req.seed, _SPLIT_CODE[req.split], _TASK_CODE[req.task], i,
                                                      attempt]).generate_state(1, np.uint64)[0])
            rng = np.random.default_rng([record_seed, 1])  # window-level choices, apart from the record's own
            rec = ecg_ppg_simulate((w + 2 * pad) / fs, sampling_rate=fs, rhythm=rhythm, seed=record_seed,
                                   noise_mv=rng.uniform(*_NOISE_MV))
            # An "ectopic" window must show its ectopic beat; redraw (deterministically) if the pad took it.
            if rhythm != "ectopic" or _ectopic_inside(rec, pad, pad + w):
                break
        ecg, target = _window_signal(req.task, rec, pad, w, i, rng)
        x[i, 0] = ecg
        y[i] = RHYTHMS.index(rhythm) if req.task == "rhythm" else target
        records.append(f"synthetic:seed={record_seed}")
    labels = SYNTHETIC_TASKS[req.task].labels
    return WindowSet(x=x, y=y, labels=labels, sampling_rate_hz=float(fs), source="synthetic", task=req.task,
                     records=tuple(records))


def _window_signal(task: str, rec: SyntheticRecord, pad: int, w: int, index: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """Preprocessed ECG window and its per-sample target (None for rhythm)."""
    window = slice(pad, pad + w)
    if task != "artifact":
        ecg = ecg_scale(ecg_clean(rec.ecg, sampling_rate=rec.sampling_rate))[window]
        return ecg, rec.wave_mask[window] if task == "waves" else None
    # Artifacts go inside the window only, so the mask is complete; one window in five stays
    # clean, the others get the kind their index points at, half of them a second kind too.
    kinds: list[str] = []
    if index % 5:
        kinds.append(ARTIFACT_KINDS[index % 5 - 1])
        if rng.random() < 0.5:
            kinds.append(ARTIFACT_KINDS[int(rng.integers(len(ARTIFACT_KINDS)))])
    raw = rec.ecg.copy()
    raw[window], mask = artifacts_add(raw[window], sampling_rate=rec.sampling_rate, kinds=kinds,
                                      seed=int(rng.integers(2**32)))
    ecg = ecg_scale(ecg_clean(raw, sampling_rate=rec.sampling_rate, method="ecg_wide"))[window]
    return ecg, mask


def _ectopic_inside(rec: SyntheticRecord, start: int, stop: int) -> bool:
    inside = (rec.beat_samples >= start) & (rec.beat_samples < stop)
    return bool((rec.beat_types[inside] != "N").any())
