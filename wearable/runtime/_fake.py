"""Fake artifacts and interpreters for tests and benchmarks that need no exported model.

``fake_artifact(mode)`` returns an ``Artifact`` whose manifest looks like an export (100 Hz,
ECG band-pass from the real design) and ``FakeInterpreter`` a deterministic stand-in with
the TFLite interpreter API: the classification fake says "high" when the window's largest
absolute int8 value is large, the regression fake returns a value that grows with it, the
segmentation fake labels ``qrs`` where the sample is large, ``motion`` where it sits at the clip,
``clean``/``background`` elsewhere; the ``dual`` fake is the classification fake plus a
``clean``/``artifact`` mask output (artifact within 10 samples of the clip), like the PPG
dual-stream model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .artifact import Artifact

__all__ = ["fake_artifact", "FakeInterpreter", "ECG_SOS_100HZ"]

# filter_sos("ecg", sampling_rate=100.0), as written into manifests (rounded to 12 digits).
ECG_SOS_100HZ = [[0.624447671549, 1.248895343097, 0.624447671549, 1.0, 1.140853407676, 0.413249359615],
                 [1.0, -2.0, 1.0, 1.0, -1.955572980257, 0.956548270115]]
_SCALE, _ZERO = 0.02, 0


def fake_artifact(mode: str = "classification", *, window: int = 200, hop: int = 50, rate: float = 100.0) -> Artifact:
    """A manifest-only artifact (no model bytes): pair it with ``FakeInterpreter``."""
    labels = {"classification": ["low", "high"], "dual": ["low", "high"], "regression": ["hr_bpm"]}.get(
        mode, ["background", "qrs", "motion"])
    out_shape = [1, len(labels)] if mode in ("classification", "dual", "regression") else [1, len(labels), window]
    outputs = [{"dtype": "int8", "shape": out_shape, "scale": 0.1, "zero_point": 0}]
    data = {"preprocessing": {"ecg_clip_mv": 5.0, "ppg_clip": 5.0, "channels": [{"kind": "ecg", "sos": ECG_SOS_100HZ}]}}
    if mode == "dual":
        outputs.append({"dtype": "int8", "shape": [1, 2, window], "scale": 0.1, "zero_point": 0})
        data["mask_labels"] = ["clean", "artifact"]
    manifest = {
        "schema_version": 1, "sampling_rate_hz": rate, "window_samples": window, "hop_samples": hop,
        "labels": labels, "files": {},
        "inputs": [{"dtype": "int8", "shape": [1, 1, window], "scale": _SCALE, "zero_point": _ZERO}],
        "outputs": outputs, "data": data,
    }
    return Artifact(path=Path("."), manifest=manifest, model=b"")


class FakeInterpreter:
    """Deterministic function of the int8 window with the TFLite ``Interpreter`` methods."""

    def __init__(self, artifact: Artifact) -> None:
        m = artifact.manifest
        self.window = m["window_samples"]
        self.out_shape = tuple(m["outputs"][0]["shape"])
        self.dual = len(m["outputs"]) > 1
        self._x = np.zeros((1, 1, self.window), np.int8)
        self._y = np.zeros(self.out_shape, np.int8)
        self._mask = np.zeros((1, 2, self.window), np.int8)
        self.calls = 0

    def get_input_details(self):
        return [{"name": "x", "index": 0, "shape": np.array([1, 1, self.window]), "dtype": np.int8,
                 "quantization": (_SCALE, _ZERO)}]

    def get_output_details(self):
        out = [{"name": "y", "index": 1, "shape": np.array(self.out_shape), "dtype": np.int8,
                "quantization": (0.1, 0)}]
        if self.dual:
            out.append({"name": "mask", "index": 2, "shape": np.array(self._mask.shape), "dtype": np.int8,
                        "quantization": (0.1, 0)})
        return out

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        if value.shape != self._x.shape or value.dtype != np.int8:
            raise ValueError(f"bad input {value.shape} {value.dtype}")
        self._x = np.array(value)

    def invoke(self) -> None:
        self.calls += 1
        x = self._x[0, 0].astype(np.int32)
        # within 10 samples of the int8 rail (clipped input): one run over a clipped oscillation
        rail = np.convolve(np.abs(x) >= 127, np.ones(21), mode="same") > 0
        self._mask = np.stack([np.where(rail, -50, 50), np.where(rail, 50, -50)])[None].astype(np.int8)
        if self.out_shape == (1, 1):
            # a value that grows with the window's largest |int8| (6.0 + max / 20 after dequantization)
            self._y = np.array([[min(127, 60 + int(np.abs(x).max()) // 2)]], np.int8)
        elif len(self.out_shape) == 2:
            # a peak above 0.5 mV (25 int8 steps) anywhere in the window means "high"; logits +-5.
            high = np.abs(x).max() > 25
            self._y = np.array([[-50, 50]] if high else [[50, -50]], np.int8)
        else:
            y = np.full(self.out_shape, -50, np.int8)
            peak = np.abs(x) > 30         # > 0.6 mV
            # widened by 2 samples each side, so a beat's run has a QRS-like width (>= 50 ms at 100 Hz)
            qrs = np.convolve(peak, np.ones(5), mode="same") > 0
            motion = np.abs(x) >= 127     # at the int8 rail: clipped input
            y[0, 0, ~qrs & ~motion] = 50
            y[0, 1, qrs & ~motion] = 50
            y[0, 2, motion] = 50
            self._y = y

    def get_tensor(self, index: int) -> np.ndarray:
        return (self._mask if index == 2 else self._y).copy()
