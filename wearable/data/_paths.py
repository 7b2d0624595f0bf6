"""Locating a PhysioNet database folder from a user-supplied data directory."""

from __future__ import annotations

import os
from pathlib import Path

from ._errors import DataError

__all__ = ["DATA_DIR_ENV", "database_dir"]

DATA_DIR_ENV = "WEARABLE_DATA_DIR"


def database_dir(data_dir: str | Path | None, database: str, *, pattern: str) -> Path:
    """The folder holding ``database``'s files: ``data_dir/database`` or ``data_dir`` itself.

    ``data_dir=None`` falls back to ``$WEARABLE_DATA_DIR``. A folder counts when it holds a
    file matching ``pattern`` (e.g. ``"*.atr"``).
    """
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV)
        if not data_dir:
            raise DataError(f"{database}: no data_dir given and ${DATA_DIR_ENV} is not set")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"{database}: data dir {root} does not exist")
    for folder in (root / database, root):
        if folder.is_dir() and next(folder.glob(pattern), None) is not None:
            return folder
    raise DataError(f"{database}: no records in {root} (no {pattern} there or in {root / database})")
