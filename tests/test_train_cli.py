"""``python -m wearable.train``: a tiny end-to-end run and the bad-input contract (exit 2)."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")

from wearable.train import main  # noqa: E402
from wearable.training import load_checkpoint  # noqa: E402

TINY = ["--window", "256", "--sampling-rate", "50", "--train-windows", "40", "--val-windows", "20",
        "--epochs", "1", "--quiet"]


def test_train_writes_a_loadable_checkpoint(tmp_path, capsys):
    assert main(["dscnn_tiny", "--data", "synthetic", "--out", str(tmp_path), *TINY]) == 0
    ckpt = load_checkpoint(tmp_path / "dscnn_tiny.pt")
    assert ckpt.config["window_samples"] == 256 and ckpt.config["sampling_rate_hz"] == 50
    assert ckpt.data["source"] == "synthetic" and ckpt.data["task"] == "rhythm"
    assert ckpt.labels == ["normal", "af", "ectopic", "brady", "tachy"]
    report = json.loads((tmp_path / "dscnn_tiny.metrics.json").read_text())
    assert report["validation"]["per_class"]["af"]["support"] == 4
    assert "macro F1" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["no_such_model"], "unknown model 'no_such_model'"),
    (["dscnn_tiny", "--sampling-rate", "0"], "sampling rate must be > 0"),
    (["dscnn_tiny", "--sampling-rate", "-100"], "sampling rate must be > 0"),
    (["dscnn_tiny", "--data", "mitdb", "--data-dir", "/nonexistent/wearable"], "/nonexistent/wearable"),
    (["dscnn_tiny", "--data", "nope"], "unknown data source 'nope'"),
    (["dscnn_tiny", "--sampling-rate", "nan"], "sampling rate must be > 0"),
    (["dscnn_tiny", "--sampling-rate", "inf"], "sampling rate must be > 0"),
    (["dscnn_tiny", "--lr", "inf"], "--lr must be a finite number > 0, got inf"),
    (["dscnn_tiny", "--lr", "nan"], "--lr must be a finite number > 0, got nan"),
    (["dscnn_tiny", "--lr", "0"], "--lr must be a finite number > 0"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main([*args, "--out", str(out), "--quiet", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err
    assert not out.exists()


def test_diverged_training_exits_1_and_writes_no_checkpoint(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["dscnn_tiny", "--out", str(out), *TINY, "--batch-size", "8", "--lr", "1e20"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: training diverged") and "no checkpoint written" in err and "\n" not in err
    assert not out.exists()


def test_empty_data_dir_is_rejected(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["dscnn_tiny", "--data", "mitdb", "--data-dir", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert "error:" in capsys.readouterr().err


def test_unwritable_output_is_rejected_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["dscnn_tiny", "--out", str(blocker / "sub"), *TINY]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_cli_module_has_help_and_no_traceback_on_error():
    help_text = subprocess.run([sys.executable, "-m", "wearable.train", "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "--data-dir" in help_text.stdout
    bad = subprocess.run([sys.executable, "-m", "wearable.train", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
