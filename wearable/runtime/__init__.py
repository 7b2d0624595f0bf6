"""On-device inference: TFLite interpreter loading and int8 helpers (numpy + one TFLite runtime).

Never imports torch. A later stage adds the streaming runtime here.
"""

from . import golden, interpreter
from .golden import load_golden, replay_golden
from .interpreter import (
    BACKENDS,
    RuntimeUnavailableError,
    available_backends,
    backend_version,
    dequantize,
    invoke,
    load_interpreter,
    quant_params,
    quantize,
)

__all__ = [*interpreter.__all__, *golden.__all__]
