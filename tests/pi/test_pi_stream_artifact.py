"""StreamRuntime on exported artifacts in the numpy<2 + tflite-runtime env (no scipy, no torch).

Needs ``WEARABLE_ARTIFACTS_DIR`` (like test_pi_runtime.py); skipped without it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from wearable.runtime import (StreamRuntime, available_backends, dequantize, invoke, load_artifact, load_interpreter,
                              quantize)

_ROOT = os.environ.get("WEARABLE_ARTIFACTS_DIR")
pytestmark = pytest.mark.skipif(not _ROOT, reason="WEARABLE_ARTIFACTS_DIR is not set")


def _dirs() -> list[Path]:
    if not _ROOT:
        return []
    root = Path(_ROOT)
    return [root] if (root / "manifest.json").is_file() else sorted(p.parent for p in root.glob("*/manifest.json"))


def _backend() -> str:
    found = available_backends()
    if not found:
        pytest.skip("no TFLite runtime installed")
    return "tflite_runtime" if "tflite_runtime" in found else found[0]


def _signal(seconds: float, rate: float) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.05 * np.sin(2 * np.pi * 0.3 * t)
    for r in np.arange(0.3, seconds, 0.8):
        x += 1.2 * np.exp(-0.5 * ((t - r) / 0.015) ** 2)
    return x


def _play(art, x, sizes, **kw):
    rt = StreamRuntime(art, backend=_backend(), **kw)
    rng = np.random.default_rng(3)
    events, i = [], 0
    while i < len(x):
        n = int(rng.integers(0, 700)) if sizes == "random" else sizes
        events += rt.push(x[i:i + n])
        i += n
    return events + rt.flush(), rt


@pytest.mark.parametrize("art_dir", _dirs(), ids=lambda p: p.name)
def test_stream_chunk_invariance_on_artifact(art_dir: Path):
    art = load_artifact(art_dir)
    x = _signal(4 * art.window / art.sampling_rate, art.sampling_rate)
    ref, rt = _play(art, x, 1000)
    assert rt.windows == (len(x) - art.window) // art.hop + 1
    for sizes in (1, 7, 64, "random"):
        assert _play(art, x, sizes)[0] == ref, sizes


@pytest.mark.parametrize("art_dir", _dirs(), ids=lambda p: p.name)
def test_stream_windows_equal_offline_windows(art_dir: Path):
    """The ring buffer hands the model exactly the quantized preprocessed window, at the hop."""
    art = load_artifact(art_dir)
    x = _signal(2 * art.window / art.sampling_rate, art.sampling_rate)
    pre = []
    rt = StreamRuntime(art, backend=_backend(), on_samples=lambda m0, y: pre.append(y))
    events = [e for e in rt.push(x) + rt.flush() if e["type"] in ("class", "estimate")]
    assert len(events) == (0 if rt.mode == "segmentation" else rt.windows)
    y = np.concatenate(pre)
    interp = load_interpreter(art.model, backend=_backend())
    d, out = interp.get_input_details()[0], interp.get_output_details()[0]
    w, hop = art.window, art.hop
    for k, e in enumerate(events):
        win = quantize(y[k * hop:k * hop + w, :].T[None], d)
        raw = invoke(interp, win)[0]
        if e["type"] == "class":
            assert art.labels[int(np.argmax(raw))] == e["label"]
        else:  # a regression model: the dequantized output value
            assert e["value"] == pytest.approx(float(dequantize(raw, out)[0, 0]), abs=1e-3)
        assert e["start"] == pytest.approx(k * hop / art.sampling_rate)


@pytest.mark.parametrize("art_dir", _dirs(), ids=lambda p: p.name)
def test_stream_mask_equals_offline_mask(art_dir: Path):
    """A second, per-sample output named by mask_labels: the runtime's final labels are the offline argmax."""
    art = load_artifact(art_dir)
    if not art.mask_labels:
        pytest.skip("no mask output")
    x = _signal(3 * art.window / art.sampling_rate, art.sampling_rate)
    pre, final = [], []
    rt = StreamRuntime(art, backend=_backend(), on_samples=lambda m0, y: pre.append(y))
    runs = rt._seg_runs
    rt._seg_runs = lambda s0, labels, key: (final.append((s0, np.asarray(labels, dtype=np.int64))), runs(s0, labels, key))
    rt.push(x)
    rt.flush()
    y = np.concatenate(pre)
    interp = load_interpreter(art.model, backend=_backend())
    d = interp.get_input_details()[0]
    assert len(final) == rt.windows >= 2 and art.hop == art.window  # the shipped PPG model: no overlap
    for s0, labels in final:
        mask = invoke(interp, quantize(y[s0:s0 + art.window, :].T[None], d))[1]
        np.testing.assert_array_equal(labels, mask[0].argmax(axis=0))


def test_bench_prints_one_json_line(capsys):
    from wearable.runtime.bench import main

    art_dir = _dirs()[0]
    assert main([str(art_dir), "--hours", "0.05", "--backend", _backend(), "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    art = load_artifact(art_dir)
    assert out["windows"] == (int(0.05 * 3600 * art.sampling_rate) - art.window) // art.hop + 1
    assert out["interpreter_s"] > 0
    assert out["rss_end_mib"] is None or out["rss_end_mib"] > 0
    assert main([str(art_dir.parent / "missing-artifact"), "--quiet"]) == 2
