"""StreamRuntime logic with fake interpreters (numpy only): chunk invariance, events, bad input."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from wearable.runtime import (
    INCONCLUSIVE,
    ArtifactError,
    RateMismatchError,
    StreamRuntime,
    load_artifact,
)
from wearable.runtime._fake import FakeInterpreter, fake_artifact

FS = 100.0


def _ecg(seconds: float, *, rate: float = FS, bpm: float = 75.0, amp: float = 1.5, seed: int = 0) -> np.ndarray:
    """Narrow Gaussian 'R waves' every 60/bpm s plus small noise: enough for the fakes."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.02 * rng.normal(size=t.size)
    for r in np.arange(0.5, seconds, 60.0 / bpm):
        x += amp * np.exp(-0.5 * ((t - r) / 0.012) ** 2)
    return x


def _runtime(mode="classification", **kw):
    art = fake_artifact(mode)
    return StreamRuntime(art, interpreter=FakeInterpreter(art), **kw)


def _play(x, sizes, mode="classification", **kw):
    rt = _runtime(mode, **kw)
    rng = np.random.default_rng(7)
    events, i = [], 0
    while i < len(x):
        n = int(rng.integers(0, 150)) if sizes == "random" else sizes
        events += rt.push(x[i:i + n])
        i += n
    return events + rt.flush(), rt


@pytest.mark.parametrize("mode", ["classification", "segmentation", "regression", "dual"])
def test_chunk_invariance(mode):
    x = np.concatenate([_ecg(20, amp=0.2), _ecg(20, amp=2.0, seed=1), _ecg(20, amp=0.2, seed=2)])
    x[3000:3040] = np.nan
    ref, rt = _play(x, 1000, mode, rails=(-8.0, 8.0))
    assert ref and rt.windows == (len(x) - 200) // 50 + 1
    for sizes in (1, 7, 64, "random"):
        got, _ = _play(x, sizes, mode, rails=(-8.0, 8.0))
        assert got == ref, sizes


def test_chunk_invariance_with_resampling():
    x = _ecg(15, rate=360.0)
    ref, _ = _play(x, 1000, "segmentation", sampling_rate=360.0, resample=True)
    assert sum(e["type"] == "beat" for e in ref) >= 15
    for sizes in (1, 7, "random"):
        assert _play(x, sizes, "segmentation", sampling_rate=360.0, resample=True)[0] == ref


def test_classification_smoothing_threshold_and_episodes():
    x = np.concatenate([_ecg(20, amp=0.2), _ecg(20, amp=2.0, seed=1)])
    events, rt = _play(x, 500, smoothing=3, threshold=0.9)
    cls = [e for e in events if e["type"] == "class"]
    assert len(cls) == rt.windows == (len(x) - 200) // 50 + 1
    assert cls[0]["start"] == 0.0 and cls[0]["end"] == 2.0 and cls[1]["end"] == 2.5
    # the mixed smoothing buffer at the switch is below 0.9: inconclusive instead of a guess
    assert INCONCLUSIVE in [e["smoothed"] for e in cls]
    rhythm = [e for e in events if e["type"] == "rhythm"]
    assert [e["label"] for e in rhythm] == ["low", INCONCLUSIVE, "high"]
    assert rhythm[0]["start"] == 0.0 and rhythm[-1]["end"] == cls[-1]["end"]
    assert all(a["end"] == b["start"] for a, b in zip(rhythm, rhythm[1:]))  # episodes tile stream time


def test_regression_model_gives_estimates_and_hr_not_a_class():
    # a (1, 1) output is a value, not a one-class softmax (which would always say p = 1.0)
    x = np.concatenate([_ecg(10, amp=0.2), _ecg(10, amp=2.0, seed=1)])
    x[1200:1210] = np.nan
    events, rt = _play(x, 100, "regression", smoothing=2)
    assert rt.mode == "regression" and not any(e["type"] in ("class", "rhythm") for e in events)
    est = [e for e in events if e["type"] == "estimate"]
    assert len(est) == rt.windows and all(e["label"] == "hr_bpm" for e in est)
    # the fake's value grows with the window's peak: larger beats, larger estimate
    assert est[0]["value"] < est[-1]["value"]
    assert est[-1]["smoothed"] == pytest.approx((est[-1]["value"] + est[-2]["value"]) / 2, abs=1e-3)
    dirty = [e for e in est if e["start"] < 12.1 and e["end"] > 12.0]  # windows over the NaN run
    assert dirty and all(e["smoothed"] == INCONCLUSIVE for e in dirty)
    hr = [e for e in events if e["type"] == "hr"]
    assert [h["t"] for h in hr] == [e["end"] for e in est if e["smoothed"] != INCONCLUSIVE]
    assert all(h["bpm"] == pytest.approx(e["smoothed"], abs=0.01) for h, e in
               zip(hr, [e for e in est if e["smoothed"] != INCONCLUSIVE]))


