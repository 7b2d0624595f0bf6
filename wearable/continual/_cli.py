"""Command-line plumbing shared by ``wearable.continual.run`` and ``prune_report``."""

from __future__ import annotations

import argparse

__all__ = ["Parser"]


class Parser(argparse.ArgumentParser):
    """argparse that reports bad input as one ``error: ...`` line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> None:
        self.exit(2, f"error: {message}\n")
