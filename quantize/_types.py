"""Public value types of the export stage: thresholds, the manifest, errors."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Thresholds", "Manifest", "ExportError", "CheckFailed", "MANIFEST_NAME", "SCHEMA_VERSION"]

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1


class ExportError(RuntimeError):
    """The export could not be completed (conversion crashed, a runtime refused the model)."""


class CheckFailed(ExportError):
    """A check or gate failed; the message lists every failing figure against its threshold."""


@dataclass(frozen=True)
class Thresholds:
    """Gates an int8 export must pass; all measured on the held-out windows.

    * ``min_agreement_pct``: argmax of the int8 output (dequantized) equals the float
      PyTorch argmax on at least this share of windows (of time samples for per-sample
      outputs). 97 % leaves room for the near-ties of a model with a few classes; the trial
      DS-CNN reached 100 %, the attention model 99 %.
    * ``max_error_ratio``: largest |int8 − float| output error divided by the peak-to-peak
      range of the float output over the held-out set (for a per-sample output, with W
      values per window, its 99.9th percentile: the maximum over every sample of every
      window is a far tail, 0.13 on an ECG-CL QRS model whose per-sample F1 moved 0.02
      point). One int8 output step is range/255
      (0.4 %), but input quantization alone moves logits by more: on a synthetic-rhythm
      dscnn_tiny (1000 samples) int8 input cost 0.26 of a logit range of 11.3, and the
      full-int8 model's max error was 0.41 (3.6 %; XNNPACK 4.1 %); the trial DS-CNN had 0.14
      on about 20 (0.7 %). 0.1 fails broken calibration but not ordinary rounding.
    * ``min_output_coverage``: share of the float output range that the int8 output scale
      and zero point can represent. Catches the clipped-logits trap of moving-average
      calibration (int8 range ±5 for logits up to 11.9, coverage < 0.5). Held-out data may
      reach a little past the calibration min/max, hence 0.9 and not 1.
    * ``max_onnx_diff``: max |ONNX Runtime − PyTorch| of the fp32 ONNX reference.
    * ``max_tflm_diff``: max int8 difference of TFLite Micro's outputs (and of tflite-runtime
      2.14's, replaying the golden windows) from the golden outputs, which come from
      ai-edge-litert's *reference* kernels (``BUILTIN_REF``): those are what TFLite Micro
      implements: they agreed bit for bit on the shipped DS-CNN, ECG-CL and InceptionFormer
      models, and within one step on a 128-sample DS-CNN test model. The optimized builtin
      kernels drifted by 6-8 steps on the residual and attention models, so they are gated
      against float only.
      The firmware self-test uses the difference measured for the model as its tolerance.

    The agreement and error gates apply to the reference kernels and to XNNPACK (the default
    CPU delegate of ai-edge-litert and tflite-runtime), whose requantization rounds up to one
    step differently per op; over a network this added up to 13 output steps, so XNNPACK is
    judged against the float model, not step by step.
    """

    min_agreement_pct: float = 97.0
    max_error_ratio: float = 0.1
    min_output_coverage: float = 0.9
    max_onnx_diff: float = 1e-4
    max_tflm_diff: int = 1
    max_metric_drop: float = 0.5

    def __post_init__(self) -> None:
        # `not low <= value <= high` also refuses NaN, which would pass every `value > limit` gate.
        bounds = {"min_agreement_pct": 100.0, "max_error_ratio": math.inf, "min_output_coverage": 1.0,
                  "max_onnx_diff": math.inf, "max_tflm_diff": 255, "max_metric_drop": math.inf}
        for name, high in bounds.items():
            value = getattr(self, name)
            if not 0 <= value <= high or not math.isfinite(value):
                span = f"in [0, {high:g}]" if math.isfinite(high) else ">= 0"
                raise ValueError(f"{name} must be a finite number {span}, got {value!r}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Manifest:
    """An exported artifact directory: ``data`` is the parsed ``manifest.json``.

    ``seconds`` (wall time per stage) is filled by ``export_model`` and never written to
    the file, so that the file depends only on the inputs.
    """

    directory: Path
    data: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict, compare=False)

    @classmethod
    def load(cls, directory: str | Path) -> "Manifest":
        directory = Path(directory)
        return cls(directory, json.loads((directory / MANIFEST_NAME).read_text()))

    @property
    def path(self) -> Path:
        return self.directory / MANIFEST_NAME

    @property
    def model_name(self) -> str:
        return self.data["model"]["name"]

    @property
    def op_count(self) -> int:
        return self.data["op_count"]

    @property
    def tflite_bytes(self) -> int:
        return self.data["files"]["model_int8.tflite"]["bytes"]

    @property
    def arena_bytes(self) -> int | None:
        return (self.data.get("tflm") or {}).get("arena_bytes")

    @property
    def agreement_pct(self) -> float | None:
        """Worst argmax agreement over the model outputs (None if no output has classes)."""
        found = [o["argmax_agreement_pct"] for o in self.data["checks"]["agreement"]
                 if o["argmax_agreement_pct"] is not None]
        return min(found) if found else None

    @property
    def max_abs_error(self) -> float:
        return max(o["max_abs_error"] for o in self.data["checks"]["agreement"])

    @property
    def verified_runtimes(self) -> list[str]:
        return sorted(self.data["verified_runtimes"])