def test_segmentation_beats_hr_and_latency():
    x = _ecg(30, bpm=60.0)
    rt = _runtime("segmentation")
    beats, hr = [], []
    for i in range(0, len(x), 10):
        for e in rt.push(x[i:i + 10]):
            if e["type"] == "beat":
                # final at most one window after the sample arrived
                assert (i + 10) / FS - e["t"] <= rt.latency_samples / FS + 0.1
                beats.append(e["t"])
            hr += [e["bpm"] for e in [e] if e["type"] == "hr"]
    beats += [e["t"] for e in rt.flush() if e["type"] == "beat"]
    expected = np.arange(0.5, 30, 1.0)
    assert len(beats) == len(expected)
    # causal band-pass delays the peak a little; the run centre stays within 50 ms of the R peak
    assert np.max(np.abs(np.array(beats) - expected)) < 0.05
    assert hr and all(abs(b - 60.0) < 2 for b in hr)


@pytest.mark.parametrize("mode", ["segmentation", "dual"])
def test_hop_equal_to_window_takes_the_argmax_directly(mode):
    """Without overlap the merge skips the softmax average; the events are those of the full merge."""
    x = _ecg(30)
    x[1200:1460] += 8.0 * np.sin(2 * np.pi * 10.0 * np.arange(260) / FS)
    runs = []
    for direct in (True, False):
        art = fake_artifact(mode, hop=200)
        rt = StreamRuntime(art, interpreter=FakeInterpreter(art))
        assert rt._no_overlap
        rt._no_overlap = direct
        runs.append(rt.push(x) + rt.flush())
    assert runs[0] == runs[1] and any(e["type"] in ("beat", "artifact") for e in runs[0])


def test_qrs_runs_narrower_than_the_minimum_width_are_not_beats():
    from wearable.runtime.streaming import BEAT_MIN_WIDTH_S

    art = fake_artifact("segmentation")  # window 200, hop 50, 100 Hz: BEAT_MIN_WIDTH_S is 3 samples
    narrow, wide = (500, 502), (1000, 1006)  # absolute model samples labelled qrs

    class RunsAt(FakeInterpreter):  # labels by absolute position: window k starts at k * hop
        def invoke(self):
            start = self.calls * 50
            self.calls += 1
            y = np.full(self.out_shape, -50, np.int8)
            y[0, 0] = 50
            for a, b in (narrow, wide):
                lo, hi = max(a - start, 0), min(b - start, 200)
                if lo < hi:
                    y[0, 0, lo:hi], y[0, 1, lo:hi] = -50, 50
            self._y = y

    assert round(BEAT_MIN_WIDTH_S * 100) == 3
    rt = StreamRuntime(art, interpreter=RunsAt(art))
    events = rt.push(np.zeros(2000)) + rt.flush()
    beats = [e["t"] for e in events if e["type"] == "beat"]
    assert beats == [pytest.approx((wide[0] + wide[1] - 1) / 2 / 100)]


def test_mask_output_gives_artifact_segments_and_leaves_the_class_alone():
    """A classification model with a second, per-sample mask output (the PPG dual-stream model)."""
    x = _ecg(30)
    x[1200:1460] += 8.0 * np.sin(2 * np.pi * 10.0 * np.arange(260) / FS)  # 2.6 s of clipped motion
    rt = _runtime("dual")
    assert rt.mode == "classification" and rt.seg_labels == ["clean", "artifact"]
    events = rt.push(x) + rt.flush()
    arts = [e for e in events if e["type"] == "artifact"]
    # the fake widens the clipped run by 10 samples (0.1 s) each side
    assert len(arts) == 1 and arts[0]["kind"] == "artifact"
    assert arts[0]["start"] == pytest.approx(11.9, abs=0.05) and arts[0]["end"] == pytest.approx(14.7, abs=0.05)
    classes = [e for e in events if e["type"] == "class"]
    assert len(classes) == rt.windows and all(e["smoothed"] != INCONCLUSIVE for e in classes)
    plain, _ = _play(x, len(x))  # the classification fake without the mask: the same class events
    assert [e for e in plain if e["type"] == "class"] == classes
    art = fake_artifact("dual")
    del art.manifest["data"]["mask_labels"]  # an unnamed second output is ignored
    assert StreamRuntime(art, interpreter=FakeInterpreter(art)).seg_labels == []
    art.manifest["data"]["mask_labels"] = ["clean", "motion", "pop"]  # three names for a 2-channel mask
    with pytest.raises(ValueError, match="mask output shape"):
        StreamRuntime(art, interpreter=FakeInterpreter(art))


