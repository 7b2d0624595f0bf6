"""Single-lead ECG and PPG models for wearables.

Subpackages are imported explicitly so that the streaming runtime (``wearable.runtime``)
never pulls in torch: ``wearable.data``, ``wearable.models``, ``wearable.training``.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
