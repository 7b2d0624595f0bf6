"""Stateful streaming (kws_streaming external-state mode): step model == offline model, export, runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from wearable.models import create
from wearable.models.streaming import NotStreamableError, stream_convert, stream_run

TINY_ECGCL = {"channels": (4, 6), "window_samples": 64, "kernel_size": 3}


class _Zoo(nn.Module):
    """Every streamable layer kind: strided, dilated, depthwise convs, BatchNorm, residual add with a
    delay line, channel concat, transposed-conv up-sampling back to the input rate."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(2, 6, 5, stride=2, padding=2), nn.BatchNorm1d(6), nn.ReLU())
        self.dw = nn.Conv1d(6, 6, 3, padding=4, dilation=4, groups=6)
        self.pw = nn.Conv1d(6, 6, 1)
        self.down = nn.Conv1d(6, 8, 4, stride=2, padding=1)
        self.mid = nn.Conv1d(8, 8, 5, padding=2)
        self.up = nn.ConvTranspose1d(16, 6, 4, stride=4)
        self.head = nn.Conv1d(6, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        h = torch.relu(h + self.pw(self.dw(h)))
        d = self.down(h)
        return self.head(self.up(torch.cat([d, torch.relu(self.mid(d))], dim=1)))


def _randomize_bn(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


def _models():
    torch.manual_seed(0)
    zoo = _Zoo()
    zoo.config = type("C", (), {"in_channels": 2, "window_samples": 64})()
    return [("ecgcl_seg", _randomize_bn(create("ecgcl_seg_tiny", **TINY_ECGCL))), ("zoo", _randomize_bn(zoo))]


@pytest.mark.parametrize("name,model", _models(), ids=lambda v: v if isinstance(v, str) else "")
def test_float_stream_equals_offline(name, model):
    step = stream_convert(model)
    c = model.config.in_channels
    x = torch.randn(1, c, 40 * step.block_samples, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = model(x)
    (y,) = stream_run(step, x)
    d, w, t = step.delay_samples, step.warmup_samples, x.shape[-1]
    assert 0 <= w < t - d
    diff = (y[..., d + w:] - ref[..., w:t - d]).abs().max().item()
    assert diff < 1e-5 * max(1.0, ref.abs().max().item()), diff
    # outside the warm-up the stream is the offline model; inside it is allowed to differ
    assert y.shape == ref.shape


def test_block_multiple_and_state_shapes():
    model = _models()[0][1]
    step = stream_convert(model)
    step2 = stream_convert(model, block_samples=2 * step.block_samples)
    x = torch.randn(1, 1, 16 * step.block_samples)
    (a,), (b,) = stream_run(step, x), stream_run(step2, x)
    assert torch.allclose(a, b, atol=1e-6)
    assert [s.shape for s in step.states] == [tuple(t.shape) for t in step.initial_states()]
    with pytest.raises(ValueError, match="multiple"):
        stream_convert(model, block_samples=step.block_samples + 1)


def test_not_streamable_names_the_layer():
    with pytest.raises(NotStreamableError, match="mean|Linear|streaming form"):
        stream_convert(create("dscnn_tiny"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_quantizer")
    from quantize._runtimes import tflm_available
    from quantize.stream_export import stream_export

    if not tflm_available():
        pytest.skip("tflite-micro not installed")
    model = _models()[0][1]
    rng = np.random.default_rng(0)
    t = np.arange(64 * 40) / 100.0
    signal = (np.sin(2 * np.pi * 1.2 * t) + 0.2 * rng.standard_normal(t.size)).astype(np.float32)[None]
    out = tmp_path_factory.mktemp("stream") / "ecgcl_stream"
    manifest = stream_export(model, out, calibration=signal, holdout=signal[:, ::-1].copy(), name="ecgcl_seg_tiny",
                             config={"sampling_rate_hz": 100.0, "window_samples": 64, "in_channels": 1})
    return out, manifest, model, signal


def test_export_manifest_and_checks(exported):
    out, manifest, model, _ = exported
    step = stream_convert(model)
    s = manifest["stream"]
    assert s["block_samples"] == step.block_samples and s["delay_samples"] == step.delay_samples
    assert [tuple(x["shape"]) for x in s["states"]] == [st.shape for st in step.states]
    on_disk = json.loads((out / "manifest.json").read_text())
    for st in on_disk["stream"]["states"]:  # fed back unchanged: one scale per state, in and out
        i, o = on_disk["inputs"][st["input"]], on_disk["outputs"][st["output"]]
        assert (i["scale"], i["zero_point"]) == (o["scale"], o["zero_point"]) == (st["scale"], st["zero_point"])
        assert i["shape"] == st["shape"]
    c = on_disk["checks"]
    assert c["float_max_abs_diff"] <= c["float_tolerance"]
    # every tensor paired with the window model's: the same int8 network, so states need no retying
    assert c["int8_vs_offline_int8_max_steps"] <= 1 and on_disk["stream"]["state_scales_tied"] == 0
    assert on_disk["tflm"]["arena_bytes"] > 0 and on_disk["tflm"]["max_abs_diff"] <= 1


def test_runtime_float_exact_int8_close_and_chunk_invariant(exported):
    from wearable.runtime.stateful import StatefulStream

    out, manifest, model, signal = exported
    x = signal[:, :signal.shape[1] // 16 * 16]
    with torch.no_grad():
        ref = model(torch.from_numpy(x[None]))[0].numpy()
    s_float = StatefulStream(out, precision="float")
    d, w, t = s_float.delay_samples, s_float.warmup_samples, x.shape[1]
    y = s_float.run(x)
    assert np.abs(y[:, d + w:] - ref[:, w:t - d]).max() < 1e-4 * max(1.0, np.abs(ref).max())
    s_int8 = StatefulStream(out)
    whole = s_int8.run(x)
    out_scale = s_int8._out[0]["quantization"][0]
    # int8 against the float model: quantization error only, argmax kept almost everywhere
    agree = np.mean(whole[:, d + w:].argmax(0) == ref[:, w:t - d].argmax(0))
    assert agree > 0.95, agree
    s_int8.reset()
    rng = np.random.default_rng(3)
    pieces, i = [], 0
    while i < t:
        n = int(rng.choice([0, 1, 7, 64, 1000]))
        pieces.append(s_int8.push(x[:, i:i + n]))
        i += n
    chunked = np.concatenate(pieces, axis=1)
    assert np.array_equal(chunked, whole)  # chunk invariance, bit for bit
    assert s_int8.samples_out == whole.shape[1] == t
    assert np.abs(chunked - whole).max() <= out_scale


def test_int8_stream_equals_the_exported_window_model(exported):
    """The int8 stream against the int8 window model ``quantize.export`` ships (its route, the same
    calibration windows), independent of the export's own check: the stream's parameters are that
    model's, and at every sample the window model computes without its zero padding (windows at
    every block, samples >= warm-up from the start and >= delay from the end) the outputs agree
    within one int8 step (in practice bit for bit)."""
    import hashlib

    from quantize import fold_batchnorm
    from quantize._strip import strip_tensor_names
    from quantize.backends.litert import float_to_int8, to_float
    from quantize._stream_ranges import as_windows
    from wearable.runtime import invoke, load_interpreter, quantize
    from wearable.runtime.stateful import StatefulStream

    out, manifest, model, signal = exported
    windows = as_windows(signal, 64)
    folded, _ = fold_batchnorm(model)
    window_int8 = strip_tensor_names(float_to_int8(to_float(folded, windows), windows))
    assert hashlib.sha256(window_int8).hexdigest() == manifest["quantization"]["window_model_int8_sha256"]
    stream = StatefulStream(out, reference_kernels=True)
    d, w, b = stream.delay_samples, stream.warmup_samples, stream.block
    assert w + d < 64  # the tiny model has samples untouched by a window's padding
    x = signal[:, :640]
    y_stream = stream.run(x)
    interp = load_interpreter(window_int8, reference_kernels=True)
    d_in, d_out = interp.get_input_details()[0], interp.get_output_details()[0]
    starts = np.arange(0, x.shape[1] - 64 + 1, b)
    (y_win,) = invoke(interp, quantize(np.stack([x[:, s:s + 64] for s in starts]), d_in))
    step = d_out["quantization"][0]
    assert stream._out[0]["quantization"] == d_out["quantization"]
    worst = 0.0
    for s, y in zip(starts, y_win):
        y = (y.astype(np.float64) - d_out["quantization"][1]) * step  # dequantized window outputs
        for t in range(s + w, s + 64 - d):
            worst = max(worst, float(np.abs(y[:, t - s] - y_stream[:, t + d]).max()))
    assert worst <= step * 1.001, worst / step
    # and each sample goes through the network once: the conv MACs per second of sliding windows at hop W
    from benchmarks.stream_compute import compute_rows

    rows = compute_rows(window_int8, (out / "model_int8.tflite").read_bytes(), rate_hz=100.0, window=64, hop=64,
                        block=b)
    assert rows[-1]["mode"] == "stream" and rows[-1]["conv"] == pytest.approx(rows[0]["conv"])
    assert rows[1]["x_sliding"] == 2


def test_map_tensors_pairs_every_step_tensor():
    """Every activation of the step graph has a partner in the window graph, states included."""
    pytest.importorskip("litert_torch")
    from quantize import fold_batchnorm
    from ai_edge_litert.interpreter import Interpreter

    from quantize._stream_tflite import step_to_float
    from quantize.backends.litert import to_float
    from quantize.stream_export import map_tensors

    model = _models()[1][1]  # strided, dilated, depthwise, residual delay line, channel concat, up-sampling
    folded, _ = fold_batchnorm(model)
    step_float = step_to_float(stream_convert(folded))
    sig = Interpreter(model_content=step_float)._get_full_signature_list()["serving_default"]
    ins, outs = sig["inputs"], sig["outputs"]
    tied = [(ins[f"args_{k + 1}"], outs[f"output_{k + 1}"]) for k in range(len(ins) - 1)]  # state k: in and out
    pairs = map_tensors(to_float(folded, np.zeros((1, 2, 64), np.float32)), step_float, tied=tied)
    assert pairs and all(r is not None for r in pairs.values()), [t for t, r in pairs.items() if r is None]
    assert pairs["serving_default_args_0"] == "serving_default_args_0"  # the block is the window's input


class _InputState(nn.Module):
    """A first conv whose history (kernel - 1 = 2 samples) is as long as a 2-sample block: the
    step's new state is the input block itself, and litert-torch returns the input tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 3, 3, padding=1)
        self.head = nn.Conv1d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)))


def test_state_that_is_the_input_block(tmp_path):
    """A graph output that is the input tensor passed through is named after the input;
    signature_order places it by the signature map, and the export passes its checks."""
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_quantizer")
    from quantize._runtimes import tflm_available
    from quantize._stream_tflite import signature_order, step_to_float
    from quantize.stream_export import stream_export
    from wearable.runtime.stateful import StatefulStream

    if not tflm_available():
        pytest.skip("tflite-micro not installed")
    torch.manual_seed(0)
    model = _InputState().eval()
    model.config = type("C", (), {"in_channels": 1, "window_samples": 32})()
    step = stream_convert(model, block_samples=2)
    assert [s.frames for s in step.states] == [2]
    ins, outs = signature_order(step_to_float(step))
    assert len(ins) == len(outs) == 2 and outs[1] == ins[0] != outs[0]  # state output = the block
    signal = np.random.default_rng(0).standard_normal((1, 32 * 8)).astype(np.float32)
    m = stream_export(model, tmp_path / "s", calibration=signal, holdout=signal[:, ::-1].copy(), name="input_state",
                      config={"sampling_rate_hz": 100.0, "window_samples": 32, "in_channels": 1}, block_samples=2)
    io = m["stream"]["tensors"]["int8"]
    assert io["outputs"][1] == io["inputs"][0]
    assert m["checks"]["int8_vs_offline_int8_max_steps"] == 0 and m["tflm"]["max_abs_diff"] == 0
    stream = StatefulStream(tmp_path / "s")
    whole = stream.run(signal[0])
    stream.reset()
    assert np.array_equal(np.concatenate([stream.push(signal[0, i:i + 3]) for i in range(0, 256, 3)], axis=1), whole)


def test_runtime_rejects_bad_input(exported, tmp_path):
    from wearable.runtime import ArtifactError
    from wearable.runtime.stateful import StatefulStream

    out, *_ = exported
    s = StatefulStream(out)
    with pytest.raises(ValueError, match="NaN"):
        s.push(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="samples must be"):
        s.push(np.zeros((3, 4)))
    with pytest.raises(ArtifactError, match="not a stateful"):
        bad = tmp_path / "plain"
        bad.mkdir()
        (bad / "model_int8.tflite").write_bytes((out / "model_int8.tflite").read_bytes())
        m = json.loads((out / "manifest.json").read_text())
        m.pop("stream")
        (bad / "manifest.json").write_text(json.dumps(m))
        StatefulStream(bad)


def test_cli_bad_input_exit_2(tmp_path, capsys):
    from quantize.stream_export import main

    assert main(["no_such_model", "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    art = tmp_path / "art"  # an artifact whose model name would lead out of the checkpoint directory
    art.mkdir()
    (art / "manifest.json").write_text(json.dumps({"model": {"name": "../../../tmp/evil"}}))
    assert main([str(art), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "model.name must be" in err and err.count("\n") == 1
