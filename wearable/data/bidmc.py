"""BIDMC PPG and Respiration Dataset: synchronised ECG lead II and PPG at 125 Hz, 1 Hz numerics.

Header quirks handled here: signal names carry a trailing comma ("II,", "PLETH,"), channel
order differs between records, and bidmc19n's SpO2 channel has a NaN gain (wfdb mangles its
name; only HR and PULSE are read). HR contains occasional NaNs (bidmc27).

Subject-wise split by record number (one subject per record): train bidmc01–37, val
bidmc38–44, test bidmc45–53.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._errors import DataError
from ._paths import database_dir

__all__ = ["BIDMC_SPLITS", "BidmcRecord", "bidmc_read", "bidmc_records"]

BIDMC_SPLITS: dict[str, tuple[str, ...]] = {
    "train": tuple(f"bidmc{i:02d}" for i in range(1, 38)),
    "val": tuple(f"bidmc{i:02d}" for i in range(38, 45)),
    "test": tuple(f"bidmc{i:02d}" for i in range(45, 54)),
}


@dataclass(frozen=True, eq=False)
class BidmcRecord:
    """ECG (mV) and PPG (monitor units) on one time base, plus the 1 Hz HR and pulse-rate numerics."""

    name: str
    ecg: np.ndarray
    ppg: np.ndarray
    sampling_rate: float
    hr: np.ndarray  # bpm at numerics_rate, NaN where the monitor had none
    pulse: np.ndarray  # bpm from the oximeter
    numerics_rate: float


def bidmc_read(data_dir: str | Path | None, record: str) -> BidmcRecord:
    """Read ECG II, PLETH and the ``<record>n`` numerics; ``data_dir`` holds the files or a ``bidmc`` folder."""
    import wfdb  # deferred: heavy import the runtime never needs

    folder = database_dir(data_dir, "bidmc", pattern="bidmc*.hea")
    path = folder / record
    if not path.with_suffix(".hea").is_file():
        raise DataError(f"bidmc: record {record} not found in {folder}")
    wave = wfdb.rdrecord(str(path))
    names = [name.strip(", ") for name in wave.sig_name]
    missing = [name for name in ("II", "PLETH") if name not in names]
    if missing:
        raise DataError(f"bidmc: record {record} lacks {', '.join(missing)} (channels: {', '.join(names)})")
    numerics = wfdb.rdrecord(str(folder / f"{record}n"))
    num_names = [name.strip(", ") for name in numerics.sig_name]
    return BidmcRecord(
        name=record,
        ecg=wave.p_signal[:, names.index("II")].astype(np.float64),
        ppg=wave.p_signal[:, names.index("PLETH")].astype(np.float64),
        sampling_rate=float(wave.fs),
        hr=numerics.p_signal[:, num_names.index("HR")].astype(np.float64),
        pulse=numerics.p_signal[:, num_names.index("PULSE")].astype(np.float64),
        numerics_rate=float(numerics.fs),
    )


def bidmc_records(data_dir: str | Path | None) -> tuple[str, ...]:
    """Waveform records present (those with a numerics record next to them), sorted."""
    folder = database_dir(data_dir, "bidmc", pattern="bidmc*.hea")
    return tuple(sorted(p.stem for p in folder.glob("bidmc*.hea")
                        if not p.stem.endswith("n") and (folder / f"{p.stem}n.hea").is_file()))
