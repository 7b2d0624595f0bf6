"""Calibration on the extreme windows only gives the quantizer the ranges of every window.

``quantize.backends.litert.extreme_windows`` lets the export calibrate ai-edge-quantizer on
the few windows that hold some tensor's min or max; these tests compare the calibrator's
statistics, and the int8 model, with calibration on every window.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ai_edge_quantizer")

from quantize import fold_batchnorm  # noqa: E402
from quantize.backends import litert  # noqa: E402
from wearable.models import create  # noqa: E402


def _float_model_and_windows(n: int = 48) -> tuple[bytes, np.ndarray]:
    torch.manual_seed(0)
    model = create("dscnn_tiny", window_samples=128, num_classes=3)
    model.eval()
    rng = np.random.default_rng(0)
    # windows of very different amplitude, so different windows hold different tensors' extremes
    x = (rng.standard_normal((n, 1, 128)) * rng.uniform(0.1, 3.0, (n, 1, 1))).astype(np.float32)
    folded, _ = fold_batchnorm(model)
    return litert.to_float(folded, x), x


def _qsvs(float_model: bytes, windows: np.ndarray) -> dict:
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import calibrator, recipe, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

    (name,) = Interpreter(model_content=float_model).get_signature_list()["serving_default"]["inputs"]
    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(recipe.static_wi8_ai8())
    calib = calibrator.Calibrator(float_model, num_threads=1, qsv_update_func=qsv_utils.min_max_update)
    calib.calibrate({"serving_default": [{name: windows[i:i + 1]} for i in range(len(windows))]}, manager)
    return calib.get_model_qsvs()


def test_extreme_windows_give_the_ranges_of_all_windows():
    float_model, x = _float_model_and_windows()
    chosen = litert.extreme_windows(float_model, x)
    assert 2 <= len(chosen) < len(x)
    assert np.all(np.diff(chosen) > 0)
    full, subset = _qsvs(float_model, x), _qsvs(float_model, x[chosen])
    assert full.keys() == subset.keys()
    for name in full:
        for stat in ("min", "max"):
            np.testing.assert_array_equal(full[name][stat], subset[name][stat], err_msg=f"{name} {stat}")


def test_dropping_an_extreme_window_changes_a_range():
    # the selection is not vacuous: without the window holding the largest input, a range shrinks
    float_model, x = _float_model_and_windows()
    chosen = litert.extreme_windows(float_model, x)
    loudest = int(np.argmax(np.abs(x).max(axis=(1, 2))))
    assert loudest in chosen
    rest = np.delete(np.arange(len(x)), loudest)
    full, partial = _qsvs(float_model, x), _qsvs(float_model, x[rest])
    assert any(not np.array_equal(full[k][s], partial[k][s]) for k in full for s in ("min", "max"))
