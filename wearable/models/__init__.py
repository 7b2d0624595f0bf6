"""Model registry and the architectures registered in it.

``create(name, **cfg)`` builds a model, ``list_models()`` lists the names. Every model has a
``config`` attribute (a frozen dataclass) with at least ``sampling_rate_hz``,
``window_samples``, ``in_channels`` and ``num_classes``, and takes input shaped
``(batch, in_channels, window_samples)``.
"""

from . import dscnn  # noqa: F401  (registers its entries)
from ._registry import UnknownModelError, config_class, create, list_models, register_model

__all__ = ["create", "list_models", "config_class", "register_model", "UnknownModelError"]
