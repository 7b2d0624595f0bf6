"""Export stage: BatchNorm folding, full-int8 check, gates, runtimes, determinism, CLI.

Conversion tests are ``slow`` (litert-torch takes a few seconds per model); one tiny
dscnn_tiny (256-sample windows, trained for a few dozen steps on synthetic sines) is
exported once per module and shared. tflite-runtime 2.14 is checked when
``$WEARABLE_TFLITE_RUNTIME_PYTHON`` (or the README's .venv-pi/bin/python) exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import quantize  # noqa: E402
from quantize import CheckFailed, NotFullIntegerError, Thresholds, check_full_int8, fold_batchnorm  # noqa: E402
from quantize.export import main  # noqa: E402
from wearable.models import create  # noqa: E402
from wearable.runtime import dequantize, invoke, load_interpreter, quantize as to_int8, replay_golden  # noqa: E402
from wearable.training import save_checkpoint  # noqa: E402

WINDOW = 256
FILES = {"model.onnx", "model_int8.onnx", "model_int8.tflite", "golden.npz", "diagnosis.json", "MODEL_CARD.md",
         "manifest.json"}


def _tflite_runtime_python() -> str | None:
    path = os.environ.get("WEARABLE_TFLITE_RUNTIME_PYTHON") or str(Path(__file__).parents[1] / ".venv-pi/bin/python")
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def _sines(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three classes: 2, 5 and 11 Hz sines at 100 Hz with random phase and noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    t = np.arange(WINDOW) / 100.0
    freq = np.array([2.0, 5.0, 11.0])[y]
    x = np.sin(2 * np.pi * freq[:, None] * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    x = x + 0.3 * rng.standard_normal((n, WINDOW))
    return x[:, None, :].astype(np.float32), y


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    x_train, y_train = _sines(512, seed=0)
    x_val, y_val = _sines(200, seed=1)
    return {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val}


@pytest.fixture(scope="module")
def model(data) -> nn.Module:
    # One thread: on a shared 2-core machine, two competing torch thread pools made these 40
    # steps take 48 s instead of 2.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(data)
    finally:
        torch.set_num_threads(threads)


def _train(data) -> nn.Module:
    torch.manual_seed(0)
    net = create("dscnn_tiny", window_samples=WINDOW, num_classes=3)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    net.train()
    for _ in range(40):
        idx = rng.integers(0, len(data["x_train"]), 64)
        loss = nn.functional.cross_entropy(net(torch.from_numpy(data["x_train"][idx])),
                                           torch.from_numpy(data["y_train"][idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def _export(model, data, out: Path, **kw):
    return quantize.export_model(model, out, calibration=data["x_train"][:128], holdout=data["x_val"],
                                 holdout_labels=data["y_val"], labels=["slow", "mid", "fast"], **kw)


@pytest.fixture(scope="module")
def exported(model, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "dscnn_tiny"
    stages: list[str] = []
    manifest = _export(model, data, out, tflite_runtime_python=_tflite_runtime_python(), progress=stages.append)
    return manifest, stages


def _hashes(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


# --------------------------------------------------------------------------- BatchNorm folding (fast)

def _randomize_bn(net: nn.Module) -> None:
    gen = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=gen) * 2 + 0.1)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=gen) - 0.5)


def test_fold_batchnorm_dscnn_equivalent():
    torch.manual_seed(0)
    net = create("dscnn_tiny", window_samples=WINDOW, num_classes=3).eval()
    _randomize_bn(net)
    folded, n = fold_batchnorm(net)
    assert n == 9 and quantize.count_batchnorm(folded) == 0
    assert quantize.count_batchnorm(net) == 9  # the input model is untouched
    x = torch.randn(16, 1, WINDOW)
    with torch.no_grad():
        ref, got = net(x), folded(x)
    assert torch.max(torch.abs(ref - got)).item() < 1e-5 * max(1.0, ref.abs().max().item())


def test_fold_batchnorm_conv2d_nested_and_unfoldable():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, bias=True), nn.BatchNorm2d(4), nn.ReLU()),
        nn.BatchNorm2d(4),  # after a ReLU: must stay
        nn.Conv2d(4, 3, 1),
        nn.BatchNorm2d(3, affine=False),
    ).eval()
    _randomize_bn(net[0])
    net[3].running_mean.uniform_(-1, 1)
    net[3].running_var.uniform_(0.5, 2)
    folded, n = fold_batchnorm(net)
    assert n == 2
    assert quantize.count_batchnorm(folded) == 1
    assert isinstance(folded[1], nn.BatchNorm2d) and isinstance(folded[3], nn.Identity)
    x = torch.randn(5, 2, 8, 8)
    with torch.no_grad():
        assert torch.allclose(net(x), folded(x), atol=1e-5)


# --------------------------------------------------------------------------- cheap argument checks

def test_export_refuses_existing_dir_and_bad_windows(model, data, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError):
        _export(model, data, tmp_path / "taken")
    with pytest.raises(ValueError, match="windows must be shaped"):
        quantize.export_model(model, tmp_path / "new", calibration=data["x_train"][:, :, :100], holdout=data["x_val"])
    bad = data["x_val"].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        quantize.export_model(model, tmp_path / "new", calibration=data["x_train"], holdout=bad)
    with pytest.raises(ValueError, match="unknown backend"):
        _export(model, data, tmp_path / "new", backend="nope")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_thresholds_validate():
    with pytest.raises(ValueError):
        Thresholds(min_agreement_pct=101)
    with pytest.raises(ValueError):
        Thresholds(max_error_ratio=-1)
    for field in ("min_agreement_pct", "max_error_ratio", "min_output_coverage", "max_onnx_diff", "max_metric_drop"):
        for bad in (float("nan"), float("inf")):  # NaN passes every `value > limit` gate
            with pytest.raises(ValueError, match=f"{field} must be a finite number"):
                Thresholds(**{field: bad})
    with pytest.raises(ValueError, match="min_output_coverage"):
        Thresholds(min_output_coverage=1.5)


def test_manifest_json_refuses_nan_and_keeps_the_bytes():
    from quantize._files import manifest_json

    data = {"b": [1.0, 2], "a": {"x": 0.1}}
    assert manifest_json(data) == json.dumps(data, indent=2, sort_keys=True) + "\n"
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(quantize.ExportError, match=re.escape("non-finite number at checks.gates[1]")):
            manifest_json({"checks": {"gates": [0.5, bad]}, "name": "x"})


@pytest.mark.parametrize("flag", [
    ["--max-error-ratio", "nan"], ["--max-error-ratio", "-1"], ["--min-agreement", "inf"], ["--min-agreement", "nan"],
    ["--min-output-coverage", "1.5"], ["--max-onnx-diff=-inf"], ["--max-tflm-diff", "nan"],
    ["--max-metric-drop", "nan"], ["--max-metric-drop", "dscnn_tiny=inf"], ["--max-metric-drop", "dscnn_tiny=x"],
])
def test_cli_refuses_non_finite_or_out_of_range_gates(flag, tmp_path, capsys):
    code, stdout, err = _run(capsys, "--checkpoint", str(tmp_path / "any.pt"), "--out", str(tmp_path / "a"), *flag)
    line = _one_line_error(err)
    assert code == 2 and stdout == "" and f"argument {flag[0].split('=')[0]}:" in line and "must be" in line
    assert list(tmp_path.iterdir()) == []


def test_agreement_per_time_sample():
    from quantize._checks import agreement

    yf = np.zeros((2, 3, 4), np.float32)
    yf[:, 1] = 1.0  # class 1 everywhere
    yq = yf.copy()
    yq[0, 2, 0] = 2.0  # one of 8 time samples flips to class 2
    detail = {"name": "out", "dtype": np.int8, "quantization_parameters": {"scales": [0.01], "zero_points": [0]}}
    entry = agreement(yf, yq, detail, labels=np.ones((2, 4), np.int64))
    assert entry["argmax_agreement_pct"] == 87.5
    assert entry["accuracy_float_pct"] == 100.0 and entry["accuracy_int8_pct"] == 87.5
    assert entry["max_abs_error"] == 2.0


# --------------------------------------------------------------------------- conversion (slow)

@pytest.mark.slow
def test_export_writes_checked_artifacts(exported):
    manifest, stages = exported
    d = manifest.directory
    assert {p.name for p in d.iterdir()} == FILES
    assert _leftovers(d.parent) == []
    data = json.loads((d / "manifest.json").read_text())
    assert data == manifest.data
    assert (d / "manifest.json").read_text() == json.dumps(data, indent=2, sort_keys=True) + "\n"
    for name, entry in data["files"].items():
        assert hashlib.sha256((d / name).read_bytes()).hexdigest() == entry["sha256"]
    assert data["schema_version"] == 1 and data["model"]["name"] == "dscnn_tiny"
    assert data["window_samples"] == data["hop_samples"] == WINDOW and data["sampling_rate_hz"] == 100.0
    assert data["labels"] == ["slow", "mid", "fast"]
    assert [i["dtype"] for i in data["inputs"] + data["outputs"]] == ["int8", "int8"]
    assert data["inputs"][0]["shape"] == [1, 1, WINDOW] and data["outputs"][0]["shape"] == [1, 3]
    assert data["op_count"] == sum(op["count"] for op in data["ops"]) == manifest.op_count
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= {op["name"] for op in data["ops"]}
    assert all(op["version"] >= 1 for op in data["ops"])
    checks = data["checks"]
    assert checks["batchnorm"] == {"folded": 9, "remaining": 0, "max_abs_diff": checks["batchnorm"]["max_abs_diff"]}
    assert checks["onnx"]["opset"] >= 17 and checks["onnx"]["max_abs_diff"] < 1e-4
    (agreement,) = checks["agreement"]
    assert agreement["argmax_agreement_pct"] >= 97.0
    assert agreement["error_ratio"] <= Thresholds().max_error_ratio
    # Trap 3: the int8 output range covers the float logits (min/max calibration, not averaged).
    assert agreement["output_range_coverage"] >= 0.9
    assert agreement["int8_range"][0] <= agreement["float_range"][0] + 0.1 * np.ptp(agreement["float_range"])
    calib = data["calibration"]
    assert calib == {"windows": 128, "method": "min_max", "sha256": calib["sha256"],
                     "extreme_windows": calib["extreme_windows"], "nncf_windows": 128}
    assert 2 <= calib["extreme_windows"] <= 128
    assert stages[:3] == ["fold batchnorm", "onnx", "convert (litert)"] and "nncf int8 onnx" in stages


@pytest.mark.slow
def test_onnx_matches_torch(exported, model, data):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(exported[0].directory / "model.onnx"), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"input": data["x_val"][:7]})  # dynamic batch
    with torch.no_grad():
        ref = model(torch.from_numpy(data["x_val"][:7])).numpy()
    assert np.max(np.abs(y - ref)) < 1e-4


@pytest.mark.slow
def test_onnx_files_name_no_path_of_this_machine(exported):
    # the exporter's stack traces named the checkout's files: the same model gave other bytes elsewhere
    repo = str(Path(__file__).resolve().parents[1]).encode()
    for name in ("model.onnx", "model_int8.onnx"):
        data = (exported[0].directory / name).read_bytes()
        assert repo not in data and b"site-packages" not in data, name


@pytest.mark.slow
def test_tflite_is_full_int8_and_runs_in_litert(exported, model, data):
    d = exported[0].directory
    summary = check_full_int8((d / "model_int8.tflite").read_bytes())
    assert summary.float_ops == () and summary.input_types == summary.output_types == ("int8",)
    interp = load_interpreter(d / "model_int8.tflite", backend="ai_edge_litert", default_delegates=False)
    x_q = to_int8(data["x_val"][:20], interp.get_input_details()[0])
    (y_q,) = invoke(interp, x_q)
    assert y_q.dtype == np.int8 and y_q.shape == (20, 3)
    (single,) = invoke(interp, x_q[:1])
    np.testing.assert_array_equal(single, y_q[:1])
    y = dequantize(y_q, interp.get_output_details()[0])
    with torch.no_grad():
        ref = model(torch.from_numpy(data["x_val"][:20])).numpy()
    assert np.mean(y.argmax(1) == ref.argmax(1)) >= 0.9
    with pytest.raises(ValueError, match="float32"):
        invoke(interp, data["x_val"][:1])


@pytest.mark.slow
def test_golden_replays_in_litert(exported):
    d = exported[0].directory
    result = replay_golden(d / "model_int8.tflite", d / "golden.npz", backend="ai_edge_litert")
    assert result["identical"] and result["windows"] == exported[0].data["golden"]["windows"] == 8


@pytest.mark.slow
@pytest.mark.tflm
def test_tflite_micro_verified(exported):
    pytest.importorskip("tflite_micro")
    data = exported[0].data
    tflm = data["verified_runtimes"]["tflite_micro"]
    assert tflm["max_abs_diff"] <= Thresholds().max_tflm_diff and tflm["windows"] == 64
    assert 1_000 < data["tflm"]["arena_bytes"] < 200_000
    assert exported[0].arena_bytes == data["tflm"]["arena_bytes"]


@pytest.mark.slow
def test_verified_runtimes_are_the_ones_run(exported):
    runtimes = exported[0].data["verified_runtimes"]
    assert runtimes["ai_edge_litert"]["max_abs_diff"] == 0
    expected = {"ai_edge_litert", "tflite_micro"} | ({"tflite_runtime"} if _tflite_runtime_python() else set())
    assert set(runtimes) == expected
    if "tflite_runtime" in runtimes:
        assert runtimes["tflite_runtime"]["version"] == "2.14.0"
        assert runtimes["tflite_runtime"]["max_abs_diff"] == 0


@pytest.mark.slow
def test_tflite_runtime_replays_golden(exported):
    python = _tflite_runtime_python()
    if python is None:
        pytest.skip("no tflite-runtime Python ($WEARABLE_TFLITE_RUNTIME_PYTHON or .venv-pi/bin/python)")
    from quantize._runtimes import replay_in_python

    d = exported[0].directory
    result = replay_in_python(python, d / "model_int8.tflite", d / "golden.npz")
    assert result["backend"] == "tflite_runtime" and result["identical"]


@pytest.mark.slow
def test_float_tflite_rejected_naming_ops(model, data):
    float_model = quantize.get_backend("litert").to_float(fold_batchnorm(model)[0], data["x_train"][:1])
    with pytest.raises(NotFullIntegerError) as err:
        check_full_int8(float_model)
    message = str(err.value)
    assert "CONV_2D" in message and "float32" in message and "expected int8" in message
    assert len(quantize.summarize_tflite(float_model).float_ops) == quantize.summarize_tflite(float_model).op_count
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        check_full_int8(b"definitely not a flatbuffer")


@pytest.mark.slow
def test_reexport_is_byte_identical_and_overwrite_is_atomic(exported, model, data, tmp_path):
    first = exported[0].directory
    again = _export(model, data, tmp_path / "dscnn_tiny", tflite_runtime_python=_tflite_runtime_python())
    assert _hashes(again.directory) == _hashes(first)
    # overwrite replaces the directory in one rename; the result is the same bytes
    (again.directory / "stale.txt").write_text("old")
    _export(model, data, again.directory, overwrite=True, tflite_runtime_python=_tflite_runtime_python())
    assert _hashes(again.directory) == _hashes(first)
    assert _leftovers(tmp_path) == []


@pytest.mark.slow
def test_impossible_thresholds_write_nothing(model, data, tmp_path):
    out = tmp_path / "nested" / "dscnn_tiny"
    with pytest.raises(CheckFailed) as err:
        _export(model, data, out, thresholds=Thresholds(max_error_ratio=0.0, min_agreement_pct=100.0))
    assert "of the float output range" in str(err.value)
    assert not out.exists() and not (tmp_path / "nested").exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.tflm
def test_tflm_rejects_gelu_naming_it(data, tmp_path):
    """Trap 1 of shared/notes/conversion.md: TFLite Micro has no GELU kernel."""
    pytest.importorskip("tflite_micro")
    torch.manual_seed(0)
    net = create("dscnn_tiny", window_samples=WINDOW, num_classes=3).eval()
    net.features[1][2] = nn.GELU()
    loose = Thresholds(min_agreement_pct=0, max_error_ratio=1, min_output_coverage=0)
    with pytest.raises(CheckFailed, match="TFLite Micro cannot run the model.*GELU"):
        quantize.export_model(net, tmp_path / "gelu", calibration=data["x_train"][:32], holdout=data["x_val"][:16],
                              thresholds=loose)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- CLI

def _checkpoint(tmp_path: Path, model: nn.Module, **data_overrides) -> Path:
    spec = {"source": "synthetic", "task": "rhythm", "sampling_rate_hz": 100.0, "window_samples": WINDOW,
            "data_dir": None, "seed": 0, **data_overrides}
    return save_checkpoint(tmp_path / "ckpt" / "dscnn_tiny.pt", model, model_name="dscnn_tiny", data=spec,
                           labels=["slow", "mid", "fast"], metrics={}, seed=0)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("case", ["unknown_model", "missing_checkpoint", "corrupt_checkpoint", "missing_data_dir",
                                  "empty_data_dir", "bad_rate", "out_under_file", "exists", "bad_flag",
                                  "no_shipped_checkpoint", "no_arguments", "bad_threshold", "bad_python"])
def test_cli_bad_input_exit_2(case, model, tmp_path, capsys, monkeypatch):
    ckpt = _checkpoint(tmp_path, model)
    out = tmp_path / "artifacts"
    argv = {
        "unknown_model": ["no_such_model"],
        "missing_checkpoint": ["--checkpoint", str(tmp_path / "missing.pt")],
        "corrupt_checkpoint": ["--checkpoint", str(tmp_path / "corrupt.pt")],
        "missing_data_dir": ["--checkpoint", str(ckpt), "--data-dir", str(tmp_path / "nodata")],
        "empty_data_dir": ["--checkpoint", str(ckpt), "--data-dir", str(tmp_path / "emptydata")],
        "bad_rate": ["--checkpoint", str(_checkpoint(tmp_path / "r", model, sampling_rate_hz=0.0))],
        "out_under_file": ["--checkpoint", str(ckpt), "--out", str(tmp_path / "afile" / "sub")],
        "exists": ["--checkpoint", str(ckpt), "--out", str(out)],
        "bad_flag": ["--no-such-flag"],
        "no_shipped_checkpoint": ["dscnn_tiny"],
        "no_arguments": [],
        "bad_threshold": ["--checkpoint", str(ckpt), "--min-agreement", "120"],
        "bad_python": ["--checkpoint", str(ckpt), "--tflite-runtime-python", str(tmp_path / "nopython")],
    }[case]
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "emptydata").mkdir()
    (tmp_path / "afile").write_text("x")
    if case == "exists":
        (out / "dscnn_tiny").mkdir(parents=True)
    if case in ("no_shipped_checkpoint", "no_arguments"):
        monkeypatch.setattr("quantize.export.CHECKPOINT_DIR", tmp_path / "ckpt-none")
    if "--out" not in argv:
        argv += ["--out", str(out)]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, stdout, err = _run(capsys, *argv)
    assert code == 2, err
    line = _one_line_error(err)
    assert stdout == ""
    if case == "unknown_model":
        assert "dscnn_tiny" in line  # lists the registered models
    if case != "exists":
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    else:
        assert list((out / "dscnn_tiny").iterdir()) == []


def test_nan_weights_are_refused_before_any_converter_runs(model, data, tmp_path, capsys, monkeypatch):
    import copy

    ckpt = _checkpoint(tmp_path, model)
    raw = torch.load(ckpt, weights_only=True)
    name = sorted(raw["state_dict"])[0]
    raw["state_dict"][name] = torch.full_like(raw["state_dict"][name], float("nan"))
    torch.save(raw, ckpt)
    monkeypatch.setattr("quantize._export.get_backend", lambda name: pytest.fail("the converter ran"))
    code, stdout, err = _run(capsys, "--checkpoint", str(ckpt), "--out", str(tmp_path / "a"))
    line = _one_line_error(err)
    assert code == 2 and stdout == "" and "NaN or infinite weights" in line and name in line
    assert not (tmp_path / "a").exists()
    poisoned = copy.deepcopy(model)
    with torch.no_grad():
        next(poisoned.parameters()).view(-1)[0] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite weights"):
        quantize.export_model(poisoned, tmp_path / "b", calibration=data["x_train"][:8], holdout=data["x_val"][:8])
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_cli_exports_checkpoint_and_gates(model, tmp_path, capsys):
    pytest.importorskip("wearable.data")
    ckpt = _checkpoint(tmp_path, model)
    out = tmp_path / "artifacts"
    common = ["--checkpoint", str(ckpt), "--out", str(out), "--calibration-windows", "32", "--holdout-windows", "48"]
    # The sine model knows nothing of synthetic ECG rhythms: its logits are near ties, so gate
    # agreement loosely here; the error and coverage gates still apply.
    code, stdout, err = _run(capsys, *common, "--min-agreement", "50", "--max-metric-drop", "100")
    assert code == 0, err
    assert "Traceback" not in err and "WARNING" not in err
    assert len(stdout.strip().splitlines()) == 2, stdout
    header, row = stdout.strip().splitlines()
    assert header.split()[:3] == ["model", "ops", "int8"] and row.startswith("dscnn_tiny")
    manifest = quantize.Manifest.load(out / "dscnn_tiny")
    assert str(manifest.op_count) in row and str(manifest.arena_bytes) in row
    assert manifest.data["data"]["source"] == "synthetic" and manifest.data["calibration"]["windows"] == 32
    assert manifest.data["task"] == "rhythm" and manifest.data["holdout"]["windows"] == 48
    assert set(manifest.data["files"]) == FILES - {"manifest.json"}
    assert (out / "dscnn_tiny" / "firmware" / "model_data.c").is_file()  # the CLI also writes firmware sources

    # a gate that cannot pass: exit 1, the existing export is left as it was
    before = _hashes(out / "dscnn_tiny")
    code, stdout, err = _run(capsys, *common, "--force", "--max-error-ratio", "0", "--max-metric-drop", "100")
    assert code == 1
    assert "error: dscnn_tiny:" in err and "of the float output range" in err and "Traceback" not in err
    assert "FAILED" in stdout
    assert _hashes(out / "dscnn_tiny") == before and _leftovers(out) == []


@pytest.mark.slow
def test_cli_writes_firmware_before_the_old_artifact_goes(model, tmp_path, capsys, monkeypatch):
    """The firmware sources are generated inside the staging directory: when that fails (here a
    full disk) the existing artifact stays byte for byte and nothing is left behind; the sources
    equal what the generator writes for the finished artifact."""
    from firmware_bridge import _generate
    from firmware_bridge._generate import generate

    ckpt = _checkpoint(tmp_path, model)
    out = tmp_path / "artifacts"
    common = ["--checkpoint", str(ckpt), "--out", str(out), "--calibration-windows", "32", "--holdout-windows", "48",
              "--min-agreement", "50", "--max-metric-drop", "100"]
    code, _, err = _run(capsys, *common)
    assert code == 0, err
    art = out / "dscnn_tiny"
    assert _hashes(art / "firmware") == _hashes(generate(art, out_dir=tmp_path / "again"))
    before = _hashes(art)

    def full_disk(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_generate, "_write", full_disk)
    code, stdout, err = _run(capsys, *common, "--force")
    assert code == 1 and "FAILED" in stdout
    assert "error: dscnn_tiny: firmware sources: cannot write" in err and "No space left" in err
    assert _hashes(art) == before and _leftovers(out) == [] and _leftovers(art) == []


def test_cli_module_entry_point_help():
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "quantize.export", "--help"], capture_output=True, text=True,
                          cwd=Path(quantize.__file__).parents[1], check=False)
    assert proc.returncode == 0
    for flag in ("--checkpoint", "--out", "--data-dir", "--calibration-windows", "--holdout-windows", "--force",
                 "--tflite-runtime-python", "--min-agreement", "--max-error-ratio"):
        assert flag in proc.stdout


# --------------------------------------------------------------------------- trust: metric gate, diagnosis, ONNX int8, card

@pytest.mark.slow
def test_task_metric_is_recomputed_from_the_int8_model(exported, model, data):
    from wearable.metrics import macro_f1

    manifest = exported[0]
    score = manifest.data["checks"]["task_metric"]
    interp = load_interpreter(manifest.directory / "model_int8.tflite", backend="ai_edge_litert",
                              reference_kernels=True)
    (detail,) = interp.get_input_details()
    (y_q,) = invoke(interp, to_int8(data["x_val"], detail))
    y_int8 = dequantize(y_q, interp.get_output_details()[0])
    with torch.no_grad():
        y_float = model(torch.from_numpy(data["x_val"])).numpy()
    assert score["metric"] == "macro F1 %" and score["output"] == 0
    assert score["int8"] == pytest.approx(100 * macro_f1(data["y_val"], y_int8.argmax(1), 3), abs=1e-4)
    assert score["float"] == pytest.approx(100 * macro_f1(data["y_val"], y_float.argmax(1), 3), abs=1e-4)
    assert score["drop"] == pytest.approx(score["float"] - score["int8"], abs=1e-4)
    assert score["drop"] <= Thresholds().max_metric_drop


@pytest.mark.slow
def test_diagnosis_matches_an_independent_output_sqnr(exported, model, data):
    """The output tensor's SQNR in diagnosis.json, recomputed from the float and int8 TFLite models."""
    diag = json.loads((exported[0].directory / "diagnosis.json").read_text())
    tensors = sorted(diag["tensors"], key=lambda t: t["order"])
    assert diag["windows"] == 64 and len(tensors) >= 10
    assert [t["order"] for t in tensors] == sorted({t["order"] for t in tensors})
    assert all(t["sqnr_db"] is None or 5 < t["sqnr_db"] < 80 for t in tensors)
    folded, _ = fold_batchnorm(model)
    float_tflite = quantize.get_backend("litert").to_float(folded, data["x_train"][:1])
    x = data["x_train"][:64]
    (y_f,) = invoke(load_interpreter(float_tflite, backend="ai_edge_litert", default_delegates=False), x)
    interp = load_interpreter(exported[0].directory / "model_int8.tflite", backend="ai_edge_litert",
                              reference_kernels=True)
    (y_q,) = invoke(interp, to_int8(x, interp.get_input_details()[0]))
    err = dequantize(y_q, interp.get_output_details()[0]) - y_f
    expected = 10 * np.log10(np.sum(y_f.astype(np.float64) ** 2) / np.sum(err.astype(np.float64) ** 2))
    assert tensors[-1]["sqnr_db"] == pytest.approx(expected, abs=0.01)
    assert exported[0].data["checks"]["worst_tensors"][0]["sqnr_db"] == min(
        t["sqnr_db"] for t in tensors if t["sqnr_db"] is not None)


