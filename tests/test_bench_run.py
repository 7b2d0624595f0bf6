"""Target profile loader, report writer and the ``python -m benchmarks.run`` command line."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from benchmarks import run
from benchmarks.latency import calibration_report
from benchmarks.targets import REQUIRED, TargetError, load_targets

FIXTURE = Path(__file__).resolve().parents[1] / "benchmarks" / "testdata" / "tiny_ops.tflite"
ISSUE_TARGETS = {"nrf52840", "nrf5340-app", "stm32u5", "apollo4-plus", "esp32-s3", "m55-u55-128", "pi-zero-2w", "pi-4"}


def _artifact(root: Path, name: str = "tiny") -> Path:
    """An export-shaped directory around the tiny fixture graph (manifest with sha256)."""
    d = root / name
    d.mkdir(parents=True)
    shutil.copy(FIXTURE, d / "model_int8.tflite")
    data = (d / "model_int8.tflite").read_bytes()
    manifest = {
        "schema_version": 1, "model": {"name": name, "version": "1"}, "task": "test",
        "sampling_rate_hz": 100.0, "window_samples": 64, "hop_samples": 32, "in_channels": 3,
        "inputs": [{"shape": [1, 3, 8, 8], "dtype": "float32"}], "outputs": [{"shape": [1, 2], "dtype": "float32"}],
        "tflm": {"arena_bytes": 4096},
        "checks": {"agreement": [{"accuracy_int8_pct": 90.0}]},
        "data": {"preprocessing": {"channels": [{"sos": [[0] * 6, [0] * 6]}]}},
        "files": {"model_int8.tflite": {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}},
    }
    (d / "manifest.json").write_text(json.dumps(manifest))
    return d


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = run.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_shipped_targets_load_with_sources():
    targets = load_targets()
    assert ISSUE_TARGETS <= set(targets)
    for t in targets.values():
        assert t.sources and all(s.strip() for s in t.sources)
        if t.kind in ("mcu", "npu"):
            assert t.cycles_per_mac["conv"] > 0 and t.cycles_per_op >= 0
    assert targets["nrf52840"].sram_bytes == 256 * 1024 and targets["stm32u5"].clock_mhz == 160


def test_calibration_fits_and_reports_held_out_error():
    m4 = load_targets()["nrf52840"]
    fit, check = calibration_report(m4.cycles_per_mac, m4.cycles_per_op)
    assert fit["role"] == "fit" and abs(fit["error_pct"]) < 0.1
    assert check["role"] == "check" and check["estimated_ms"] > 0  # error reported, whatever it is


def test_user_target_file_adds_and_replaces(tmp_path):
    user = {"targets": [{"name": "my-m4", "kind": "mcu", "description": "mine", "core": "cortex-m4f",
                         "clock_mhz": 32, "sram_bytes": 65536, "flash_bytes": 262144, "active_power_mw": 3,
                         "sources": ["my datasheet"]}]}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(user))
    targets = load_targets(path)
    assert "my-m4" in targets and "nrf52840" in targets
    assert targets["my-m4"].cycles_per_mac == targets["nrf52840"].cycles_per_mac


@pytest.mark.parametrize("field", REQUIRED)
def test_missing_field_is_one_line_error(tmp_path, field, capsys):
    t = {"name": "x", "kind": "mcu", "description": "d", "core": "cortex-m4f", "clock_mhz": 1, "sram_bytes": 1,
         "flash_bytes": 1, "active_power_mw": 1, "sources": ["s"]}
    del t[field]
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"targets": [t]}))
    with pytest.raises(TargetError, match=repr(field)):
        load_targets(path)
    code, out, err = _run(capsys, _artifact(tmp_path), "--targets", path, "--no-measure", "--out", tmp_path / "r")
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("error:") and field in err


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    art = _artifact(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _run(capsys, empty, "--no-measure", "--out", tmp_path / "r")
    assert code == 2 and "manifest.json" in err and err.count("\n") == 1
    code, _, err = _run(capsys, art, "--target", "nope", "--no-measure", "--out", tmp_path / "r")
    assert code == 2 and "unknown target 'nope'" in err and err.count("\n") == 1
    code, _, err = _run(capsys, art, "--targets", tmp_path / "missing.json", "--out", tmp_path / "r")
    assert code == 2 and "does not exist" in err
    with open(art / "model_int8.tflite", "r+b") as f:  # flip one byte: sha256 no longer matches
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 0xFF]))
    code, _, err = _run(capsys, art, "--no-measure", "--out", tmp_path / "r")
    assert code == 2 and "sha256" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("case", ["parent", "absolute", "symlink", "oversize"])
def test_files_outside_the_artifact_are_never_read(tmp_path, capsys, case):
    from wearable.runtime.artifact import MAX_FILE_BYTES

    art = _artifact(tmp_path / "arts")
    secret = tmp_path / "secret"
    secret.write_bytes(b"root:x:0:0")
    entry = {"bytes": secret.stat().st_size, "sha256": hashlib.sha256(secret.read_bytes()).hexdigest()}
    name = {"parent": "../../secret", "absolute": str(secret)}.get(case, "golden.npz")
    if case == "symlink":
        (art / name).symlink_to(secret)
    if case == "oversize":  # sparse, so the test writes nothing; its sha256 is never computed
        with open(art / name, "wb") as f:
            f.truncate(MAX_FILE_BYTES + 1)
        entry = {"sha256": "0" * 64}
    manifest = json.loads((art / "manifest.json").read_text())
    manifest["files"][name] = entry
    (art / "manifest.json").write_text(json.dumps(manifest))
    code, out, err = _run(capsys, art, "--no-measure", "--no-vela", "-q", "--out", tmp_path / "r")
    message = {"symlink": "outside the artifact directory", "oversize": f"more than the {MAX_FILE_BYTES}"}
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("error:")
    assert message.get(case, "files entry must be") in err
    assert not (tmp_path / "r").exists()


def test_report_written_and_estimates_reproducible(tmp_path, capsys):
    art = _artifact(tmp_path / "arts")
    reports = []
    for k in range(2):
        code, out, _ = _run(capsys, tmp_path / "arts", "--no-measure", "--no-vela", "-q", "--out", tmp_path / f"r{k}")
        assert code == 0
        assert "estimated" in out and "nrf52840" in out
        reports.append(json.loads((tmp_path / f"r{k}" / "report.json").read_text()))
        md = (tmp_path / f"r{k}" / "report.md").read_text()
        assert "| tiny | nrf52840 |" in md and "calibration" in md.lower()
    assert reports[0] == reports[1]
    model = reports[0]["models"][0]
    assert model["macs"] == 19_368 and model["model_bytes"] == art.joinpath("model_int8.tflite").stat().st_size
    rows = {r["target"]: r for r in model["targets"]}
    assert ISSUE_TARGETS | {"host"} == set(rows)
    nrf = rows["nrf52840"]
    assert nrf["measured"] is False and nrf["latency_source"].startswith("estimate")
    # RAM = arena + ring buffer (64 samples x 3 channels) + 2 SOS sections x 8 B + allowance
    allowance = reports[0]["runtime_allowance"]
    assert nrf["ram_bytes"] == 4096 + 192 + 16 + allowance["ram_bytes"]
    assert nrf["flash_bytes"] == model["model_bytes"] + allowance["flash_bytes"]
    assert nrf["duty_cycle"] == pytest.approx(nrf["latency_ms"] / 320.0, rel=1e-6)
    assert nrf["fits"] is True and nrf["fits_ram"] is True
    assert rows["pi-4"]["latency_ms"] is None  # not this machine: never estimated
    # a slower clock gives a proportionally longer estimate
    assert rows["nrf52840"]["latency_ms"] == pytest.approx(rows["apollo4-plus"]["latency_ms"] * 192 / 64, rel=1e-3)


@pytest.mark.parametrize("existing", [False, True])
def test_a_full_disk_mid_report_leaves_no_partial_report(tmp_path, capsys, monkeypatch, existing):
    """report.json is written, then report.md fails (ENOSPC): one error line, exit 2, and the report
    directory is as it was (absent, or the previous report and the user's own file unchanged)."""
    _artifact(tmp_path / "arts")
    out = tmp_path / "r"
    if existing:
        out.mkdir()
        (out / "report.json").write_text("{}\n")
        (out / "report.md").write_text("# an older report\n")
        (out / "notes.txt").write_text("mine\n")
    before = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    real_write = Path.write_text

    def full_disk(self, data, *args, **kwargs):
        if self.name == "report.md":
            raise OSError(28, "No space left on device")
        return real_write(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    code, stdout, err = _run(capsys, tmp_path / "arts", "--no-measure", "--no-vela", "-q", "--out", out)
    monkeypatch.undo()
    assert code == 2 and stdout == "" and err.count("\n") == 1 and err.startswith("error: ")
    assert "No space left" in err
    assert {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name]


def test_measures_this_machine(tmp_path, capsys):
    _artifact(tmp_path / "arts")
    code, out, _ = _run(capsys, tmp_path / "arts", "--target", "host", "--target", "stm32u5", "--no-vela", "-q",
                        "--invokes", "200", "--warmup", "5", "--out", tmp_path / "r")
    assert code == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    host = report["models"][0]["host"]
    ok = {k: v for k, v in host.items() if "error" not in v}
    if not ok:
        pytest.skip(f"no runtime could run the float fixture here: {host}")
    for v in ok.values():
        assert v["n"] == 200 and 0 < v["p50_ms"] <= v["p90_ms"] <= v["p99_ms"] and v["peak_rss_kb"] > 0
    row = next(r for r in report["models"][0]["targets"] if r["target"] == "host")
    assert row["measured"] is True and row["latency_source"].startswith("measured")
    assert "measured" in out


@pytest.mark.skipif(not run.vela_available(), reason="ethos-u-vela is not installed")
def test_vela_result_reaches_the_npu_row(tmp_path, capsys):
    _artifact(tmp_path / "arts")
    code, _, _ = _run(capsys, tmp_path / "arts", "--target", "m55-u55-128", "--no-measure", "-q", "--out", tmp_path / "r")
    assert code == 0
    model = json.loads((tmp_path / "r" / "report.json").read_text())["models"][0]
    vela = model["vela"]
    assert "error" not in vela and vela["cpu_operators"] == model["ops"]  # a float graph: nothing on the NPU
    (row,) = model["targets"]
    assert row["target"] == "m55-u55-128" and "vela mapped no operator to the NPU" in row["latency_source"]
    assert row["latency_ms"] > 0


def test_raspberry_pi_rows_are_measured_only_on_that_board(tmp_path):
    from benchmarks import bench
    from benchmarks.artifacts import load_artifact

    fig = bench.static_figures(load_artifact(_artifact(tmp_path)))
    targets = [t for t in load_targets().values() if t.kind == "host"]
    host = {"tflite_runtime": {"n": 200, "p50_ms": 2.0, "p90_ms": 2.5, "p99_ms": 3.0, "peak_rss_kb": 30000}}
    rows = {r["target"]: r for r in bench.target_rows(fig, targets, host=host,
                                                      device_model="Raspberry Pi 4 Model B Rev 1.4")}
    assert rows["pi-4"]["measured"] is True and rows["pi-4"]["latency_ms"] == 2.0
    assert rows["pi-4"]["energy_j_per_hour"] == pytest.approx(3.5 * (2.0 / 320.0) * 3600)
    assert rows["pi-zero-2w"]["measured"] is False and rows["pi-zero-2w"]["latency_ms"] is None


def test_unknown_arena_gives_unknown_ram(tmp_path):
    from benchmarks import bench
    from benchmarks.artifacts import load_artifact

    fig = bench.static_figures(load_artifact(_artifact(tmp_path)))
    fig["arena_bytes"] = None
    (row,) = bench.target_rows(fig, [load_targets()["nrf52840"]])
    assert row["ram_bytes"] is None and row["fits_ram"] is None and row["fits"] is None and row["latency_ms"] > 0


def _stream_export(root: Path, name: str = "tiny", block: int = 8) -> Path:
    """A stateful-streaming-export-shaped directory (its step graph: the fixture again)."""
    d = _artifact(root, name + "_stream")
    m = json.loads((d / "manifest.json").read_text())
    m["model"]["name"] = name
    m["stream"] = {"block_samples": block, "delay_samples": 12, "warmup_samples": 20}
    m["op_count"], m["tflm"] = 7, {"arena_bytes": 2048}
    m["checks"] = {"int8_vs_offline_int8_max_steps": 0}
    (d / "manifest.json").write_text(json.dumps(m))
    return d


def test_sliding_vs_streaming_compute_in_the_report(tmp_path, capsys):
    """A streaming export next to its window model: MACs per second of signal at the shipped hop,
    W/2 and W/4 against the stream's block; the stream is not benchmarked as a model of its own."""
    _artifact(tmp_path / "arts")
    _stream_export(tmp_path / "arts")
    code, out, _ = _run(capsys, tmp_path / "arts", "--target", "nrf52840", "--no-measure", "--no-vela", "-q",
                        "--out", tmp_path / "r")
    assert code == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    (model,) = report["models"]
    s = model["streaming"]
    # window 64, shipped hop 32 (= W/2), W/4 = 16; the fixture graph has 19,368 MACs per call at 100 Hz
    rows = {(r["mode"], r["hop"]): r for r in s["rows"]}
    assert set(rows) == {("sliding", 32), ("sliding", 16), ("stream", 8)}
    for (mode, hop), r in rows.items():
        assert r["all"] == pytest.approx(19_368 * 100 / hop)
        assert r["x_sliding"] == pytest.approx(32 / hop)
    assert 0 < rows[("sliding", 32)]["conv"] <= rows[("sliding", 32)]["all"]
    assert s["block_samples"] == 8 and s["delay_ms"] == pytest.approx(120.0) and s["int8_vs_offline_int8_max_steps"] == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Sliding windows vs stateful streaming" in md and "| tiny | stateful stream | 8 |" in md
    assert "| tiny | sliding windows (shipped hop) | 32 |" in out


def test_streaming_export_without_its_window_model_exits_2(tmp_path, capsys):
    stream = _stream_export(tmp_path, name="other")
    code, _, err = _run(capsys, _artifact(tmp_path), stream, "--no-measure", "--out", tmp_path / "r")
    assert code == 2 and err.count("\n") == 1 and "streaming export of other" in err


def test_streaming_compute_needs_no_torch():
    """The counting is shared with benchmarks.stream_compute and reads graphs only."""
    import subprocess
    import sys

    code = ("import sys, benchmarks.run, benchmarks.stream_compute; "
            "assert 'torch' not in sys.modules and 'ai_edge_litert' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
