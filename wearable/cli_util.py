"""Small helpers shared by the command-line entry points (not public API)."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Callable

__all__ = ["UsageError", "check_writable_dir", "number_in"]


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


def number_in(low: float | None = None, high: float | None = None, *, integer: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a finite number (an integer with ``integer``) in ``[low, high]``.

    NaN compares false with everything, so a NaN threshold would pass every gate written as
    ``if value > limit: fail``; infinity would pass the others.

    >>> number_in(0, 1)("0.5")
    0.5
    """
    span = (f"in [{low:g}, {high:g}]" if low is not None and high is not None
            else f">= {low:g}" if low is not None else f"<= {high:g}" if high is not None else "")
    what = f"{'an integer' if integer else 'a finite number'}{' ' + span if span else ''}"

    def parse(text: str) -> float:
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    return parse
