"""Model registry: one entry function per model variant (timm style)."""

from __future__ import annotations

from dataclasses import fields
from typing import Callable

from torch import nn

__all__ = ["register_model", "create", "list_models", "config_class", "UnknownModelError"]

_ENTRIES: dict[str, Callable[..., nn.Module]] = {}
_CONFIGS: dict[str, type] = {}


class UnknownModelError(KeyError):
    """Raised for a model name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def register_model(config_cls: type) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register ``fn`` under its own name; ``config_cls`` is the frozen dataclass it accepts."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if fn.__name__ in _ENTRIES:
            raise ValueError(f"model {fn.__name__!r} registered twice")
        _ENTRIES[fn.__name__] = fn
        _CONFIGS[fn.__name__] = config_cls
        return fn

    return wrap


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_ENTRIES)


def config_class(name: str) -> type:
    """The config dataclass of a registered model."""
    _check_name(name)
    return _CONFIGS[name]


def create(name: str, **cfg) -> nn.Module:
    """Build model ``name``; keyword arguments override its default config fields.

    >>> model = create("dscnn_tiny", num_classes=3)
    >>> model.config.num_classes
    3
    """
    _check_name(name)
    known = {f.name for f in fields(_CONFIGS[name])}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise TypeError(f"{name}: unknown config field(s) {unknown}; accepted: {sorted(known)}")
    return _ENTRIES[name](**cfg)


def _check_name(name: str) -> None:
    if name not in _ENTRIES:
        raise UnknownModelError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
