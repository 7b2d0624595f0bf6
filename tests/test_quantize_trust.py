"""Quantization trust: task-metric gate, QAT emulation, shipped evaluation sets, per-model gates."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from quantize import Thresholds, fold_batchnorm  # noqa: E402
from quantize._checks import gate  # noqa: E402
from quantize._task_metric import TaskScore, metric_kind, score_outputs  # noqa: E402
from quantize.evalset import evalset_path, load_evalset, save_evalset  # noqa: E402
from quantize.export import main as export_main  # noqa: E402
from quantize.qat import fake_quantized, qat_finetune  # noqa: E402
from wearable.models import create  # noqa: E402
from wearable.training import save_checkpoint  # noqa: E402

WINDOW = 128


def _sines(n: int, seed: int) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    t = np.arange(WINDOW) / 100.0
    x = np.sin(2 * np.pi * np.array([2.0, 5.0, 11.0])[y][:, None] * t + rng.uniform(0, 6.3, (n, 1)))
    x = (x + 0.3 * rng.standard_normal((n, WINDOW)))[:, None, :].astype(np.float32)
    return SimpleNamespace(x=x, y=y.astype(np.int64), labels=("slow", "mid", "fast"), records=("sines",) * n)


@pytest.fixture(scope="module")
def tiny() -> nn.Module:
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    net = create("dscnn_tiny", window_samples=WINDOW, num_classes=3)
    data, opt = _sines(256, 0), torch.optim.Adam(net.parameters(), lr=1e-2)
    for step in range(30):
        idx = slice((step * 32) % 256, (step * 32) % 256 + 32)
        loss = nn.functional.cross_entropy(net(torch.from_numpy(data.x[idx])), torch.from_numpy(data.y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.set_num_threads(threads)
    return net.eval()


# --------------------------------------------------------------------------- task metric and gate (fast)

def test_metric_kind_follows_the_labels():
    assert metric_kind(np.array([0, 1])) == "classification"
    assert metric_kind(np.zeros((2, 5), np.int64)) == "segmentation"
    assert metric_kind(np.array([60.0, 70.0], np.float32)) == "regression"
    with pytest.raises(ValueError):
        metric_kind(np.zeros((2, 2), np.float32))


def test_score_all_scores_each_target_on_its_own_output():
    from quantize._task_metric import score_all

    cls = np.array([0, 1])
    mask = np.array([[0, 1, 1], [1, 0, 0]])
    y_cls = np.eye(2, dtype=np.float32)[cls]
    y_mask = np.eye(2, dtype=np.float32)[mask].transpose(0, 2, 1)
    wrong_mask = y_mask.copy()
    wrong_mask[0, :, 0] = [0, 1]
    scores = score_all([y_cls, y_mask], [y_cls, wrong_mask], [cls, mask])
    assert [s.output for s in scores] == [0, 1] and scores[0].drop == 0 and scores[1].drop > 0


def test_score_outputs_per_kind():
    labels = np.array([0, 1, 2, 2])
    yf = np.eye(3, dtype=np.float32)[[0, 1, 2, 2]]
    yq = np.eye(3, dtype=np.float32)[[0, 1, 2, 1]]  # one window wrong after int8
    s = score_outputs([yf], [yq], labels)
    assert s.metric == "macro F1 %" and s.float_value == 100.0 and s.drop == pytest.approx(100 - s.int8_value)
    assert s.int8_value == pytest.approx(100 * np.mean([1.0, 2 / 3, 2 / 3]))
    seg = score_outputs([np.zeros((2, 4)), yf[None].transpose(0, 2, 1).repeat(2, 0)],
                        [np.zeros((2, 4)), yf[None].transpose(0, 2, 1).repeat(2, 0)], np.tile(labels, (2, 1)))
    assert seg.output == 1 and seg.metric.startswith("per-sample") and seg.drop == 0
    mae = score_outputs([np.array([[60.0], [70.0]])], [np.array([[61.0], [72.0]])], np.array([60.0, 70.0], np.float32))
    assert mae.metric == "MAE" and mae.drop == pytest.approx(1.5) and not mae.higher_is_better


def test_gate_names_both_figures_of_a_metric_drop():
    score = TaskScore("macro F1 %", 0, 91.0, 89.5, higher_is_better=True)
    fails = gate(Thresholds(), 0.0, [], [], None, [score])
    assert fails == ["macro F1 % fell from 91.00 (float) to 89.50 (int8), a drop of 1.50 > 0.5"]
    assert gate(Thresholds(max_metric_drop=2.0), 0.0, [], [], None, [score]) == []
    mask = TaskScore("per-sample macro F1 %", 1, 95.0, 94.0, higher_is_better=True)
    assert gate(Thresholds(), 0.0, [], [], None, [score, mask])[1].startswith("per-sample macro F1 % (output 1)")
    with pytest.raises(ValueError):
        Thresholds(max_metric_drop=-1)


# --------------------------------------------------------------------------- QAT emulation (fast)

def test_fake_quantized_leaves_int8_representable_weights(tiny):
    folded, _ = fold_batchnorm(tiny)
    x = _sines(32, 1).x
    with fake_quantized(folded, x) as emulated:
        with torch.no_grad():
            y = emulated(torch.from_numpy(x))
    assert torch.isfinite(y).all()
    for m in folded.modules():
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            w = m.weight.detach().reshape(m.weight.shape[0], -1).double()
            scale = w.abs().amax(1, keepdim=True) / 127
            steps = w / scale
            assert torch.allclose(steps, steps.round(), atol=1e-4), "weights not on the int8 grid"
            assert not hasattr(m, "parametrizations")
    assert not folded._forward_hooks and not folded._forward_pre_hooks


def test_qat_finetune_is_deterministic(tiny):
    train, val = _sines(128, 2), _sines(64, 3)
    states = []
    for _ in range(2):
        folded, _ = fold_batchnorm(tiny)
        report = qat_finetune(folded, train, val, calibration=train.x[:32], epochs=1, seed=5)
        states.append({k: v.clone() for k, v in folded.state_dict().items()})
        assert 0 <= report["macro_f1"] <= 1
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    with pytest.raises(ValueError, match="classification and segmentation"):
        qat_finetune(fold_batchnorm(tiny)[0], SimpleNamespace(x=train.x, y=train.y.astype(np.float32)), val,
                     calibration=train.x[:8])


# --------------------------------------------------------------------------- evaluation sets and the CLI

def _checkpoint_with_evalset(tmp_path: Path, model: nn.Module, *, rate: float = 100.0) -> Path:
    # A real-data spec whose records are absent: only the shipped evaluation set can feed the export.
    spec = {"source": "mitdb", "task": "beat", "sampling_rate_hz": rate, "window_samples": WINDOW,
            "data_dir": str(tmp_path / "no-records"), "seed": 0}
    path = save_checkpoint(tmp_path / "ckpt" / "dscnn_tiny.pt", model, model_name="dscnn_tiny", data=spec,
                           labels=["slow", "mid", "fast"], metrics={"val_macro_f1": 0.9}, seed=0)
    save_evalset(evalset_path(path), _sines(64, 4), _sines(96, 5), {"source": "mitdb", "holdout_split": "val"})
    return path


def test_evalset_round_trip_is_byte_identical(tmp_path):
    a, b = tmp_path / "a.evalset.npz", tmp_path / "b.evalset.npz"
    cal, hold = _sines(8, 0), _sines(5, 1)
    save_evalset(a, cal, hold, {"k": 1})
    save_evalset(b, cal, hold, {"k": 1})
    assert a.read_bytes() == b.read_bytes()
    e = load_evalset(a)
    assert e.calibration_x.dtype == np.float32 and e.holdout_x.shape == (5, 1, WINDOW)
    assert np.abs(e.calibration_x - cal.x).max() < 2e-3 and (e.holdout_y == hold.y).all()
    assert e.labels == ("slow", "mid", "fast") and e.meta["k"] == 1
    (tmp_path / "bad.evalset.npz").write_bytes(b"nope")
    with pytest.raises(ValueError, match="not a readable evaluation set"):
        load_evalset(tmp_path / "bad.evalset.npz")


@pytest.mark.slow
def test_cli_exports_from_the_shipped_evalset_and_qat_failure_writes_nothing(tiny, tmp_path, capsys):
    ckpt = _checkpoint_with_evalset(tmp_path, tiny)
    out = tmp_path / "artifacts"
    code = export_main(["--checkpoint", str(ckpt), "--out", str(out), "--min-agreement", "90",
                        "--max-metric-drop", "dscnn_tiny=5"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    manifest = json.loads((out / "dscnn_tiny" / "manifest.json").read_text())
    assert manifest["data"]["evalset"] == "dscnn_tiny.evalset.npz"
    assert manifest["calibration"]["windows"] == 64 and manifest["holdout"]["windows"] == 96
    assert manifest["checks"]["thresholds"]["max_metric_drop"] == 5.0 and manifest["qat"] is None
    before = sorted(p.name for p in (out / "dscnn_tiny").iterdir())
    # A gate nothing can pass: post-training fails, QAT is tried, fails too; exit 1, old files kept.
    code = export_main(["--checkpoint", str(ckpt), "--out", str(out), "--force", "--qat", "--qat-epochs", "1",
                        "--max-error-ratio", "0"])
    captured = capsys.readouterr()
    assert code == 1
    assert "quantization-aware fine-tuning" in captured.err and "Traceback" not in captured.err
    assert sorted(p.name for p in (out / "dscnn_tiny").iterdir()) == before


def test_cli_refuses_data_at_another_rate_than_the_model(tiny, tmp_path, capsys):
    ckpt = _checkpoint_with_evalset(tmp_path, tiny, rate=250.0)
    code = export_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and "250 Hz" in err and "100 Hz" in err
    assert not (tmp_path / "a").exists()


def test_cli_rejects_a_metric_gate_for_an_unknown_model(tiny, tmp_path, capsys):
    ckpt = _checkpoint_with_evalset(tmp_path, tiny)
    code = export_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "a"), "--max-metric-drop", "nope=1"])
    assert code == 2 and "unknown model 'nope'" in capsys.readouterr().err


def test_tflm_crash_is_reported_not_fatal(tmp_path, monkeypatch):
    """tflite-micro aborts the process on some graphs; the check runs it in a child and says so."""
    import sys

    from quantize._runtimes import run_tflm

    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'Failed to allocate tail memory' >&2\nkill -ABRT $$\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    with pytest.raises(RuntimeError, match=r"crashed \(killed by SIGABRT\): Failed to allocate tail memory"):
        run_tflm(b"model", np.zeros((1, 1, 8), np.int8))


def test_cli_refuses_a_shipped_checkpoint_of_another_model(tiny, tmp_path, capsys, monkeypatch):
    ckpt_dir = tmp_path / "ckpts"
    save_checkpoint(ckpt_dir / "ecgcl_tiny.pt", tiny, model_name="dscnn_tiny",
                    data={"source": "synthetic", "task": "rhythm", "sampling_rate_hz": 100.0,
                          "window_samples": WINDOW, "seed": 0}, labels=["a", "b", "c"], metrics={}, seed=0)
    monkeypatch.setattr("quantize.export.CHECKPOINT_DIR", ckpt_dir)
    code = export_main(["ecgcl_tiny", "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert code == 2 and "holds a 'dscnn_tiny' checkpoint, not 'ecgcl_tiny'" in err
    assert not (tmp_path / "a").exists()


def test_cli_reads_export_settings_next_to_the_checkpoint(tiny, tmp_path, capsys):
    ckpt = _checkpoint_with_evalset(tmp_path, tiny)
    settings = ckpt.with_name("dscnn_tiny.export.json")
    settings.write_text('{"qat": true, "unknown": 1}')
    code = export_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "a")])
    assert code == 2 and "export settings must be an object with keys calibration_windows, qat, reason" in capsys.readouterr().err
    from quantize.export import _export_settings

    settings.write_text('{"calibration_windows": 0}')
    assert export_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "a")]) == 2
    assert "calibration_windows must be an integer >= 1" in capsys.readouterr().err
    settings.write_text('{"qat": true, "calibration_windows": 64, "reason": "PTQ lost 1 point"}')
    assert _export_settings(ckpt) == {"qat": True, "calibration_windows": 64, "reason": "PTQ lost 1 point"}
