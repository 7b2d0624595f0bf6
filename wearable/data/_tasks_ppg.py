"""Window builders for the "ppg" source: wrist PPG with rhythm labels and artifact masks.

One input channel, the PPG (band-passed 0.5-8 Hz, scaled by its robust standard deviation,
clipped), with motion artifacts from :func:`ppg_artifacts_add` injected into the raw signal
before preprocessing, so the masks are exact. ``WindowSet.mask`` holds the per-sample
artifact mask (0 clean, 1 artifact; ``PPG_MASK_LABELS``).

rhythm_artifact: synthetic records (``ecg_ppg_simulate``), one per window, classes sinus,
ectopic, af balanced by index; y is the class, ``mask`` the artifact mask. An "ectopic"
window keeps at least one ectopic beat and the pulse after it free of artifacts, so its
label stays visible.
bidmc_artifact: real BIDMC PPG (subject-wise ``BIDMC_SPLITS``) with the same injected
artifacts; BIDMC has no rhythm labels, so y is the mask itself (segmentation).

Per window: one in five stays clean, the others get one artifact kind, or two (45 %).
"""

from __future__ import annotations

import numpy as np

from wearable.runtime.dsp import robust_std

from ._errors import DataError
from ._request import Request, TaskSpec, split_records, subsample
from .bidmc import BIDMC_SPLITS, bidmc_read, bidmc_records
from .ppg_artifacts import PPG_ARTIFACT_KINDS, ppg_artifacts_add
from .preprocess import PPG_CLIP, ppg_clean, ppg_scale, signal_resample
from .synthetic import ecg_ppg_simulate
from .windows import WindowSet, window_starts

__all__ = ["PPG_TASKS", "PPG_RHYTHMS", "PPG_MASK_LABELS", "ppg_windows"]

PPG_RHYTHMS = ("sinus", "ectopic", "af")
PPG_MASK_LABELS = ("clean", "artifact")
PPG_TASKS = {
    "rhythm_artifact": TaskSpec(PPG_RHYTHMS, "classification", ("ppg",), mask_labels=PPG_MASK_LABELS),
    "bidmc_artifact": TaskSpec(PPG_MASK_LABELS, "segmentation", ("ppg",)),
}

_DEFAULT_LIMITS = {"train": 2000, "val": 500, "test": 500}
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
_TASK_CODE = {"rhythm_artifact": 10, "bidmc_artifact": 11}  # apart from the synthetic source's codes
_SIMULATED = {"sinus": "normal", "ectopic": "ectopic", "af": "af"}
_MAX_TRIES = 20
_PULSE_AFTER_S = 0.8  # an ectopic beat is visible in the PPG through the pulse that follows it


def ppg_windows(req: Request) -> WindowSet:
    return _synthetic(req) if req.task == "rhythm_artifact" else _bidmc(req)


def _synthetic(req: Request) -> WindowSet:
    n = _DEFAULT_LIMITS[req.split] if req.limit is None else req.limit
    fs, w = req.sampling_rate_hz, req.window_samples
    pad = int(round(min(2.0, 0.5 * w / fs) * fs))  # the 0.5 Hz high-pass settles within ~2 s
    x = np.empty((n, 1, w), dtype=np.float32)
    y = np.empty(n, dtype=np.int64)
    mask = np.empty((n, w), dtype=np.int64)
    records = []
    for i in range(n):
        label = PPG_RHYTHMS[i % len(PPG_RHYTHMS)]
        for attempt in range(_MAX_TRIES):
            seed = _seed(req, i, attempt)
            rng = np.random.default_rng([seed, 1])
            rec = ecg_ppg_simulate((w + 2 * pad) / fs, sampling_rate=fs, rhythm=_SIMULATED[label], seed=seed)
            ectopic = rec.beat_samples[(rec.beat_types != "N") & (rec.beat_samples >= pad)
                                       & (rec.beat_samples < pad + w - int(_PULSE_AFTER_S * fs))] - pad
            if label != "ectopic" or ectopic.size:
                break
        raw = rec.ppg.copy()
        kinds = _kinds_draw(rng)
        for _ in range(_MAX_TRIES):  # redraw positions until an ectopic beat stays visible
            raw[pad:pad + w], m = ppg_artifacts_add(rec.ppg[pad:pad + w], sampling_rate=fs, kinds=kinds,
                                                    seed=int(rng.integers(2**32)))
            if label != "ectopic" or any(not m[b:b + int(_PULSE_AFTER_S * fs)].any() for b in ectopic):
                break
        x[i, 0] = ppg_scale(ppg_clean(raw, sampling_rate=fs))[pad:pad + w]
        y[i] = PPG_RHYTHMS.index(label)
        mask[i] = m > 0
        records.append(f"synthetic:seed={seed}")
    return WindowSet(x=x, y=y, labels=PPG_RHYTHMS, sampling_rate_hz=float(fs), source=req.source, task=req.task,
                     records=tuple(records), mask=mask)


