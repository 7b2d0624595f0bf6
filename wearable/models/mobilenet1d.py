"""1-D MobileNetV2 baseline (issue 4): registered here once built."""

__all__: list[str] = []