def test_model_artifact_runs_shorter_than_the_minimum_are_not_reported():
    from wearable.runtime.streaming import ARTIFACT_MIN_S

    art = fake_artifact("dual")  # window 200, hop 50, 100 Hz: ARTIFACT_MIN_S is 10 samples
    short, long = (500, 509), (1000, 1010)  # absolute model samples the mask calls artifact

    class MaskAt(FakeInterpreter):
        def invoke(self):
            super().invoke()
            start = (self.calls - 1) * 50
            m = np.zeros(200, dtype=bool)
            for a, b in (short, long):
                m[max(a - start, 0):max(b - start, 0)] = True
            self._mask = np.stack([np.where(m, -50, 50), np.where(m, 50, -50)])[None].astype(np.int8)

    assert round(ARTIFACT_MIN_S * 100) == 10
    events = StreamRuntime(art, interpreter=MaskAt(art)).push(np.zeros(2000))
    assert [(e["start"], e["end"]) for e in events if e["type"] == "artifact"] == [(10.0, 10.1)]


def test_nonfinite_samples_become_artifact_and_inconclusive():
    x = _ecg(30)
    x[1000:1100] = np.nan
    x[2000] = np.inf
    events, _ = _play(x, 333)
    arts = [e for e in events if e["type"] == "artifact"]
    assert arts == [{"type": "artifact", "kind": "nonfinite", "start": 10.0, "end": 11.0},
                    {"type": "artifact", "kind": "nonfinite", "start": 20.0, "end": 20.01}]
    for e in (e for e in events if e["type"] == "class"):
        overlaps = e["start"] < 11.0 and e["end"] > 10.0 or e["start"] < 20.01 and e["end"] > 20.0
        assert (e["smoothed"] == INCONCLUSIVE) or not overlaps
        assert np.isfinite(e["p"])
    # all-NaN stream: no crash, everything inconclusive
    events, _ = _play(np.full(1000, np.nan), 100)
    assert {e["smoothed"] for e in events if e["type"] == "class"} == {INCONCLUSIVE}


def test_gap_keeps_timestamps_and_is_reported():
    x = _ecg(30, bpm=60.0)
    rt = _runtime("segmentation")
    events = rt.push(x[:1000]) + rt.gap(250) + rt.push(x[1000:]) + rt.flush()
    assert {"type": "artifact", "kind": "gap", "start": 10.0, "end": 12.5} in events
    beats = np.array([e["t"] for e in events if e["type"] == "beat"])
    after = beats[beats > 14.0]
    # samples after the gap keep their place: shifted by exactly the gap's 2.5 s
    # (beats were at 0.5 + k s; after the gap they must sit at 0.5 + 2.5 + k s)
    assert len(after) >= 10 and np.abs((after - 3.0) - np.round(after - 3.0)).max() < 0.05
    assert rt.n_in == len(x) + 250
    with pytest.raises(ValueError):
        rt.gap(-1)


def test_rails_saturation_zero_and_huge_chunks():
    x = _ecg(60)
    x[3000:3050] = 10.0
    rt = _runtime(rails=(-10.0, 10.0))
    assert rt.push(np.zeros(0)) == [] and rt.push([]) == []
    events = rt.push(x) + rt.flush()
    assert {"type": "artifact", "kind": "saturation", "start": 30.0, "end": 30.5} in events
    huge = np.tile(x[:6000], 40)  # 240,000 samples at once
    a, _ = _play(huge, len(huge))
    b, _ = _play(huge, 4096)
    assert a == b and len(a) > 4000


def test_bad_chunks_and_configuration():
    rt = _runtime()
    for bad in (np.zeros((10, 2)), np.zeros((2, 3, 4)), np.array(["a", "b"])):
        with pytest.raises(ValueError):
            rt.push(bad)
    rt.flush()
    with pytest.raises(RuntimeError, match="flushed"):
        rt.push(np.zeros(3))
    with pytest.raises(RateMismatchError, match="enable resampling"):
        _runtime(sampling_rate=360.0)
    with pytest.raises(ValueError, match="threshold"):
        _runtime(threshold=1.5)


