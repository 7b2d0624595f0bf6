"""Shared fixtures: ``data_dir``, the PhysioNet data root for tests marked ``realdata``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``$WEARABLE_DATA_DIR``, else ``<repo>/../shared/data``; skips the test when neither exists."""
    root = Path(os.environ.get("WEARABLE_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
    if not root.is_dir():
        pytest.skip(f"PhysioNet data not found at {root} (set WEARABLE_DATA_DIR)")
    return root
