"""python -m wearable.stream: a record in, JSON-line events out; exit 2 with one line on bad input."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import wearable.runtime.streaming as streaming
import wearable.stream as cli
from wearable.runtime._fake import FakeInterpreter, fake_artifact


@pytest.fixture
def fake_model(monkeypatch):
    """Segmentation fake instead of a real export (an export takes tens of seconds)."""
    art = fake_artifact("segmentation")
    monkeypatch.setattr(cli, "load_artifact", lambda path: art)
    monkeypatch.setattr(streaming, "load_interpreter", lambda *a, **k: FakeInterpreter(art))
    return art


def _csv(tmp_path, x, header=True):
    path = tmp_path / "rec.csv"
    path.write_text(("ecg_mv\n" if header else "") + "\n".join("" if np.isnan(v) else f"{v:.5f}" for v in x))
    return path


def _beats(seconds, rate):
    t = np.arange(int(seconds * rate)) / rate
    return sum(1.5 * np.exp(-0.5 * ((t - r) / 0.012) ** 2) for r in np.arange(0.5, seconds, 1.0))


def test_csv_record_to_jsonl_and_plot(tmp_path, fake_model, capsys):
    x = _beats(30, 250.0)
    x[2500:2600] = np.nan
    out, png = tmp_path / "ev.jsonl", tmp_path / "ev.png"
    rc = cli.main(["art", "--record", str(_csv(tmp_path, x)), "--sampling-rate", "250", "--out", str(out),
                   "--plot", str(png), "--plot-seconds", "20", "--chunk", "7"])
    assert rc == 0
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert {"type": "artifact", "kind": "nonfinite", "start": 10.0, "end": 10.4} in events
    assert sum(e["type"] == "beat" for e in events) >= 25
    assert png.stat().st_size > 10_000
    err = capsys.readouterr().err
    assert "30.0 s at 250 Hz -> model 100 Hz" in err and "real time" in err


@pytest.mark.realdata
def test_wfdb_record(data_dir, fake_model, capsys):
    rc = cli.main(["art", "--record", str(data_dir / "mitdb" / "100"), "--seconds", "60", "--quiet"])
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    beats = [json.loads(s) for s in lines if '"beat"' in s]
    assert 60 <= len(beats) <= 90  # record 100 runs at about 75 bpm


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    x = _csv(tmp_path, np.zeros(500))
    cases = [
        (["nope", "--record", str(x), "--sampling-rate", "100"], "artifact directory not found"),
    ]
    # a fake artifact directory whose model bytes match, then tampered
    art = tmp_path / "art"
    art.mkdir()
    manifest = dict(fake_artifact().manifest)
    model = b"model"
    manifest["files"] = {"model_int8.tflite": {"bytes": 5, "sha256": hashlib.sha256(model).hexdigest()}}
    (art / "manifest.json").write_text(json.dumps(manifest))
    (art / "model_int8.tflite").write_bytes(model)
    cases += [
        ([str(art), "--record", str(x)], "needs --sampling-rate"),
        ([str(art), "--record", str(tmp_path / "missing.csv"), "--sampling-rate", "100"], "not found"),
        ([str(art), "--record", str(tmp_path / "rec")], "no rec.hea"),
        ([str(art), "--record", str(x), "--sampling-rate", "360", "--no-resample"], "differs from the model's"),
        ([str(art), "--record", str(x), "--sampling-rate", "100", "--chunk", "0"], "--chunk"),
        ([str(art), "--record", str(x), "--sampling-rate", "100", "--ppg-scale", "0"], "--ppg-scale"),
        ([str(art), "--record", str(x), "--sampling-rate", "100", "--ppg-scale", "big"], "--ppg-scale"),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], (argv, err)
    stream_art = tmp_path / "stream_art"  # a stateful streaming export is not a window model
    stream_art.mkdir()
    (stream_art / "manifest.json").write_text(json.dumps({**manifest, "stream": {"block_samples": 16}}))
    (stream_art / "model_int8.tflite").write_bytes(model)
    assert cli.main([str(stream_art), "--record", str(x), "--sampling-rate", "100"]) == 2
    assert "stateful streaming export" in capsys.readouterr().err
    (art / "model_int8.tflite").write_bytes(b"modeL")
    assert cli.main([str(art), "--record", str(x), "--sampling-rate", "100"]) == 2
    assert "does not match the manifest" in capsys.readouterr().err


def test_ppg_scale_auto_is_the_robust_std_of_the_band_passed_start():
    art = fake_artifact("dual")
    assert cli._ppg_scale("auto", art, np.ones(100), 100.0, resample=False) == 1.0  # an ECG model: unused
    assert cli._ppg_scale("2.5", art, np.ones(100), 100.0, resample=False) == 2.5
    art.manifest["data"]["preprocessing"]["channels"][0]["kind"] = "ppg"
    t = np.arange(12_000) / 100.0
    x = np.sin(2 * np.pi * 1.2 * t) + 0.3 * np.sin(2 * np.pi * 2.4 * t) + 5.0  # offset: the band-pass removes it
    one = cli._ppg_scale("auto", art, x, 100.0, resample=False)
    assert 0.5 < one < 1.5
    assert cli._ppg_scale("auto", art, 40.0 * x, 100.0, resample=False) == pytest.approx(40.0 * one)
    x[:6000] *= 40.0  # only the first 60 s count
    assert cli._ppg_scale("auto", art, x, 100.0, resample=False) == pytest.approx(40.0 * one, rel=0.05)
    with pytest.raises(cli._InputError, match="flat"):
        cli._ppg_scale("auto", art, np.full(12_000, 3.0), 100.0, resample=False)
