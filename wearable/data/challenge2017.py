"""PhysioNet/CinC Challenge 2017: single-lead handheld (AliveCor) ECG recordings with a rhythm label.

Each record is one WFDB record (``A#####.hea`` + ``.dat``, one ``ECG`` signal at 300 Hz, in mV)
labelled in ``REFERENCE.csv`` as ``N`` normal sinus rhythm, ``A`` atrial fibrillation, ``O``
other rhythm or ``~`` too noisy to classify (``CHALLENGE2017_CODES``). The challenge score is
the mean F1 of N, A and O (``challenge_score``); the noisy class is predicted but not averaged.

Splits are record-level and stratified by label (``challenge2017_split``): the records of each
label are shuffled with ``seed`` and dealt into ``folds`` folds; fold ``fold`` is the test
split, fold ``fold + 1`` (mod ``folds``) validation, the rest training. No record is on two
sides, and the same seed gives the same split on any machine.

Contains information from the PhysioNet/CinC Challenge 2017 database, which is made available
under the Open Data Commons Attribution License v1.0 (Clifford et al., Computing in Cardiology
44, 2017; Goldberger et al., Circulation 101(23), 2000).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._errors import DataError
from ._paths import database_dir

__all__ = ["CHALLENGE2017_CODES", "CHALLENGE2017_LABELS", "CHALLENGE2017_RATE_HZ", "CHALLENGE2017_FOLDS",
           "Challenge2017Record", "challenge2017_reference", "challenge2017_read", "challenge2017_split",
           "challenge_score"]

CHALLENGE2017_LABELS = ("normal", "af", "other", "noisy")
CHALLENGE2017_CODES = {"N": "normal", "A": "af", "O": "other", "~": "noisy"}
CHALLENGE2017_RATE_HZ = 300.0
# 10 folds: 80 % of the records train, 10 % validate, 10 % test
CHALLENGE2017_FOLDS = 10
_SCORED = ("normal", "af", "other")


@dataclass(frozen=True, eq=False)
class Challenge2017Record:
    name: str
    signal: np.ndarray  # float64, mV
    sampling_rate: float
    label: str  # a CHALLENGE2017_LABELS entry


def _folder(data_dir: str | Path | None) -> Path:
    return database_dir(data_dir, "challenge2017", pattern="REFERENCE.csv")


def challenge2017_reference(data_dir: str | Path | None) -> dict[str, str]:
    """``{record: label}`` from ``REFERENCE.csv`` (labels as ``CHALLENGE2017_LABELS`` names).

    An unknown code, a malformed row or a record listed twice is a ``DataError`` naming the line.
    """
    path = _folder(data_dir) / "REFERENCE.csv"
    out: dict[str, str] = {}
    with open(path, newline="") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2 or not row[0].strip():
                raise DataError(f"challenge2017: {path}:{line}: expected 'record,label', got {','.join(row)!r}")
            name, code = row[0].strip(), row[1].strip()
            if code not in CHALLENGE2017_CODES:
                raise DataError(f"challenge2017: {path}:{line}: unknown label {code!r} for {name}; accepted: "
                                f"{', '.join(CHALLENGE2017_CODES)}")
            if name in out:
                raise DataError(f"challenge2017: {path}:{line}: record {name} listed twice")
            out[name] = CHALLENGE2017_CODES[code]
    if not out:
        raise DataError(f"challenge2017: {path} lists no records")
    return out


def challenge2017_read(data_dir: str | Path | None, record: str, *, label: str | None = None,
                       expect_rate: float | None = CHALLENGE2017_RATE_HZ) -> Challenge2017Record:
    """Read one record (signal in mV). A missing header or signal file, a record with other than
    one signal, or a sampling rate other than ``expect_rate`` (``None``: any) is a ``DataError``."""
    import wfdb  # deferred: wfdb pulls in pandas and matplotlib, which the runtime never needs

    folder = _folder(data_dir)
    path = folder / str(record)
    if not path.with_suffix(".hea").is_file():
        raise DataError(f"challenge2017: record {record} has no header {path.with_suffix('.hea')}")
    try:
        header = wfdb.rdheader(str(path))
    except Exception as exc:  # wfdb raises bare ValueErrors and IndexErrors for a bad header
        raise DataError(f"challenge2017: record {record}: unreadable header ({exc})") from None
    files = {folder / f for f in (header.file_name or [])}
    missing = [p.name for p in files if not p.is_file()]
    if missing or not files:
        raise DataError(f"challenge2017: record {record} lacks its signal file {', '.join(missing) or '(none named)'}")
    if header.n_sig != 1:
        raise DataError(f"challenge2017: record {record} has {header.n_sig} signals, expected one ECG lead")
    if expect_rate is not None and float(header.fs) != float(expect_rate):
        raise DataError(f"challenge2017: record {record} is sampled at {header.fs:g} Hz, expected {expect_rate:g} Hz")
    try:
        rec = wfdb.rdrecord(str(path))
    except Exception as exc:  # a truncated or corrupt signal file
        raise DataError(f"challenge2017: record {record}: unreadable signal ({exc})") from None
    signal = np.asarray(rec.p_signal[:, 0], dtype=np.float64)
    if not np.isfinite(signal).all():
        signal = np.nan_to_num(signal, nan=0.0, posinf=0.0, neginf=0.0)  # wfdb marks invalid samples NaN
    return Challenge2017Record(name=str(record), signal=signal, sampling_rate=float(header.fs),
                               label=label if label is not None else "")


def challenge2017_split(reference: dict[str, str], *, seed: int = 0, folds: int = CHALLENGE2017_FOLDS,
                        fold: int = 0) -> dict[str, tuple[str, ...]]:
    """Record-level stratified split: ``{"train", "val", "test"}`` -> sorted record names.

    >>> ref = {f"A{i:05d}": ("normal", "af")[i % 2] for i in range(40)}
    >>> s = challenge2017_split(ref, folds=10)
    >>> [len(s[k]) for k in ("train", "val", "test")]
    [32, 4, 4]
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 3:
        raise DataError(f"challenge2017: folds must be an integer >= 3, got {folds!r}")
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
        raise DataError(f"challenge2017: fold must be in 0..{folds - 1}, got {fold!r}")
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    for label in CHALLENGE2017_LABELS:
        names = sorted(n for n, lab in reference.items() if lab == label)
        order = rng.permutation(len(names))
        offset = int(rng.integers(folds))  # so small classes do not always fill fold 0 first
        for rank, i in enumerate(order):
            fold_of[names[i]] = (rank + offset) % folds
    val_fold = (fold + 1) % folds
    side = {n: "test" if f == fold else "val" if f == val_fold else "train" for n, f in fold_of.items()}
    return {s: tuple(sorted(n for n, v in side.items() if v == s)) for s in ("train", "val", "test")}


