"""ECG-CL multi-resolution continual-learning backbone (issue 3): registered here once built."""

__all__: list[str] = []