def test_missing_and_tampered_artifacts(tmp_path):
    with pytest.raises(ArtifactError, match="not found"):
        load_artifact(tmp_path / "nope")
    with pytest.raises(ArtifactError, match="no manifest.json"):
        load_artifact(tmp_path)
    manifest = dict(fake_artifact().manifest)
    model = b"TFL3 pretend model bytes"
    manifest["files"] = {"model_int8.tflite": {"bytes": len(model), "sha256": hashlib.sha256(model).hexdigest()}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="missing"):
        load_artifact(tmp_path)
    (tmp_path / "model_int8.tflite").write_bytes(model)
    assert load_artifact(tmp_path).model == model
    (tmp_path / "model_int8.tflite").write_bytes(model[:-1] + b"!")
    with pytest.raises(ArtifactError, match="does not match the manifest"):
        load_artifact(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable manifest"):
        load_artifact(tmp_path)


def _write_artifact(root, edit=lambda m: None, model=b"TFL3 pretend model bytes"):
    manifest = json.loads(json.dumps(fake_artifact().manifest))
    manifest["model"] = {"name": "fake"}
    manifest["files"] = {"model_int8.tflite": {"bytes": len(model), "sha256": hashlib.sha256(model).hexdigest()}}
    edit(manifest)
    root.mkdir(exist_ok=True)
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "model_int8.tflite").write_bytes(model)
    return root


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(sampling_rate_hz=float("nan")), "NaN is not a JSON number"),
    (lambda m: m.update(sampling_rate_hz=1e9), "sampling_rate_hz must be a number"),
    (lambda m: m.update(sampling_rate_hz="100"), "sampling_rate_hz must be a number"),
    (lambda m: m.update(window_samples=0), "window_samples must be an integer"),
    (lambda m: m.update(window_samples=2 ** 40), "window_samples must be an integer"),
    (lambda m: m.update(hop_samples=1.5), "hop_samples must be an integer"),
    (lambda m: m.update(labels=["low"]), "1 labels for an output of 2 classes"),
    (lambda m: m.update(labels=["low", "high\nfake event"]), "labels[1] must be"),
    (lambda m: m["model"].update(name="../../x"), "model.name must be"),
    (lambda m: m["files"].update({"/etc/passwd": {"sha256": "0" * 64}}), "files entry must be"),
    (lambda m: m["files"].update({"../secret": {"sha256": "0" * 64}}), "files entry must be"),
    (lambda m: m["files"]["model_int8.tflite"].update(bytes=-1), "bytes must be an integer"),
    (lambda m: m["files"]["model_int8.tflite"].update(sha256="not hex"), "no sha256"),
])
def test_unsafe_manifest_values_are_refused(tmp_path, edit, message):
    art = _write_artifact(tmp_path / "art", edit)
    with pytest.raises(ArtifactError, match=re.escape(message)):
        load_artifact(art, all_files=True)


def test_files_are_read_only_inside_the_artifact_and_up_to_a_size(tmp_path):
    from wearable.runtime.artifact import MAX_FILE_BYTES

    secret = tmp_path / "secret"
    secret.write_bytes(b"not yours")
    entry = {"bytes": 9, "sha256": hashlib.sha256(b"not yours").hexdigest()}
    art = _write_artifact(tmp_path / "art", lambda m: m["files"].update({"golden.npz": entry}))
    (art / "golden.npz").symlink_to(secret)
    with pytest.raises(ArtifactError, match="outside the artifact directory"):
        load_artifact(art, all_files=True)
    assert load_artifact(art).golden is None  # nor handed to a benchmark as the golden file
    (art / "golden.npz").unlink()
    (art / "golden.npz").write_bytes(b"not yours")
    assert load_artifact(art, all_files=True).golden == art / "golden.npz"
    (art / "golden.npz").write_bytes(b"not yours!")
    with pytest.raises(ArtifactError, match=re.escape("10 bytes does not match the manifest (9 bytes)")):
        load_artifact(art, all_files=True)
    with open(art / "golden.npz", "r+b") as f:  # sparse: refused from its size, never read
        f.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(ArtifactError, match=f"more than the {MAX_FILE_BYTES}"):
        load_artifact(art, all_files=True)


def _hazards(rate: float = FS) -> np.ndarray:
    """ECG with one 1e308 sample, a 0.1 s run at -25 mV and 20 s of flat line (electrode off)."""
    x = _ecg(80, rate=rate)
    x[int(30 * rate)] = 1e308
    x[int(40 * rate):int(40.1 * rate)] = -25.0
    x[int(50 * rate):int(70 * rate)] = 0.3
    return x


def _inputs(x, **kw):
    seen = []
    rt = _runtime(on_samples=lambda n0, y: seen.append(np.array(y)), **kw)
    events = rt.push(x) + rt.flush()
    return events, np.concatenate(seen)