def challenge_score(y_true, y_pred, labels: tuple[str, ...] = CHALLENGE2017_LABELS) -> dict[str, float]:
    """The official score (mean F1 of normal, af and other), the F1 of every label, and AF
    sensitivity and specificity (``af_se``, ``af_sp``: AF against everything else).

    ``y_true`` and ``y_pred`` hold label names. "inconclusive", the runtime's answer for a
    recording its model reads as noisy (or one too short to classify), counts as a "noisy"
    prediction, as "~" does in the challenge; any other name outside ``labels`` is a miss.
    """
    y_true = np.asarray(y_true, dtype=object)
    y_pred = np.array(["noisy" if p == "inconclusive" else p for p in y_pred], dtype=object)
    out: dict[str, float] = {}
    for label in labels:
        tp = float(np.sum((y_true == label) & (y_pred == label)))
        denom = float(np.sum(y_true == label) + np.sum(y_pred == label))
        out[f"f1_{label}"] = 2 * tp / denom if denom else float("nan")
    out["score"] = float(np.mean([out[f"f1_{label}"] for label in _SCORED]))
    t, p = y_true == "af", y_pred == "af"
    out["af_se"] = float((t & p).sum() / max(t.sum(), 1))
    out["af_sp"] = float((~t & ~p).sum() / max((~t).sum(), 1))
    return out
