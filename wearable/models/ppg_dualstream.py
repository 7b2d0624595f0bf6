"""Dual-stream PPG rhythm + artifact-mask model (issue 6): registered here once built."""

__all__: list[str] = []
