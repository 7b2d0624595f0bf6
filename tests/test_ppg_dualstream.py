"""PPG rhythm + artifact mask: data (exact masks), shift behaviour of both outputs, two-output export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wearable.data import DataError, load_windows
from wearable.data.ppg_artifacts import PPG_ARTIFACT_KINDS, PPG_ARTIFACT_LABELS, ppg_artifacts_add
from wearable.experiments.ppg_artifacts import boundary_errors_ms, main, mask_f1
from wearable.models import create
from wearable.training.multitask import MultitaskConfig, fit_multitask, predict_multitask

FS = 50.0


def test_artifacts_masks_are_exact():
    clean = np.sin(2 * np.pi * 1.2 * np.arange(1000) / FS)
    for k, kind in enumerate(PPG_ARTIFACT_KINDS):
        noisy, mask = ppg_artifacts_add(clean, sampling_rate=FS, kinds=(kind,), seed=k, rails=(-3.0, 3.0))
        inside = mask == PPG_ARTIFACT_LABELS.index(kind)
        assert inside.any() and set(np.unique(mask)) == {0, PPG_ARTIFACT_LABELS.index(kind)}
        np.testing.assert_array_equal(noisy[~inside], clean[~inside])  # nothing leaks outside the mask
        assert np.flatnonzero(np.diff(inside.astype(int))).size <= 2  # one contiguous segment
        if kind == "saturation":
            assert np.all(noisy[inside] == noisy[inside][0]) and abs(noisy[inside][0]) == 3.0
    noisy, mask = ppg_artifacts_add(clean, sampling_rate=FS, seed=3)
    assert set(np.unique(mask)) == set(range(len(PPG_ARTIFACT_LABELS)))  # all five, never overlapping
    with pytest.raises(DataError, match="accepted"):
        ppg_artifacts_add(clean, sampling_rate=FS, kinds=("wobble",))


def test_rhythm_artifact_windows():
    ws = load_windows("ppg", "rhythm_artifact", split="val", sampling_rate_hz=FS, window_samples=256, limit=6)
    again = load_windows("ppg", "rhythm_artifact", split="val", sampling_rate_hz=FS, window_samples=256, limit=6)
    assert ws.x.shape == (6, 1, 256) and ws.mask.shape == (6, 256) and ws.mask.dtype == np.int64
    assert ws.labels == ("sinus", "ectopic", "af") and ws.y.tolist() == [0, 1, 2, 0, 1, 2]
    assert set(np.unique(ws.mask)) <= {0, 1} and ws.mask.any()
    np.testing.assert_array_equal(ws.x, again.x)
    np.testing.assert_array_equal(ws.mask, again.mask)
    other = load_windows("synthetic", "rhythm", split="val", sampling_rate_hz=FS, window_samples=256, limit=2)
    assert other.mask is None  # the new field is optional


@pytest.mark.realdata
def test_bidmc_artifact_windows(data_dir):
    ws = load_windows("ppg", "bidmc_artifact", split="test", sampling_rate_hz=FS, window_samples=256, limit=8,
                      data_dir=data_dir)
    assert ws.x.shape == (8, 1, 256) and ws.y.shape == (8, 256)
    np.testing.assert_array_equal(ws.y, ws.mask)
    assert all(r in ("bidmc45", "bidmc46", "bidmc47", "bidmc48", "bidmc49", "bidmc50", "bidmc51", "bidmc52",
                     "bidmc53") for r in ws.records)


def _shifted_pair(window: int, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Content in the middle, zeros around it (wider than any receptive field), and the same content moved."""
    x = torch.zeros(2, 1, window)
    content = 3 * torch.randn(2, 1, 64, generator=torch.Generator().manual_seed(0))
    a = window // 2 - 64
    x[..., a:a + 64] = content
    return x, torch.roll(x, shift, dims=-1)