def test_out_of_range_samples_are_held_like_nonfinite_ones():
    x = _hazards()
    events, y = _inputs(x)
    assert {"type": "artifact", "kind": "out_of_range", "start": 30.0, "end": 30.01} in events
    assert {"type": "artifact", "kind": "out_of_range", "start": 40.0, "end": 40.1} in events
    nan = x.copy()
    nan[np.abs(nan) > 20] = np.nan
    nan_events, nan_y = _inputs(nan)
    assert np.array_equal(y, nan_y)  # the model input is that of a NaN there: held, not a ringing band-pass
    assert [e for e in events if e.get("kind") not in ("out_of_range", "nonfinite")] == \
        [e for e in nan_events if e.get("kind") not in ("out_of_range", "nonfinite")]
    for e in events:
        if e["type"] == "class" and e["start"] < 30.0 < e["end"] or e["type"] == "class" and e["start"] < 40.1 \
                and e["end"] > 40.0:
            assert e["smoothed"] == INCONCLUSIVE, e
    # the rails replace the default bounds: 25 mV is a reading for a +-30 mV front end
    wide, _ = _inputs(x, rails=(-30.0, 30.0))
    assert {"type": "artifact", "kind": "out_of_range", "start": 40.0, "end": 40.1} not in wide
    assert {"type": "artifact", "kind": "saturation", "start": 40.0, "end": 40.1} not in wide
    x[1000:1010] = 10.0  # at a rail: saturation; beyond one: out of range
    x[1010:1020] = 12.0
    narrow, _ = _inputs(x, rails=(-10.0, 10.0))
    assert {"type": "artifact", "kind": "saturation", "start": 10.0, "end": 10.1} in narrow
    assert {"type": "artifact", "kind": "out_of_range", "start": 10.1, "end": 10.2} in narrow


def test_flat_line_windows_are_inconclusive():
    events, _ = _inputs(_hazards())
    flat = [e for e in events if e.get("kind") == "flat"]
    assert flat == [{"type": "artifact", "kind": "flat", "start": 50.0, "end": 70.0}]  # windows inside it, merged
    for e in events:
        if e["type"] == "class" and e["start"] >= 50.0 and e["end"] <= 70.0:
            assert e["smoothed"] == INCONCLUSIVE
    record = [e for e in events if e["type"] == "record"][0]
    vote = [e for e in events if e["type"] == "class" and e["smoothed"] != INCONCLUSIVE]
    assert record["windows"] == len(vote)  # flat windows do not vote (nor those with out-of-range samples)
    rt = _runtime()
    dead = rt.push(np.full(3000, 0.25)) + rt.flush()  # electrode off for the whole stream
    assert [e for e in dead if e["type"] == "artifact"] == [{"type": "artifact", "kind": "flat", "start": 0.0,
                                                             "end": 30.0}]
    assert all(e["smoothed"] == INCONCLUSIVE for e in dead if e["type"] == "class")
    assert [e for e in dead if e["type"] == "record"][0]["label"] == INCONCLUSIVE


@pytest.mark.parametrize("rate", [FS, 250.0])
def test_range_and_flat_checks_are_chunk_invariant(rate):
    x = _hazards(rate)
    x[int(10 * rate):int(10.5 * rate)] = np.nan
    kw = {"sampling_rate": rate, "resample": rate != FS}
    ref, _ = _play(x, 1000, **kw)
    kinds = {e["kind"] for e in ref if e["type"] == "artifact"}
    assert {"out_of_range", "flat", "nonfinite"} <= kinds
    for sizes in (1, 7, 64, "random"):
        got, _ = _play(x, sizes, **kw)
        assert got == ref, sizes


def test_a_huge_push_or_gap_keeps_memory_bounded():
    import tracemalloc

    art = fake_artifact("segmentation", window=200, hop=200)
    rt = StreamRuntime(art, interpreter=FakeInterpreter(art), sampling_rate=250.0, resample=True)
    x = 0.1 * np.sin(np.arange(2_000_000) / 40.0).astype(np.float32)  # 2.2 h at 250 Hz in one chunk
    tracemalloc.start()
    try:
        events = rt.push(x)
        pushed = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        events += rt.gap(2_000_000) + rt.flush()
        gapped = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # a float64 copy of the chunk alone is 16 MB (the gap's held samples too); the resampler's
    # products of all 800,000 outputs at once were 1.4 GB
    assert pushed < 12e6 and gapped < 12e6, (pushed, gapped)
    assert {"type": "artifact", "kind": "gap", "start": 8000.0, "end": 16000.0} in events
    assert rt.n_in == 4_000_000 and rt.windows == 1_600_000 // 200
