"""The Challenge 2017 rhythm experiment: bad input, the classical features, the recipe's record
evaluation, and a smoke run on the real recordings when they are here."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from wearable.experiments import rhythm2017  # noqa: E402
from wearable.experiments.rhythm_features import (FEATURE_NAMES, record_features, rr_rule_fit,  # noqa: E402
                                                  rr_rule_predict)

LABELS = ("normal", "af", "other", "noisy")


@pytest.mark.parametrize("argv, message", [
    (["--models", "nosuch"], "unknown model"),
    (["--seeds", "a,b"], "--seeds must be integers"),
    (["--seeds", "-1"], "non-negative"),
    (["--epochs", "0"], "--epochs"),
    (["--fold", "10"], "--fold"),
    (["--models", "dscnn_tiny,ecgcl_tiny", "--checkpoint", "x.pt"], "exactly one model"),
])
def test_bad_arguments_are_one_error_line_and_exit_2(argv, message, capsys, tmp_path):
    assert rhythm2017.main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_missing_data_is_exit_2(tmp_path, capsys):
    assert rhythm2017.main(["--data-dir", str(tmp_path), "--models", "dscnn_tiny", "--out", str(tmp_path / "o"),
                            "--quiet"]) == 2
    assert "challenge2017" in capsys.readouterr().err


def _ecg(rr: np.ndarray, fs: float = 300.0) -> np.ndarray:
    beats = np.concatenate([[0.5], 0.5 + np.cumsum(rr)])
    t = np.arange(int((beats[-1] + 0.5) * fs)) / fs
    x = 0.01 * np.random.default_rng(0).normal(size=t.size)
    for b in beats:
        x += np.exp(-0.5 * ((t - b) / 0.012) ** 2) + 0.15 * np.exp(-0.5 * ((t - b + 0.16) / 0.025) ** 2)
    return x


def test_features_see_irregular_rr_and_the_rule_separates_it():
    rng = np.random.default_rng(1)
    regular = [record_features(_ecg(np.full(35, 0.8) + 0.01 * rng.normal(size=35)), 300.0) for _ in range(6)]
    irregular = [record_features(_ecg(rng.uniform(0.45, 1.1, 35)), 300.0) for _ in range(6)]
    assert len(regular[0]) == len(FEATURE_NAMES)
    k = FEATURE_NAMES.index("drr_median_rel")
    assert max(f[k] for f in regular) < min(f[k] for f in irregular)
    assert all(abs(f[FEATURE_NAMES.index("beats")] - 36) <= 1 for f in regular)
    # mildly irregular intervals: between the two, the rule's "other rhythm"
    mild = [record_features(_ecg(rng.uniform(0.72, 0.88, 35)), 300.0) for _ in range(6)]
    feats = np.stack(regular + irregular + mild)
    y = np.array([0] * 6 + [1] * 6 + [2] * 6)
    rule = rr_rule_fit(feats, y, LABELS)
    assert rule["other"] < rule["af"] and rule["score"] == 1.0
    assert rr_rule_predict(feats, rule, LABELS) == ["normal"] * 6 + ["af"] * 6 + ["other"] * 6
    flat = record_features(np.zeros(3000), 300.0)  # no beats: undefined, not a crash
    assert flat.shape == (len(FEATURE_NAMES),) and rr_rule_predict(flat[None], rule, LABELS) == ["noisy"]


def test_record_probs_follow_the_runtime_windows_and_decision():
    from wearable.experiments._rhythm_recipe import record_labels, record_probs

    signals = (np.zeros(950, np.float32), np.ones(2000, np.float32), np.zeros(500, np.float32))

    def predict(x):  # "af" for windows of ones, "normal" otherwise
        p = np.zeros((len(x), 4))
        p[np.arange(len(x)), np.where(x[:, 0, 0] > 0.5, 1, 0)] = 1.0
        return p

    probs = record_probs(predict, signals, window=900, hop=450)
    assert [len(p) for p in probs] == [2, 4, 0]
    assert record_labels(probs, signals, LABELS, window=900) == ["normal", "af", "inconclusive"]


@pytest.mark.realdata
@pytest.mark.slow
def test_smoke_run_on_the_real_recordings(data_dir, tmp_path, one_torch_thread):
    if not (data_dir / "challenge2017").is_dir():
        pytest.skip("no challenge2017 in the data dir")
    out = tmp_path / "run"
    ckpt = tmp_path / "rhythm.pt"
    assert rhythm2017.main(["--data-dir", str(data_dir), "--models", "dscnn_tiny", "--limit-records", "24",
                            "--epochs", "1", "--samples-per-epoch", "64", "--out", str(out), "--no-export",
                            "--checkpoint", str(ckpt), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    (row,) = report["rows"]
    assert row["model"] == "dscnn_tiny" and 0.0 <= row["fp32"]["score"] <= 1.0 and "int8" not in row
    assert sum(report["data"]["test"].values()) == 24
    from wearable.training import load_checkpoint

    spec = load_checkpoint(ckpt).data
    assert spec["source"] == "challenge2017" and spec["data_dir"] is None and spec["window_samples"] == 900
    metrics = json.loads(ckpt.with_suffix(".metrics.json").read_text())
    assert metrics["metrics"]["test_fp32_challenge_score"] == row["fp32"]["score"] and metrics["model"] == "dscnn_tiny"


def _checkpoint(tmp_path):
    import torch

    from wearable.models import create
    from wearable.training import save_checkpoint

    torch.manual_seed(0)
    model = create("dscnn_tiny", num_classes=4, sampling_rate_hz=100.0, window_samples=900)
    spec = {"source": "challenge2017", "task": "rhythm", "sampling_rate_hz": 100.0, "window_samples": 900,
            "hop_samples": 450, "seed": 0, "data_dir": None}
    return save_checkpoint(tmp_path / "r.pt", model.eval(), model_name="dscnn_tiny", data=spec, labels=list(LABELS),
                           metrics={}, seed=0)


def test_explain_draws_a_png_and_refuses_a_record_shorter_than_a_window(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from wearable.explain import grad_cam, main

    ckpt = _checkpoint(tmp_path)
    rr = np.random.default_rng(2).uniform(0.5, 1.0, 30)
    (tmp_path / "ecg.csv").write_text("\n".join(f"{v:.5f}" for v in _ecg(rr)))
    out = tmp_path / "x.png"
    assert main([str(ckpt), "--record", str(tmp_path / "ecg.csv"), "--sampling-rate", "300", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "record " in capsys.readouterr().err
    (tmp_path / "short.csv").write_text("\n".join(["0.1"] * 2000))  # 6.7 s at 300 Hz < 9 s
    assert main([str(ckpt), "--record", str(tmp_path / "short.csv"), "--sampling-rate", "300",
                 "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "shorter than one window" in err and not (tmp_path / "s.png").exists()
    assert main([str(tmp_path / "none.pt"), "--record", str(tmp_path / "ecg.csv"), "--sampling-rate", "300"]) == 2
    from wearable.training import load_checkpoint

    cam = grad_cam(load_checkpoint(ckpt).build(), np.random.default_rng(0).normal(size=(3, 1, 900)).astype(np.float32),
                   np.array([0, 1, 2]))
    assert cam.shape == (3, 900) and cam.min() >= 0.0 and cam.max() <= 1.0


@pytest.mark.parametrize("module", ["benchmarks.stream_rhythm", "benchmarks.rhythm_robustness"])
def test_rhythm_benchmarks_refuse_a_missing_artifact_with_one_line(module, tmp_path, capsys):
    import importlib

    main = importlib.import_module(module).main
    assert main([str(tmp_path / "nothing"), "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
