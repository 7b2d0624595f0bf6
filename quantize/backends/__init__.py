"""Conversion backends: PyTorch module -> full-int8 ``.tflite`` flatbuffer.

Each backend is one module exposing a ``BACKEND`` (a ``Backend``); ``BACKENDS`` maps names to
them. The export pipeline (ONNX reference, checks, manifest) is shared; only the conversion
differs, so a second route (onnx2tf, see shared/notes/conversion.md) is one more module and
one more entry here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from torch import nn

from . import litert

__all__ = ["Backend", "BACKENDS", "get_backend"]


@dataclass(frozen=True)
class Backend:
    """A conversion route.

    ``to_int8(model, calibration)`` gets an eval-mode module with BatchNorm already folded
    and calibration windows ``(n, *input_shape)`` float32, and returns the full-int8
    flatbuffer (int8 input and output) for batch size 1. ``to_float(model, example)``
    returns the unquantized flatbuffer, and ``float_to_int8(float_flatbuffer, calibration, *,
    extremes=None)`` quantizes it keeping the tensor names, so the per-tensor diagnosis can pair
    the two (``extremes``: the indices below, when the caller has them already).
    ``extreme_windows(float_flatbuffer, calibration)`` gives the indices of the windows whose
    calibration result equals that of all of them (every window, if the route cannot tell).
    """

    name: str
    to_int8: Callable[[nn.Module, np.ndarray], bytes]
    to_float: Callable[[nn.Module, np.ndarray], bytes]
    float_to_int8: Callable[..., bytes]
    versions: Callable[[], dict[str, str]]
    settings: dict[str, str] = field(default_factory=dict)  # recorded in the manifest
    extreme_windows: Callable[[bytes, np.ndarray], np.ndarray] = lambda _model, x: np.arange(len(x))


BACKENDS: dict[str, Backend] = {
    "litert": Backend(name="litert", to_int8=litert.to_int8, to_float=litert.to_float,
                      float_to_int8=litert.float_to_int8, extreme_windows=litert.extreme_windows,
                      versions=litert.versions, settings=litert.SETTINGS),
}


def get_backend(name: str) -> Backend:
    """The backend called ``name``; ``ValueError`` listing the accepted names otherwise."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; accepted: {', '.join(sorted(BACKENDS))}") from None
