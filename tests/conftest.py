"""Shared fixtures: ``data_dir`` (the PhysioNet data root for tests marked ``realdata``), ``one_torch_thread``."""

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


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test (results of small trainings then match across machines)."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
