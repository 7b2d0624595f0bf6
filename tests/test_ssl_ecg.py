"""CM-SSL (issue 5), the ECG side: NSTDB noise at a requested SNR, the MIT-BIH DS1/DS2 beat task,
synthetic paired windows, and a tiny run of the ECG-only student through ``wearable.ssl.run``."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from wearable.data import DS1, DS2, ecg_snr  # noqa: E402
from wearable.ssl import robustness, tasks  # noqa: E402
from wearable.ssl._stages import paired_synthetic  # noqa: E402

FS = 64.0


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _fake_nstdb(data_dir, noise):
    """Two channels of coloured noise at 360 Hz with a slow drift, standing in for an nstdb record."""
    rng = np.random.default_rng(len(noise))
    white = rng.standard_normal((36000, 2))
    return np.cumsum(white, axis=0) * 0.01 + white * 0.1, 360.0


def _ecg_windows(n: int = 6, w: int = 128) -> np.ndarray:
    t = np.arange(w) / FS
    rate = np.linspace(0.9, 2.0, n)[:, None]
    return (np.sin(2 * np.pi * rate * t) ** 15 + 0.2)[:, None].astype(np.float32)


@pytest.mark.parametrize("snr", [24.0, 6.0, 0.0, -6.0])
def test_ecg_noise_add_hits_the_snr_per_window(monkeypatch, snr):
    monkeypatch.setattr(robustness, "nstdb_read", _fake_nstdb)
    x = _ecg_windows()
    noisy = robustness.ecg_noise_add(x, snr, sampling_rate=FS, noise="em", seed=3)
    assert noisy.shape == x.shape and noisy.dtype == np.float32
    for i in range(len(x)):
        measured = ecg_snr(x[i, 0], noisy[i, 0] - x[i, 0], sampling_rate=FS, method="power")
        assert measured == pytest.approx(snr, abs=0.01)
    # the same noise piece at every SNR, only its scale changes; a different piece per window
    other = robustness.ecg_noise_add(x, snr + 10.0, sampling_rate=FS, noise="em", seed=3) - x
    np.testing.assert_allclose(other, (noisy - x) / np.sqrt(10.0), rtol=1e-3, atol=1e-6)
    assert not np.allclose(noisy[0] - x[0], noisy[1] - x[1])


def test_ecg_noise_add_real_em_record(data_dir):
    if not (data_dir / "nstdb" / "em.hea").is_file():
        pytest.skip("nstdb not present")
    x = _ecg_windows(3)
    noisy = robustness.ecg_noise_add(x, 12.0, sampling_rate=FS, noise="em", data_dir=data_dir)
    snrs = [ecg_snr(x[i, 0], noisy[i, 0] - x[i, 0], sampling_rate=FS, method="power") for i in range(3)]
    np.testing.assert_allclose(snrs, 12.0, atol=0.01)


def test_paired_synthetic_is_deterministic_ecg_plus_ppg():
    a = paired_synthetic(3, sampling_rate=FS, window=256, seed=1)
    assert a.shape == (3, 2, 256) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, paired_synthetic(3, sampling_rate=FS, window=256, seed=1))
    assert not np.allclose(a, paired_synthetic(3, sampling_rate=FS, window=256, seed=2))
    assert np.abs(a[:, 0]).max() <= 5.0 and a[:, 1].std() > 0.5  # ECG in mV (clipped), PPG scaled


@pytest.mark.realdata
def test_ecg_beat_trains_on_ds1_and_tests_on_ds2(data_dir, monkeypatch):
    if not (data_dir / "mitdb" / "100.hea").is_file():
        pytest.skip("mitdb not present")
    seen = {}
    load = tasks.load_windows

    def spy(source, task, *, split, **kw):
        ws = load(source, task, split=split, **kw)
        seen[split] = (source, task, set(ws.records))
        return ws

    monkeypatch.setattr(tasks, "load_windows", spy)
    data = tasks.downstream_load("ecg_beat", sampling_rate_hz=FS, window_samples=512, data_dir=data_dir, limit=200)
    assert {s[:2] for s in seen.values()} == {("mitdb", "beat")}
    assert seen["train"][2] and seen["train"][2] <= set(DS1) and not seen["train"][2] & set(DS2)
    assert seen["val"][2] <= set(DS1) and not seen["val"][2] & seen["train"][2]
    assert seen["test"][2] <= set(DS2)
    for x, y in data.values():
        assert x.shape[1:] == (1, 128) and set(np.unique(y)) <= {0, 1, 2, 3}  # 2 s at 64 Hz, no Q


@pytest.mark.realdata
def test_run_ecg_task_smoke(data_dir, tmp_path):
    if not all((data_dir / d / f).is_file() for d, f in (("bidmc", "bidmc01.hea"), ("mitdb", "100.hea"),
                                                          ("nstdb", "em.hea"))):
        pytest.skip("bidmc, mitdb or nstdb not present")
    from wearable.ssl.run import main

    out = tmp_path / "run"
    assert main(["--data-dir", str(data_dir), "--out", str(out), "--smoke", "--limit", "24", "--steps", "4",
                 "--tasks", "ecg_beat", "--methods", "scratch,cmssl_finetune", "--synthetic", "4", "--quiet"]) == 0
    table = json.loads((out / "table.json").read_text())
    assert set(table["tasks"]) == {"ecg_beat"}
    assert set(table["tasks"]["ecg_beat"]["robustness"]["scratch"]) == {"clean", "em 6 dB"}
    report = json.loads((out / "report.json").read_text())
    assert "cmssl_ecg_plain_seed0" in report["pretraining"] and report["synthetic"] == 4
    assert {r["modality"] for r in report["downstream"]} == {"ecg"} and len(report["downstream"]) == 4
    assert (out / "encoder_cmssl_ecg_plain_seed0.pt").is_file()
    assert "under NSTDB noise" in (out / "table.md").read_text()
    assert main(["--data-dir", str(data_dir), "--out", str(out), "--ecg-noises", "xx"]) == 2
