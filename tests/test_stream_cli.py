"""python -m wearable.stream: a record in, JSON-line events out; exit 2 with one line on bad input."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

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


def _one_error_line(capsys, argv, message):
    assert cli.main(argv) == 2, argv
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], (argv, err)
    assert "Traceback" not in captured.err


def _wfdb(tmp_path, name="rec", fs=100, sig_name=("MLII",), seconds=3.0):
    wfdb = pytest.importorskip("wfdb")
    n = int(seconds * 100)
    x = np.stack([_beats(seconds, 100.0)[:n] * (k + 1) for k in range(len(sig_name))], axis=1)
    wfdb.wrsamp(name, fs=fs, units=["mV"] * len(sig_name), sig_name=list(sig_name), p_signal=x,
                fmt=["16"] * len(sig_name), write_dir=str(tmp_path))
    return tmp_path / name


def _set_header_fs(record, value):
    hea = record.with_suffix(".hea")
    first, *rest = hea.read_text().splitlines()
    fields = first.split()
    fields[2] = value
    hea.write_text("\n".join([" ".join(fields), *rest]) + "\n")


def test_bad_values_exit_2_with_one_line_and_no_traceback(tmp_path, fake_model, capsys):
    x = str(_csv(tmp_path, _beats(5, 100.0)))
    ok = ["art", "--record", x, "--quiet"]
    for rate in ("0", "nan", "inf", "-100"):
        _one_error_line(capsys, [*ok, "--sampling-rate", rate], "--sampling-rate")
    for seconds in ("nan", "-5", "0", "inf"):
        _one_error_line(capsys, [*ok, "--sampling-rate", "100", "--seconds", seconds], "--seconds")
    _one_error_line(capsys, [*ok, "--sampling-rate", "100", "--plot-seconds", "inf", "--plot", "p.png"],
                    "--plot-seconds")
    _one_error_line(capsys, [*ok, "--sampling-rate", "100", "--rails", "nan", "1"], "--rails")
    _one_error_line(capsys, [*ok, "--sampling-rate", "100", "--rails", "1", "-1"], "rails")
    _one_error_line(capsys, [*ok, "--sampling-rate", "100", "--backend", "nosuch"], "--backend")
    _one_error_line(capsys, [*ok, "--sampling-rate", "100", "--out", str(tmp_path)], "--out")
    _one_error_line(capsys, [*ok, "--sampling-rate", "100", "--out", f"{x}/ev.jsonl"], "--out")
    _one_error_line(capsys, [*ok, "--sampling-rate", "100", "--out", str(tmp_path / "no" / "ev.jsonl")], "--out")
    if os.geteuid() != 0:  # root writes through a read-only mode
        ro = tmp_path / "ro.jsonl"
        ro.write_text("")
        ro.chmod(0o444)
        _one_error_line(capsys, [*ok, "--sampling-rate", "100", "--out", str(ro)], "--out")


def test_bad_record_headers_and_rows_exit_2(tmp_path, fake_model, capsys):
    for value in ("0", "abc", "nan", "-5", "1e400"):
        rec = _wfdb(tmp_path, f"fs_{len(value)}_{value.replace('.', '')}")
        _set_header_fs(rec, value)
        _one_error_line(capsys, ["art", "--record", str(rec), "--quiet"], "sampling frequency")
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n1,2\n3,4\n5,6,7\n8,9\n")
    _one_error_line(capsys, ["art", "--record", str(rows), "--sampling-rate", "100"], "line 4 has 3 columns")
    rows.write_text("1,2\n3\n")
    _one_error_line(capsys, ["art", "--record", str(rows), "--sampling-rate", "100"], "line 2 has 1 columns")


def test_csv_rows_keep_time(tmp_path):
    path = tmp_path / "two.csv"
    path.write_text("t,mv\n0,1.5\n1,\n\n3,x\n4,2.5\n")
    x, fs, _ = cli.read_record(str(path), sampling_rate=100, column=1)
    assert fs == 100.0 and np.array_equal(x, [1.5, np.nan, np.nan, np.nan, 2.5], equal_nan=True)
    x, _, _ = cli.read_record(str(path), sampling_rate=100, column=0)
    assert np.array_equal(x, [0, 1, np.nan, 3, 4], equal_nan=True)


def test_wfdb_header_without_rate_needs_sampling_rate(tmp_path, fake_model, capsys):
    rec = _wfdb(tmp_path)
    hea = rec.with_suffix(".hea")
    first, *rest = hea.read_text().splitlines()
    hea.write_text("\n".join([" ".join(first.split()[:2]), *rest]) + "\n")
    _one_error_line(capsys, ["art", "--record", str(rec)], "--sampling-rate")
    x, fs, _ = cli.read_record(str(rec), sampling_rate=100.0)
    assert fs == 100.0 and len(x) == 300


_PIPE_DRIVER = """
import sys
import wearable.runtime.streaming as streaming
import wearable.stream as cli
from wearable.runtime._fake import FakeInterpreter, fake_artifact
art = fake_artifact("segmentation")
cli.load_artifact = lambda path: art
streaming.load_interpreter = lambda *a, **k: FakeInterpreter(art)
sys.exit(cli.main(sys.argv[1:]))
"""


def test_closed_pipe_ends_quietly(tmp_path):
    path = _csv(tmp_path, _beats(600, 100.0))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(cli.__file__).parents[1]),
                                                         os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", _PIPE_DRIVER, "art", "--record", str(path), "--sampling-rate",
                             "100", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout.readline().startswith(b"{")
    proc.stdout.close()  # what `| head -1` does after its line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 141), err
    assert "Traceback" not in err and "Exception ignored" not in err and "BrokenPipe" not in err, err


def test_runtime_log_lines_stay_off_stderr(tmp_path, fake_model, capfd, monkeypatch):
    def noisy(*a, **k):
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")  # as the C++ runtime does
        return FakeInterpreter(fake_model)

    monkeypatch.setattr(streaming, "load_interpreter", noisy)
    rc = cli.main(["art", "--record", str(_csv(tmp_path, _beats(5, 100.0))), "--sampling-rate", "100", "--quiet",
                   "--out", str(tmp_path / "ev.jsonl")])
    assert rc == 0
    assert "INFO" not in capfd.readouterr().err


_BIDMC = ("RESP,", "PLETH,", "V,", "AVR,", "II,")  # as BIDMC names its signals


def test_default_channel_follows_the_models_channel_kind(tmp_path, fake_model, capsys):
    rec = _wfdb(tmp_path, "bidmc", sig_name=_BIDMC)
    assert cli.read_record(str(rec), kind="ecg")[2] == "bidmc II, (mV)"
    assert cli.read_record(str(rec), kind="ppg")[2] == "bidmc PLETH, (mV)"
    assert cli.read_record(str(rec))[2] == "bidmc RESP, (mV)"  # no kind: the first, as before
    x, _, desc = cli.read_record(str(rec), channel="PLETH", kind="ecg")  # the name without BIDMC's comma
    assert desc == "bidmc PLETH, (mV)" and np.allclose(x, 2 * cli.read_record(str(rec))[0], atol=0.01)
    assert cli.read_record(str(rec), channel="pleth,")[2] == "bidmc PLETH, (mV)"
    mitdb = _wfdb(tmp_path, "mit", sig_name=("V5", "MLII"))
    assert cli.read_record(str(mitdb), kind="ecg")[2] == "mit MLII (mV)"
    assert cli.read_record(str(_wfdb(tmp_path, "c17", sig_name=("ECG",))), kind="ecg")[2] == "c17 ECG (mV)"
    fake_model.manifest["data"]["preprocessing"]["channels"][0]["kind"] = "ppg"
    out = tmp_path / "ev.jsonl"
    assert cli.main(["art", "--record", str(rec), "--quiet", "--out", str(out)]) == 0
    assert "bidmc PLETH, (mV)" in capsys.readouterr().err


def test_unsuitable_or_ambiguous_channels_exit_2(tmp_path, fake_model, capsys):
    paced = _wfdb(tmp_path, "paced", sig_name=("V5", "V2"))  # MIT-BIH's paced records: no lead II
    _one_error_line(capsys, ["art", "--record", str(paced)], "2 ECG channels among 'V5', 'V2'")
    assert cli.main(["art", "--record", str(paced), "--channel", "V2", "--quiet"]) == 0
    capsys.readouterr()
    resp = _wfdb(tmp_path, "resp", sig_name=("RESP,", "PLETH,"))
    _one_error_line(capsys, ["art", "--record", str(resp)], "no ECG channels among 'RESP,', 'PLETH,'")
    _one_error_line(capsys, ["art", "--record", str(resp), "--channel", "II"], "no channel 'II' among")
    fake_model.manifest["data"]["preprocessing"]["channels"][0]["kind"] = "ppg"
    mitdb = _wfdb(tmp_path, "mit", sig_name=("MLII", "V1"))
    _one_error_line(capsys, ["art", "--record", str(mitdb)], "no PPG channels among 'MLII', 'V1'")