def _bidmc(req: Request) -> WindowSet:
    records = split_records(req, BIDMC_SPLITS[req.split], bidmc_records(req.data_dir))
    fs, w = req.sampling_rate_hz, req.window_samples
    pad = int(round(2.0 * fs))
    xs, masks = [], []
    for r, name in enumerate(records):
        rec = bidmc_read(req.data_dir, name)
        ppg = signal_resample(rec.ppg, sampling_rate=rec.sampling_rate, target_rate=fs)
        if not np.isfinite(ppg).all():
            ppg = np.nan_to_num(ppg, nan=float(np.nanmedian(ppg)))
        clean = ppg_clean(ppg, sampling_rate=fs)
        # Scale once per record from the artifact-free signal, as ppg_scale would, so an
        # injected artifact cannot rescale its own window.
        centre = float(np.median(clean))
        spread = robust_std(clean) or 1.0
        lo, hi = np.percentile(clean, [2.5, 97.5])
        for j, s in enumerate(window_starts(ppg.size, window_samples=w, hop_samples=req.hop_samples or w, start=pad)):
            rng = np.random.default_rng([req.seed, _SPLIT_CODE[req.split], _TASK_CODE[req.task], r, int(s)])
            raw = ppg[s - pad:s + w].copy()
            raw[pad:], m = ppg_artifacts_add(raw[pad:], sampling_rate=fs, kinds=_kinds_draw(rng),
                                             seed=int(rng.integers(2**32)), amplitude=float(hi - lo))
            xs.append(np.clip((ppg_clean(raw, sampling_rate=fs)[pad:] - centre) / spread, -PPG_CLIP, PPG_CLIP))
            masks.append(m > 0)
    if not xs:
        raise DataError(f"{req.source}/{req.task}: no windows of {w} samples fit the {req.split} records")
    keep = subsample(len(xs), req.limit, req.seed)
    x = np.asarray(xs, dtype=np.float32)[keep][:, None, :]
    mask = np.asarray(masks, dtype=np.int64)[keep]
    return WindowSet(x=np.ascontiguousarray(x), y=mask, labels=PPG_MASK_LABELS, sampling_rate_hz=float(fs),
                     source=req.source, task=req.task, records=tuple(records), mask=mask)


def _kinds_draw(rng: np.random.Generator) -> list[str]:
    u = rng.random()
    if u < 0.2:
        return []
    count = 1 if u < 0.65 else 2
    return [PPG_ARTIFACT_KINDS[k] for k in rng.choice(len(PPG_ARTIFACT_KINDS), size=count, replace=False)]


def _seed(req: Request, index: int, attempt: int) -> int:
    seq = np.random.SeedSequence([req.seed, _SPLIT_CODE[req.split], _TASK_CODE[req.task], index, attempt])
    return int(seq.generate_state(1, np.uint64)[0])
