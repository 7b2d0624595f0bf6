"""C sources for TensorFlow Lite Micro firmware, generated from an exported artifact.

``generate(artifact_dir, *, out_dir=None)`` writes ``<artifact_dir>/firmware/``: the model as a
16-byte aligned array, its settings (shapes, scales, labels, arena size, filter coefficients),
an op resolver with exactly the model's ops, golden test vectors, and the project-written C99
ring buffer and preprocessing sources. ``cross_compile_sizes(firmware_dir)`` builds them for a
Cortex-M4 and returns the section sizes. CLI: ``python -m firmware_bridge.generate ARTIFACT_DIR``.
"""

from ._context import ARENA_MARGIN_PERCENT, FirmwareError, c_identifier, quantize_multiplier
from ._cross import CORTEX_M4_FLAGS, ToolchainMissing, cross_compile_sizes
from ._generate import C_SOURCE_DIR, C_SOURCES, GENERATED_FILES, generate

__all__ = ["generate", "FirmwareError", "ARENA_MARGIN_PERCENT", "GENERATED_FILES", "C_SOURCES", "C_SOURCE_DIR",
           "c_identifier", "quantize_multiplier",
           "cross_compile_sizes", "ToolchainMissing", "CORTEX_M4_FLAGS"]
