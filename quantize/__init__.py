"""Export stage: PyTorch model -> fp32 ONNX + full-int8 TFLite, checked and described.

The whole public API is here::

    from quantize import export_model, Thresholds
    manifest = export_model(checkpoint, "artifacts/dscnn_tiny",
                            calibration=x_train[:512], holdout=x_val, holdout_labels=y_val)

``export_model`` folds BatchNorm, exports ``model.onnx`` (checked in onnxruntime), converts
through a backend of ``BACKENDS`` (``litert``: litert-torch + ai-edge-quantizer, see
``quantize.backends.litert`` for why), rejects anything that is not full int8, gates
float-vs-int8 agreement, runs the model in ai-edge-litert, TFLite Micro (arena size) and
optionally tflite-runtime 2.14, and writes ``manifest.json`` and ``golden.npz``. The command
line is ``python -m quantize.export`` (``wearable-export``).
"""

from ._export import GOLDEN_NAME, ONNX_NAME, TFLITE_NAME, export_model
from ._fold import count_batchnorm, fold_batchnorm
from ._tflite import NotFullIntegerError, TfliteSummary, check_full_int8, summarize_tflite
from ._types import MANIFEST_NAME, CheckFailed, ExportError, Manifest, Thresholds
from .backends import BACKENDS, get_backend

__all__ = [
    "export_model",
    "Thresholds",
    "Manifest",
    "ExportError",
    "CheckFailed",
    "NotFullIntegerError",
    "fold_batchnorm",
    "count_batchnorm",
    "check_full_int8",
    "summarize_tflite",
    "TfliteSummary",
    "BACKENDS",
    "get_backend",
    "MANIFEST_NAME",
    "ONNX_NAME",
    "TFLITE_NAME",
    "GOLDEN_NAME",
]
