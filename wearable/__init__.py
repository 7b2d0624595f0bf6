"""Single-lead ECG and PPG models for wearables.

Subpackages are imported explicitly so that the streaming runtime (``wearable.runtime``)
never pulls in torch: ``wearable.data``, ``wearable.models``, ``wearable.training``.
"""

from pathlib import Path

__all__ = ["__version__", "CHECKPOINT_DIR"]
__version__ = "0.1.0"
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"  # shipped checkpoints (+ evalsets, settings)