@pytest.mark.slow
def test_diagnose_cli_prints_worst_first_and_writes_png(exported, tmp_path, capsys):
    from quantize.diagnose import main as diagnose

    png = tmp_path / "d.png"
    assert diagnose([str(exported[0].directory), "--top", "5", "--png", str(png)]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [ln.split() for ln in out[2:7]]
    sqnr = [float(r[2]) for r in rows]
    assert sqnr == sorted(sqnr) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert diagnose([str(tmp_path / "missing")]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.slow
def test_nncf_int8_onnx_runs_in_onnxruntime(exported, model, data):
    import onnx
    import onnxruntime as ort

    d = exported[0].directory
    graph = onnx.load(d / "model_int8.onnx").graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in graph.node}
    session = ort.InferenceSession(str(d / "model_int8.onnx"), providers=["CPUExecutionProvider"])
    (y_o,) = session.run(None, {"input": data["x_val"]})
    with torch.no_grad():
        y_f = model(torch.from_numpy(data["x_val"])).numpy()
    onnx_check = exported[0].data["checks"]["onnx_int8"]
    assert onnx_check["argmax_agreement_pct"][0] == pytest.approx(100 * np.mean(y_o.argmax(1) == y_f.argmax(1)), abs=0.01)
    assert onnx_check["argmax_agreement_pct"][0] >= 97
    assert exported[0].data["versions"]["nncf"]


@pytest.mark.slow
def test_model_card_and_compatibility(exported):
    m = exported[0]
    card = (m.directory / "MODEL_CARD.md").read_text()
    for section in ("## Intended use", "## Training data", "## Metrics", "## Limitations", "Attribution"):
        assert section in card
    score = m.data["checks"]["task_metric"]
    assert f"| {score['float']:.2f} | {score['int8']:.2f} |" in card
    assert m.data["files"]["MODEL_CARD.md"]["sha256"] == hashlib.sha256(card.encode()).hexdigest()
    compat = m.data["compatibility"]
    assert compat["max_op_version"] == max(op["version"] for op in m.data["ops"])
    if _tflite_runtime_python():
        assert compat["oldest_tflite_runtime"] == "tflite-runtime 2.14.0"
    else:
        assert compat["oldest_tflite_runtime"] is None


@pytest.mark.slow
def test_tflite_keeps_only_io_names_and_aligned_weights(exported):
    from ai_edge_litert import schema_py_generated as fb

    model = (exported[0].directory / "model_int8.tflite").read_bytes()
    root = fb.Model.GetRootAs(model, 0)
    graph = root.Subgraphs(0)
    io = {graph.Inputs(i) for i in range(graph.InputsLength())} | {graph.Outputs(i) for i in range(graph.OutputsLength())}
    named = {k for k in range(graph.TensorsLength()) if graph.Tensors(k).Name()}
    assert named == io  # intermediate names are flash the MCU never reads
    for b in range(root.BuffersLength()):
        buf = root.Buffers(b)
        if buf.DataLength():
            assert buf._tab.Vector(buf._tab.Offset(4)) % 16 == 0  # schema's force_align: 16
