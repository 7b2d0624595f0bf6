"""Small helpers shared by the command-line entry points (not public API)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["UsageError", "check_writable_dir"]


class UsageError(ValueError):
    """Bad command-line input: reported as one line, exit code 2."""


def check_writable_dir(path: str | Path) -> Path:
    """Fail early if ``path`` could not be created or written, without creating anything."""
    path = Path(path).absolute()
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"output path {path} is under {probe}, which is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"output directory {probe} is not writable")
    return path
