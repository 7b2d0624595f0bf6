"""The PPG-only BIDMC heart-rate task (bidmc/hr_ppg), the student's encoder variants and motion robustness."""

from __future__ import annotations

import numpy as np
import pytest

from wearable.data import load_windows, task_filters, task_kind, task_labels
from wearable.ssl.robustness import ppg_motion_add


def test_hr_ppg_task_declared():
    assert task_labels("bidmc", "hr_ppg") == ("hr_bpm",)
    assert task_kind("bidmc", "hr_ppg") == "regression"
    assert task_filters("bidmc", "hr_ppg") == ("ppg",)  # one input channel, the runtime's front end


@pytest.mark.realdata
def test_hr_ppg_is_the_ppg_channel_of_hr_with_subject_splits(data_dir):
    if not (data_dir / "bidmc" / "bidmc45.hea").is_file():
        pytest.skip("bidmc not present")
    spec = dict(sampling_rate_hz=32.0, window_samples=256, data_dir=data_dir, hop_samples=256)
    both = load_windows("bidmc", "hr", split="test", **spec)
    ppg = load_windows("bidmc", "hr_ppg", split="test", **spec)
    assert ppg.x.shape == (len(both), 1, 256) and ppg.x.dtype == np.float32
    np.testing.assert_array_equal(ppg.x[:, 0], both.x[:, 1])
    np.testing.assert_array_equal(ppg.y, both.y)
    assert ppg.records == both.records == tuple(f"bidmc{i}" for i in range(45, 54))
    train = load_windows("bidmc", "hr_ppg", split="train", limit=20, **spec)
    assert not set(train.records) & set(ppg.records)  # subject-wise: no record in two splits


def test_student_encoder_variants():
    torch = pytest.importorskip("torch")
    from wearable.models import create

    x = torch.randn(2, 1, 128)
    names = {}
    for residual in (False, True):
        for se in (False, True):
            model = create("cmssl_student_ppg", window_samples=128, residual=residual, se=se).eval()
            assert model.encoder(x).shape == (2, 64, 4) and model(x).shape == (2, 1)
            names[residual, se] = {k for k, _ in model.named_parameters()}
    assert not any("shortcut" in k or ".se." in k for k in names[False, False])
    assert any("shortcut" in k for k in names[True, False]) and not any(".se." in k for k in names[True, False])
    assert any(".se." in k for k in names[False, True]) and not any("shortcut" in k for k in names[False, True])


def test_ppg_motion_add_hits_the_snr_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 1, 512)).astype(np.float32)
    for snr in (20.0, 5.0, 0.0):
        noisy = ppg_motion_add(x, snr, sampling_rate=64.0, seed=3)
        ratio = (x ** 2).mean(axis=-1) / ((noisy - x) ** 2).mean(axis=-1)
        np.testing.assert_allclose(10 * np.log10(ratio), snr, atol=1e-3)
    a, b = ppg_motion_add(x, 10.0, sampling_rate=64.0, seed=3), ppg_motion_add(x, 10.0, sampling_rate=64.0, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, ppg_motion_add(x, 10.0, sampling_rate=64.0, seed=4))
