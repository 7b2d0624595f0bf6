"""1-D ResNet-18 baseline (issue 4): registered here once built."""

__all__: list[str] = []