@pytest.mark.parametrize("name,cfg,stride", [
    ("ppg_dualstream", {"cls_width": 4, "loc_width": 4, "loc_dilations": (1, 2)}, 32),
    ("ppg_singlestream", {"width": 8}, 16),
])
def test_mask_shifts_with_input_class_does_not(name, cfg, stride):
    torch.manual_seed(0)
    model = create(name, window_samples=1024, **cfg).eval()
    x, moved = _shifted_pair(1024, 2 * stride)
    with torch.no_grad():
        (c0, m0), (c1, m1) = model(x), model(moved)
    assert c0.shape == (2, 3) and m0.shape == (2, 2, 1024)
    torch.testing.assert_close(m1, torch.roll(m0, 2 * stride, dims=-1), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(c1, c0, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(m1, m0, atol=1e-3)  # the mask did move


def test_dualstream_mask_is_equivariant_to_the_sample():
    torch.manual_seed(0)
    model = create("ppg_dualstream", window_samples=1024, cls_width=4, loc_width=4, loc_dilations=(1, 2)).eval()
    x, moved = _shifted_pair(1024, 3)  # not a multiple of any stride: only the full-resolution stream follows
    with torch.no_grad():
        torch.testing.assert_close(model(moved)[1], torch.roll(model(x)[1], 3, dims=-1), atol=1e-5, rtol=1e-4)


def test_metrics():
    true = np.zeros((1, 100), int)
    true[0, 20:40] = 1
    pred = np.zeros((1, 100), int)
    pred[0, 22:40] = 1
    assert mask_f1(true, pred) == pytest.approx(2 * 18 / 38)
    np.testing.assert_allclose(sorted(boundary_errors_ms(true, pred, FS)), [0.0, 40.0])
    assert np.isinf(boundary_errors_ms(true, np.zeros_like(true), FS)).all()


def test_multitask_training_runs():
    ws = load_windows("ppg", "rhythm_artifact", split="train", sampling_rate_hz=FS, window_samples=256, limit=12)
    model = create("ppg_dualstream", window_samples=256, cls_width=4, loc_width=4, loc_dilations=(1,))
    losses = fit_multitask(model, ws.x, ws.y, ws.mask, config=MultitaskConfig(epochs=2, batch_size=6), progress=False)
    assert len(losses) == 2 and all(np.isfinite(losses))
    logits, mask_logits = predict_multitask(model, ws.x)
    assert logits.shape == (12, 3) and mask_logits.shape == (12, 2, 256)
    with pytest.raises(ValueError, match="needs masks"):
        fit_multitask(model, ws.x, ws.y, None, config=MultitaskConfig(epochs=1), progress=False)


def test_unlabelled_windows_train_the_mask_only():
    # class -1 (real PPG without rhythm labels): no gradient reaches the class-only weights
    ws = load_windows("ppg", "rhythm_artifact", split="train", sampling_rate_hz=FS, window_samples=256, limit=8)
    torch.manual_seed(0)
    model = create("ppg_dualstream", window_samples=256, cls_width=4, loc_width=4, loc_dilations=(1,))
    before = {k: v.detach().clone() for k, v in model.named_parameters()}  # BN running stats move anyway
    y = np.full(len(ws.x), -1)
    losses = fit_multitask(model, ws.x, y, ws.mask, config=MultitaskConfig(epochs=1, batch_size=4, weight_decay=0.0),
                           progress=False)
    assert np.isfinite(losses).all()
    changed = {k for k, v in model.named_parameters() if not torch.equal(v.detach(), before[k])}
    assert any(k.startswith("loc") for k in changed)
    assert not any(k.startswith("cls") for k in changed), sorted(k for k in changed if k.startswith("cls"))


def test_experiment_cli_rejects_bad_input(capsys):
    assert main(["--sweep", "0,2"]) == 2
    assert capsys.readouterr().err.startswith("error:")
    assert main(["--bidmc-train", "10"]) == 2  # needs --data-dir
    assert capsys.readouterr().err.startswith("error:")


def test_two_output_export(tmp_path):
    quantize = pytest.importorskip("quantize")
    ws = load_windows("ppg", "rhythm_artifact", split="train", sampling_rate_hz=FS, window_samples=256, limit=32)
    torch.manual_seed(0)
    model = create("ppg_dualstream", window_samples=256, cls_width=4, loc_width=4, loc_dilations=(1, 2))
    fit_multitask(model, ws.x, ws.y, ws.mask, config=MultitaskConfig(epochs=1, batch_size=16), progress=False)
    # Untrained-scale model: agreement gates are about near-ties here, the structure is what is tested.
    from quantize.export import _mask_labels, _preprocessing

    spec = {"source": "ppg", "task": "rhythm_artifact", "sampling_rate_hz": FS}
    assert _mask_labels(spec) == ["clean", "artifact"]  # what `python -m quantize.export` writes
    manifest = quantize.export_model(model.eval(), tmp_path / "ppg", calibration=ws.x, holdout=ws.x,
                                     holdout_labels=ws.y, thresholds=quantize.Thresholds(
                                         min_agreement_pct=0, max_error_ratio=1, max_tflm_diff=4),
                                     data_info={"preprocessing": _preprocessing(spec), "mask_labels": _mask_labels(spec)})
    data = manifest.data
    shapes = sorted(o["shape"] for o in data["outputs"])
    assert shapes == [[1, 2, 256], [1, 3]]
    assert all(o["dtype"] == "int8" for o in data["outputs"])
    assert data["checks"]["full_int8"] and data["tflm"]["arena_bytes"] > 0 and data["tflm"]["windows"] > 0
    assert {o["name"] for o in data["ops"]}.isdisjoint({"GELU", "RESIZE_NEAREST_NEIGHBOR", "GATHER", "GATHER_ND"})
    mask_entry = next(a for a in data["checks"]["agreement"] if a["argmax_agreement_pct"] is not None
                      and a.get("accuracy_float_pct") is None)
    assert mask_entry["argmax_agreement_pct"] > 90  # per-sample argmax of the mask output
    # the streaming runtime reads both outputs: a class per window, the mask merged into artifact runs
    from wearable.runtime import StreamRuntime, load_artifact

    seen = []
    rt = StreamRuntime(load_artifact(tmp_path / "ppg"))
    rt._segment = lambda q, scale, zero, e, key: seen.append((e, q.shape))  # the mask reaches the merge
    x = np.random.default_rng(0).normal(size=4 * 256)
    events = rt.push(x) + rt.flush()
    assert rt.mode == "classification" and rt.seg_labels == ["clean", "artifact"]
    assert sum(e["type"] == "class" for e in events) == rt.windows == 4
    assert seen == [(256 * (k + 1), (2, 256)) for k in range(4)]
    # the artifact benchmark runs on it and counts consistently (an untrained model: figures mean nothing)
    import json

    from benchmarks.stream_artifacts import main as stream_artifacts

    assert stream_artifacts([str(tmp_path / "ppg"), "--records", "2", "--seconds", "30",
                             "--out", str(tmp_path / "a.json")]) == 0
    report = json.loads((tmp_path / "a.json").read_text())
    assert [r["seed"] for r in report["rows"]] == [0, 1] and 0.0 <= report["gross"]["iou"] <= 1.0
    for row in report["rows"]:
        assert row["segments"] >= 3 and row["tp"] + row["fn"] > 0  # five segments each; some after window 1
        assert row["tp"] + row["fn"] + row["fp"] <= row["samples"] == 30 * 50 - 256
        assert 0 <= row["segments_hit"] <= row["segments"] and 0 <= row["events_false"] <= row["events"]
