"""Tiny InceptionFormer (issue 4): registered here once built."""

__all__: list[str] = []
