"""CM-SSL (issue 5): beat-aligned patches, the AF vs sinus downstream, the one-command tables. Tiny configs."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from wearable.data.preprocess import ecg_clean, ecg_scale  # noqa: E402
from wearable.data.synthetic import ecg_ppg_simulate  # noqa: E402
from wearable.metrics import detections_match  # noqa: E402
from wearable.models import create  # noqa: E402
from wearable.ssl import beats_align, classification_f1, classification_fit, r_peaks_find  # noqa: E402
from wearable.ssl._report import summary  # noqa: E402
from wearable.ssl.tasks import DOWNSTREAM, baseline_score  # noqa: E402

FS = 64.0


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_r_peaks_find_matches_simulated_beats():
    tp = fn = fp = 0
    for seed, rhythm in enumerate(("normal", "af", "tachy", "brady")):
        rec = ecg_ppg_simulate(10, sampling_rate=FS, rhythm=rhythm, seed=seed)
        ecg = ecg_scale(ecg_clean(rec.ecg, sampling_rate=FS))[64:576]
        ref = rec.beat_samples[(rec.beat_samples >= 64) & (rec.beat_samples < 576)] - 64
        m = detections_match(ref / FS, r_peaks_find(ecg, sampling_rate=FS) / FS, tolerance=0.1)
        tp, fn, fp = tp + m["tp"], fn + m["fn"], fp + m["fp"]
    assert tp / (tp + fn) > 0.95 and tp / (tp + fp) > 0.95
    assert r_peaks_find(np.zeros(512), sampling_rate=FS).size == 0


def test_beats_align_resamples_each_rr_interval_into_its_patches():
    # R peaks every 48 samples (80 bpm at 64 Hz); the second channel ramps 0..1 inside each R-R interval
    w, s = 512, 32
    ecg = np.zeros(w)
    peaks = np.arange(20, w, 48)
    ecg[peaks] = 1.0
    ramp = ((np.arange(w) - 20) % 48) / 48.0
    x = np.stack([ecg, ramp])[None].astype(np.float32)
    out, stats = beats_align(np.concatenate([x, np.zeros_like(x)]), sampling_rate=FS, patch_samples=s)
    assert out.shape == (2, 2, w) and out.dtype == np.float32
    assert stats["fallback_windows"] == 1 and stats["median_hr_bpm"] == pytest.approx(80.0)
    np.testing.assert_array_equal(out[1], 0.0)  # no R peaks: fixed patches kept
    # patch 3 (samples 96-127, centre 112) lies in the interval [68, 116): the whole ramp, 0 to ~1
    patch = out[0, 1, 3 * s:4 * s]
    assert patch[0] < 0.05 and patch[-2] > 0.9 and np.all(np.diff(patch[:-1]) > 0)
    # patch 4 (centre 144) holds the next interval [116, 164): the same ramp, not a shifted cut of it
    assert np.allclose(out[0, 1, 4 * s:5 * s], patch, atol=1e-5)
    assert not np.allclose(x[0, 1, 4 * s:5 * s], x[0, 1, 3 * s:4 * s], atol=0.1)
    with pytest.raises(ValueError):
        beats_align(x[:, :, :500], sampling_rate=FS, patch_samples=s)


def test_classification_fit_learns_af_like_irregularity():
    rng = np.random.default_rng(0)
    t = np.arange(128) / FS
    y = np.arange(96) % 2
    rate = np.where(y[:, None] == 1, rng.uniform(0.5, 3.0, (96, 1)), 1.5)  # class 1: any rate, class 0: fixed
    x = np.sin(2 * np.pi * rate * t)[:, None].astype(np.float32)
    model = create("cmssl_student_ppg", window_samples=128, num_classes=2)
    fit = classification_fit(model, (x, y), (x, y), steps=60, evals=3, lr=1e-2, progress=False)
    assert 0.0 <= fit["val_f1"] <= 1.0
    assert fit["val_f1"] == pytest.approx(classification_f1(model, x, y))
    assert fit["val_f1"] > 0.6  # chance macro F1 is ~0.5, majority class 0.33


def test_baseline_scores_and_summary_mean_sd():
    hr, af = DOWNSTREAM["hr"], DOWNSTREAM["af"]
    data = {"train": (None, np.array([60.0, 80.0])), "test": (None, np.array([70.0, 90.0]))}
    assert baseline_score(hr, data) == pytest.approx(10.0)
    data = {"train": (None, np.array([0, 0, 1])), "test": (None, np.array([0, 1]))}
    assert baseline_score(af, data) == pytest.approx(100 * (2 / 3 + 0) / 2)
    rows = [{"task": "hr", "metric": "mae_bpm", "method": m, "encoder": "plain", "fraction": 0.1, "seed": s,
             "n_train": 5, "test": v, "test_snr": {"10": v + 1}}
            for m, vals in (("scratch", (4.0, 6.0)), ("cmssl_finetune", (3.0, 3.0))) for s, v in enumerate(vals)]
    out = summary(rows, [0.1], ["plain"])["hr"]
    assert out["cells"]["scratch"]["0.1"]["mean"] == 5.0
    assert out["cells"]["scratch"]["0.1"]["sd"] == pytest.approx(np.sqrt(2.0))  # sample sd
    assert out["cells"]["CM-SSL fine-tune"]["0.1"]["values"] == [3.0, 3.0]
    assert out["robustness"]["scratch"]["10 dB"]["mean"] == 6.0


@pytest.mark.realdata
def test_run_smoke_writes_tables(data_dir, tmp_path):
    if not (data_dir / "bidmc" / "bidmc01.hea").is_file():
        pytest.skip("bidmc not present")
    from wearable.ssl.run import main

    out = tmp_path / "run"
    assert main(["--data-dir", str(data_dir), "--out", str(out), "--smoke", "--limit", "24", "--steps", "4",
                 "--methods", "scratch,cmsslbeat_finetune", "--quiet"]) == 0
    table = json.loads((out / "table.json").read_text())
    assert set(table["tasks"]) == {"hr", "af"} and table["seeds"] == [0]
    cells = table["tasks"]["af"]["cells"]
    assert set(cells) == {"scratch", "CM-SSL, beat-aligned patches fine-tune"}
    assert set(cells["scratch"]) == {"0.1", "1"}
    assert 0.0 <= cells["scratch"]["1"]["mean"] <= 100.0
    md = (out / "table.md").read_text()
    assert "AF vs sinus" in md and "HR (BIDMC)" in md and "10 dB" in md
    report = json.loads((out / "report.json").read_text())
    assert "tokenizer_beat_seed0" in report["pretraining"] and len(report["downstream"]) == 8
