"""On-device inference: TFLite interpreter loading, int8 helpers and the streaming runtime.

Needs numpy (1.x or 2.x) and one TFLite runtime; scipy is used when present. Never imports
torch. ``StreamRuntime`` turns sensor chunks into events (see ``wearable.runtime.streaming``);
``StatefulStream`` runs a stateful streaming export (``python -m quantize.stream_export``).
"""

from . import artifact, dsp, golden, interpreter, preprocess, record, ringbuffer, stateful, streaming
from .artifact import Artifact, ArtifactError, load_artifact
from .dsp import Resampler, SosFilter
from .golden import load_golden, replay_golden
from .interpreter import (
    BACKENDS,
    RuntimeUnavailableError,
    available_backends,
    backend_version,
    dequantize,
    int8_predictor,
    invoke,
    load_interpreter,
    quant_params,
    quantize,
)

from .preprocess import Preprocessor, RateMismatchError
from .record import NOISY_LABELS, RecordVote, record_decide, record_labels, record_probs, record_window_starts, softmax
from .ringbuffer import RingBuffer
from .stateful import StatefulStream
from .streaming import INCONCLUSIVE, StreamRuntime

__all__ = [*interpreter.__all__, *golden.__all__, "Artifact", "ArtifactError", "load_artifact", "Resampler",
           "SosFilter", "Preprocessor", "RateMismatchError", "RingBuffer", "INCONCLUSIVE", "StreamRuntime",
           "NOISY_LABELS", "RecordVote", "record_decide", "record_window_starts", "record_probs", "record_labels",
           "softmax",
           "StatefulStream"]
