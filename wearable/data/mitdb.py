"""MIT-BIH Arrhythmia Database: records, AAMI beat classes, rhythm episodes, inter-patient split.

Beat symbols map to the five AAMI EC57 classes as in de Chazal et al. (IEEE TBME 2004):
N = N L R e j, S = A a J S, V = V E, F = F, Q = / f Q. The symbols B, n, r and ? do not occur
in mitdb; they are mapped as the wider literature does (B→N, n→S, r→V, ?→Q) so that other
WFDB databases read the same way. Non-beat annotations (rhythm, noise, comments) carry no class.

Rhythm episodes come from the ``aux_note`` of '+' annotations ("(N", "(AFIB", "(AFL", "(B",
"(T", …); each lasts until the next '+' or the end of the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._errors import DataError
from ._paths import database_dir

__all__ = [
    "AAMI_CLASSES",
    "AAMI_SYMBOLS",
    "DS1",
    "DS2",
    "MITDB_PACED",
    "MITDB_VAL",
    "MITDB_RHYTHM_LABELS",
    "RhythmEpisode",
    "MitdbRecord",
    "mitdb_read",
    "mitdb_records",
    "beats_aami",
    "rhythm_episodes",
    "rhythm_label",
]

AAMI_CLASSES = ("N", "S", "V", "F", "Q")
AAMI_SYMBOLS: dict[str, str] = {
    **dict.fromkeys("NLRejB", "N"),
    **dict.fromkeys("AaJSn", "S"),
    **dict.fromkeys("VEr", "V"),
    "F": "F",
    **dict.fromkeys("/fQ?", "Q"),
}
# de Chazal 2004 inter-patient split; the four paced records belong to neither.
DS1 = ("101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122", "124", "201", "203", "205",
       "207", "208", "209", "215", "220", "223", "230")
DS2 = ("100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210", "212", "213", "214", "219",
       "221", "222", "228", "231", "232", "233", "234")
MITDB_PACED = ("102", "104", "107", "217")
# Validation records, held out of DS1 whole so that no patient is in both train and val.
# Chosen for coverage: 118 (S), 201 (S, V and atrial fibrillation), 223 (V, S, F). What
# stays for training: N 40 020, S 647, V 3 101, F 399, Q 8 beats.
MITDB_VAL = ("118", "201", "223")
MITDB_RHYTHM_LABELS = ("normal", "af", "other")
# Atrial flutter ("(AFL") is "other": its RR is often regular, unlike AF.
_RHYTHM_CLASS = {"(N": "normal", "(AFIB": "af"}


@dataclass(frozen=True)
class RhythmEpisode:
    """Rhythm ``aux`` (e.g. "(AFIB") over samples ``start`` (inclusive) to ``stop`` (exclusive)."""

    start: int
    stop: int
    aux: str


@dataclass(frozen=True, eq=False)
class MitdbRecord:
    """One lead of a WFDB record with beat and rhythm annotations, at the file's own rate."""

    name: str
    signal: np.ndarray  # float64, mV
    sampling_rate: float
    lead: str
    beat_samples: np.ndarray  # int64, only annotations with an AAMI class
    beat_symbols: np.ndarray  # '<U1', the original symbols
    beat_classes: np.ndarray  # int64, index into AAMI_CLASSES
    rhythms: tuple[RhythmEpisode, ...]


def mitdb_read(data_dir: str | Path | None, record: str, *, lead: str | None = "MLII",
               annotator: str = "atr") -> MitdbRecord:
    """Read ``lead`` (chosen by name: record 114 stores MLII second) and the annotations of ``record``;
    ``lead=None``: MLII, else the record's first lead (the paced 102 and 104 have no MLII).

    ``data_dir`` is the folder with the records or one holding a ``mitdb`` folder.
    """
    import wfdb  # deferred: wfdb pulls in pandas and matplotlib, which the runtime never needs

    folder = database_dir(data_dir, "mitdb", pattern=f"*.{annotator}")
    path = folder / str(record)
    if not path.with_suffix(".hea").is_file():
        raise DataError(f"mitdb: record {record} not found in {folder}")
    header = wfdb.rdheader(str(path))
    names = [name.strip(", ") for name in header.sig_name]
    if lead is None:
        lead = "MLII" if "MLII" in names else names[0]
    if lead not in names:
        raise DataError(f"mitdb: record {record} has no {lead} lead (leads: {', '.join(names)})")
    rec = wfdb.rdrecord(str(path), channels=[names.index(lead)])
    ann = wfdb.rdann(str(path), annotator)
    symbols = np.asarray(ann.symbol, dtype="<U1")
    samples = np.asarray(ann.sample, dtype=np.int64)
    signal = rec.p_signal[:, 0].astype(np.float64)
    beat_samples, beat_symbols, beat_classes = beats_aami(samples, symbols)
    return MitdbRecord(
        name=str(record), signal=signal, sampling_rate=float(rec.fs), lead=lead, beat_samples=beat_samples,
        beat_symbols=beat_symbols, beat_classes=beat_classes,
        rhythms=rhythm_episodes(samples, symbols, ann.aux_note, n_samples=signal.size),
    )


def mitdb_records(data_dir: str | Path | None) -> tuple[str, ...]:
    """Names of the annotated records present in the data folder, sorted."""
    folder = database_dir(data_dir, "mitdb", pattern="*.atr")
    return tuple(sorted(p.stem for p in folder.glob("*.atr") if p.with_suffix(".hea").is_file()))


def beats_aami(samples: np.ndarray, symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the beat annotations: ``(samples, symbols, AAMI class ids)``."""
    symbols = np.asarray(symbols, dtype="<U1")
    keep = np.isin(symbols, list(AAMI_SYMBOLS))
    classes = np.array([AAMI_CLASSES.index(AAMI_SYMBOLS[s]) for s in symbols[keep]], dtype=np.int64)
    return np.asarray(samples, dtype=np.int64)[keep], symbols[keep], classes


def rhythm_episodes(samples: np.ndarray, symbols, aux_notes, *, n_samples: int) -> tuple[RhythmEpisode, ...]:
    """Episodes from the '+' annotations; ``aux_note`` is stripped of NULs and blanks."""
    starts = [(int(s), str(aux).replace("\x00", "").strip()) for s, sym, aux in zip(samples, symbols, aux_notes)
              if sym == "+"]
    stops = [s for s, _ in starts[1:]] + [n_samples]
    return tuple(RhythmEpisode(a, b, aux) for (a, aux), b in zip(starts, stops) if b > a)


def rhythm_label(aux: str) -> str:
    """``MITDB_RHYTHM_LABELS`` entry for a rhythm aux note: "(N"→normal, "(AFIB"→af, else other."""
    return _RHYTHM_CLASS.get(aux, "other")
