"""load_windows contract, preprocessing constants, and argument errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps

from wearable.data import (
    AAMI_CLASSES,
    DS1,
    DS2,
    ECG_CLIP_MV,
    FILTER_BANDS_HZ,
    MITDB_VAL,
    DataError,
    WindowSet,
    filter_sos,
    labels_resample,
    list_tasks,
    load_windows,
    ppg_scale,
    samples_resample,
    signal_filter,
    signal_resample,
    task_filters,
    task_labels,
)

FS, W = 100.0, 500


def _synthetic(task, split="train", **kw):
    return load_windows("synthetic", task, split=split, sampling_rate_hz=FS, window_samples=W, **kw)


def test_list_tasks_and_labels():
    tasks = list_tasks()
    assert tasks["synthetic"] == ("rhythm", "waves", "artifact")
    assert set(tasks["mitdb"]) == {"beat", "beat_rr", "rhythm", "qrs"}
    assert set(tasks["bidmc"]) == {"paired", "hr", "hr_ppg"}
    assert task_labels("synthetic", "rhythm") == ("normal", "af", "ectopic", "brady", "tachy")
    assert task_labels("synthetic", "waves") == ("background", "p", "qrs", "t")
    assert task_labels("synthetic", "artifact")[0] == "clean"
    assert task_labels("mitdb", "beat") == AAMI_CLASSES == ("N", "S", "V", "F", "Q")
    assert task_labels("mitdb", "rhythm") == ("normal", "af", "other")
    assert task_filters("bidmc", "paired") == ("ecg", "ppg")
    for source, names in tasks.items():
        for task in names:
            assert all(f in FILTER_BANDS_HZ for f in task_filters(source, task))


def test_synthetic_rhythm_contract_and_balance():
    ws = _synthetic("rhythm", limit=25)
    assert isinstance(ws, WindowSet) and len(ws) == 25
    assert ws.x.dtype == np.float32 and ws.x.shape == (25, 1, W)
    assert ws.y.dtype == np.int64 and ws.y.shape == (25,)
    assert np.bincount(ws.y, minlength=5).tolist() == [5] * 5
    assert ws.labels == task_labels("synthetic", "rhythm") and ws.source == "synthetic" and ws.task == "rhythm"
    assert ws.sampling_rate_hz == FS and len(ws.records) == 25
    assert np.abs(ws.x).max() <= ECG_CLIP_MV and np.isfinite(ws.x).all()


def test_synthetic_windows_deterministic_and_splits_disjoint():
    a = _synthetic("rhythm", limit=10, seed=3)
    b = _synthetic("rhythm", limit=10, seed=3)
    assert a.x.tobytes() == b.x.tobytes() and a.y.tobytes() == b.y.tobytes() and a.records == b.records
    assert not np.array_equal(a.x, _synthetic("rhythm", limit=10, seed=4).x)
    splits = {s: set(_synthetic("rhythm", split=s, limit=10, seed=3).records) for s in ("train", "val", "test")}
    assert not splits["train"] & splits["val"] and not splits["train"] & splits["test"]
    assert not splits["val"] & splits["test"]


@pytest.mark.parametrize("task, n_labels", [("waves", 4), ("artifact", 5)])
def test_synthetic_segmentation_tasks(task, n_labels):
    ws = _synthetic(task, limit=10)
    assert ws.x.shape == (10, 1, W) and ws.y.shape == (10, W) and ws.y.dtype == np.int64
    assert set(np.unique(ws.y)) == set(range(n_labels))
    if task == "artifact":
        assert not ws.y[0].any()  # every fifth window is clean
        assert all((ws.y[i] == i % 5).any() for i in range(1, 5))


def test_default_limits():
    assert len(load_windows("synthetic", "rhythm", split="val", sampling_rate_hz=50.0, window_samples=64)) == 500


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(source="ppgdb"), "unknown source 'ppgdb'"),
        (dict(task="beats"), "unknown task 'beats' for source 'synthetic'"),
        (dict(split="dev"), "unknown split 'dev'"),
        (dict(sampling_rate_hz=0.0), "sampling rate must be a positive"),
        (dict(sampling_rate_hz=-100.0), "sampling rate must be a positive"),
        (dict(sampling_rate_hz=float("nan")), "sampling rate must be a positive"),
        (dict(window_samples=0), "window_samples must be an integer"),
        (dict(limit=0), "limit must be an integer"),
        (dict(hop_samples=-1), "hop_samples must be an integer"),
        (dict(seed=-1), "seed must be an integer"),
    ],
)
def test_bad_arguments_raise_one_line_value_error(kwargs, message):
    args = dict(source="synthetic", task="rhythm", split="train", sampling_rate_hz=FS, window_samples=W, limit=2)
    args.update(kwargs)
    source, task = args.pop("source"), args.pop("task")
    with pytest.raises(ValueError, match=message) as info:
        load_windows(source, task, **args)
    assert isinstance(info.value, DataError) and "\n" not in str(info.value)


@pytest.mark.parametrize("source, task", [("mitdb", "beat"), ("mitdb", "rhythm"), ("bidmc", "hr")])
def test_bad_data_dirs(source, task, tmp_path, monkeypatch):
    monkeypatch.delenv("WEARABLE_DATA_DIR", raising=False)
    args = dict(split="train", sampling_rate_hz=FS, window_samples=W)
    with pytest.raises(DataError, match="does not exist"):
        load_windows(source, task, data_dir=tmp_path / "missing", **args)
    with pytest.raises(DataError, match="no records"):
        load_windows(source, task, data_dir=tmp_path, **args)
    with pytest.raises(DataError, match="WEARABLE_DATA_DIR"):
        load_windows(source, task, **args)


def test_filters_match_the_constants():
    for fs in (100.0, 125.0, 250.0, 360.0):
        sos = filter_sos("ecg", sampling_rate=fs)
        assert sos.shape == (2, 6)
        freqs, resp = sps.sosfreqz(sos, worN=[0.05, 0.5, 10.0, 40.0], fs=fs)
        gain = np.abs(resp)
        assert gain[2] > 0.95 and gain[0] < 0.05  # passes QRS energy, blocks drift
        assert abs(gain[1] - 1 / np.sqrt(2)) < 0.02 and abs(gain[3] - 1 / np.sqrt(2)) < 0.02  # -3 dB at the edges
    # The upper edge is pulled below Nyquist at low rates instead of failing.
    _, resp = sps.sosfreqz(filter_sos("ecg", sampling_rate=62.5), worN=[0.45 * 62.5], fs=62.5)
    assert abs(abs(resp[0]) - 1 / np.sqrt(2)) < 0.02
    with pytest.raises(DataError, match="unknown filter"):
        filter_sos("emg", sampling_rate=100.0)


def test_causal_filter_replays_the_same_sections():
    x = np.random.default_rng(0).normal(size=2000)
    sos = filter_sos("ppg", sampling_rate=125.0)
    zi = sps.sosfilt_zi(sos) * x[0]  # steady state of the first sample, as the streaming runtime starts
    assert np.allclose(signal_filter(x, sampling_rate=125.0, kind="ppg"), sps.sosfilt(sos, x, zi=zi)[0])
    assert np.allclose(signal_filter(x, sampling_rate=125.0, kind="ppg", causal=False),
                       sps.sosfiltfilt(sos, x, padlen=15))


def test_resampling_helpers():
    x = np.sin(2 * np.pi * 5 * np.arange(3600) / 360.0)
    y = signal_resample(x, sampling_rate=360.0, target_rate=100.0)
    assert y.shape == (1000,)
    assert np.allclose(y[50:-50], np.sin(2 * np.pi * 5 * np.arange(1000) / 100.0)[50:-50], atol=0.02)
    mask = np.repeat(np.arange(4), 900)
    m = labels_resample(mask, sampling_rate=360.0, target_rate=100.0)
    assert m.shape == (1000,) and set(np.unique(m)) == {0, 1, 2, 3} and np.all(np.diff(m) >= 0)
    assert samples_resample(np.array([0, 360, 1800]), sampling_rate=360.0, target_rate=125.0).tolist() == [0, 125, 625]


def test_ppg_scale_is_robust_and_clipped():
    rng = np.random.default_rng(1)
    ppg = rng.normal(0, 7.0, 10000)
    ppg[:50] = 1e4  # a saturated burst must not set the scale
    z = ppg_scale(ppg)
    assert 0.9 < np.std(z[50:]) < 1.1 and np.abs(z).max() <= 5.0


# --- real data -------------------------------------------------------------------------


@pytest.mark.realdata
def test_mitdb_beat_windows(data_dir):
    if not (data_dir / "mitdb").is_dir():
        pytest.skip("mitdb not present")
    val = load_windows("mitdb", "beat", split="val", sampling_rate_hz=360.0, window_samples=256, data_dir=data_dir)
    assert val.records == MITDB_VAL and val.x.shape[1:] == (1, 256) and val.y.dtype == np.int64
    assert np.bincount(val.y, minlength=5)[:4].min() > 0  # N, S, V and F all present in val
    train = load_windows("mitdb", "beat", split="train", sampling_rate_hz=100.0, window_samples=128,
                         data_dir=data_dir)
    assert not set(train.records) & set(DS2) and not set(train.records) & set(MITDB_VAL)
    assert set(train.records) == set(DS1) - set(MITDB_VAL)
    assert 43000 < len(train) < 44400  # DS1 minus val has 44 175 beats; a few sit too near an end
    assert np.abs(train.x).max() <= ECG_CLIP_MV
    # The beat is centred: the R peak is (close to) the largest deflection of the middle.
    centre = np.abs(train.x[:2000, 0, 64 - 5 : 64 + 6]).argmax(axis=1)
    assert np.median(np.abs(centre - 5)) <= 1
    limited = load_windows("mitdb", "beat", split="test", sampling_rate_hz=100.0, window_samples=128,
                           data_dir=data_dir / "mitdb", limit=300, seed=1)
    assert len(limited) == 300 and limited.records == DS2


@pytest.mark.realdata
def test_mitdb_rhythm_windows(data_dir):
    if not (data_dir / "mitdb").is_dir():
        pytest.skip("mitdb not present")
    ws = load_windows("mitdb", "rhythm", split="test", sampling_rate_hz=100.0, window_samples=1000,
                      data_dir=data_dir, hop_samples=500)
    assert ws.labels == ("normal", "af", "other") and ws.x.shape[1:] == (1, 1000)
    assert np.all(np.bincount(ws.y, minlength=3) > 100)
    # origin: (record index, start sample) of every window; rows of one record cut from one signal
    assert ws.origin.shape == (len(ws), 2) and ws.origin.dtype == np.int64
    assert set(np.unique(ws.origin[:, 0])) == set(range(len(ws.records)))
    rec0 = ws.origin[:, 0] == 0
    first = int(ws.origin[rec0, 1].min())
    (i,) = np.flatnonzero(rec0 & (ws.origin[:, 1] == first))
    (j,) = np.flatnonzero(rec0 & (ws.origin[:, 1] == first + 500))
    np.testing.assert_array_equal(ws.x[j, 0, :500], ws.x[i, 0, 500:])  # hop 500: the overlap is the same samples
    limited = load_windows("mitdb", "rhythm", split="val", sampling_rate_hz=100.0, window_samples=1000,
                           data_dir=data_dir, limit=50, seed=3)
    full = load_windows("mitdb", "rhythm", split="val", sampling_rate_hz=100.0, window_samples=1000, data_dir=data_dir)
    keep = [int(np.flatnonzero((full.origin == o).all(axis=1))[0]) for o in limited.origin]
    np.testing.assert_array_equal(limited.x, full.x[keep])  # the subset keeps each window's own origin


@pytest.mark.realdata
@pytest.mark.parametrize("task", ("paired", "hr"))
def test_bidmc_windows(data_dir, task):
    if not (data_dir / "bidmc").is_dir():
        pytest.skip("bidmc not present")
    ws = load_windows("bidmc", task, split="val", sampling_rate_hz=125.0, window_samples=1000, data_dir=data_dir)
    assert ws.x.shape[1:] == (2, 1000) and ws.x.dtype == np.float32
    assert ws.records == tuple(f"bidmc{i}" for i in range(38, 45))
    assert np.abs(ws.x[:, 0]).max() <= ECG_CLIP_MV and np.abs(ws.x[:, 1]).max() <= 5.0
    if task == "hr":
        assert ws.y.dtype == np.float32 and np.all((ws.y > 30) & (ws.y < 200))
    else:
        assert ws.y.dtype == np.int64 and not ws.y.any()

