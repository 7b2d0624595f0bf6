"""Model registry and the architectures registered in it.

``create(name, **cfg)`` builds a model, ``list_models()`` lists the names. Every model has a
``config`` attribute (a frozen dataclass) with at least ``sampling_rate_hz``,
``window_samples``, ``in_channels`` and ``num_classes``, and takes input shaped
``(batch, in_channels, window_samples)``.
"""

# Importing a module registers its entries; one module per architecture family.
from . import cmssl, dscnn, ecgcl, inceptionformer, mobilenet1d, ppg_dualstream, resnet1d  # noqa: F401
from ._registry import UnknownModelError, config_class, create, list_models, register_model

__all__ = ["create", "list_models", "config_class", "register_model", "UnknownModelError"]
