"""Challenge 2017 reader, split, windows and augmentation: bad files on tiny records written here,
the real recordings where ../shared/data holds them."""

from __future__ import annotations

import numpy as np
import pytest

from wearable.data import (CHALLENGE2017_LABELS, DataError, challenge2017_read, challenge2017_reference,
                           challenge2017_signals, challenge2017_split, challenge_score, covering_starts,
                           ecg_windows_augment, load_windows)

wfdb = pytest.importorskip("wfdb")


def _write(folder, name: str, seconds: float = 12.0, fs: int = 300) -> None:
    t = np.arange(int(seconds * fs)) / fs
    x = 0.05 * np.sin(2 * np.pi * 1.2 * t)
    for r in np.arange(0.3, seconds, 0.8):
        x += np.exp(-0.5 * ((t - r) / 0.01) ** 2)
    wfdb.wrsamp(name, fs=fs, units=["mV"], sig_name=["ECG"], p_signal=x[:, None], fmt=["16"], write_dir=str(folder))


@pytest.fixture
def tiny(tmp_path):
    folder = tmp_path / "challenge2017"
    folder.mkdir()
    codes = "NAO~" * 5
    for i, code in enumerate(codes):
        _write(folder, f"A{i:05d}", seconds=9.5 + i)
    (folder / "REFERENCE.csv").write_text("".join(f"A{i:05d},{c}\n" for i, c in enumerate(codes)))
    return tmp_path


def test_reference_read_and_split_are_stratified_and_disjoint(tiny):
    ref = challenge2017_reference(tiny)
    assert len(ref) == 20 and set(ref.values()) == set(CHALLENGE2017_LABELS)
    split = challenge2017_split(ref, seed=3, folds=5, fold=1)
    sides = [set(split[s]) for s in ("train", "val", "test")]
    assert sum(map(len, sides)) == 20 and not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    for s in ("val", "test"):  # every label once in each small fold
        assert sorted(ref[n] for n in split[s]) == sorted(CHALLENGE2017_LABELS)
    assert challenge2017_split(ref, seed=3, folds=5, fold=1) == split
    assert challenge2017_split(ref, seed=4, folds=5, fold=1) != split
    with pytest.raises(DataError, match="fold"):
        challenge2017_split(ref, folds=5, fold=5)


def test_windows_carry_the_record_label_and_cover_the_tail(tiny):
    ws = load_windows("challenge2017", "rhythm", split="train", sampling_rate_hz=100.0, window_samples=900,
                      hop_samples=450, data_dir=tiny)
    assert ws.x.shape[1:] == (1, 900) and ws.labels == CHALLENGE2017_LABELS and np.abs(ws.x).max() <= 5.0
    ref = challenge2017_reference(tiny)
    for (rec, start), y in zip(ws.origin, ws.y):
        assert CHALLENGE2017_LABELS[y] == ref[ws.records[rec]]
    assert covering_starts(1000, window_samples=900, hop_samples=450).tolist() == [0, 100]
    assert covering_starts(899, window_samples=900, hop_samples=450).size == 0
    sig = challenge2017_signals(tiny, "test", sampling_rate_hz=100.0, seed=0)
    assert len(sig.records) == len(sig.signals) == len(sig.y) and sig.signals[0].dtype == np.float32


@pytest.mark.parametrize("row, message", [("A00000,X", "unknown label 'X'"), ("A00000", "expected 'record,label'"),
                                          ("A00001,N\nA00001,A", "listed twice")])
def test_bad_reference_rows_are_one_line_errors(tiny, row, message):
    (tiny / "challenge2017" / "REFERENCE.csv").write_text(row + "\n")
    with pytest.raises(DataError, match=message) as info:
        challenge2017_reference(tiny)
    assert "\n" not in str(info.value)


def test_missing_files_and_other_rates_are_refused(tiny):
    folder = tiny / "challenge2017"
    (folder / "A00001.dat").unlink()
    with pytest.raises(DataError, match="lacks its signal file"):
        challenge2017_read(tiny, "A00001")
    (folder / "A00002.hea").unlink()
    with pytest.raises(DataError, match="has no header"):
        challenge2017_read(tiny, "A00002")
    _write(folder, "A00003", fs=250)
    with pytest.raises(DataError, match="250 Hz, expected 300 Hz"):
        challenge2017_read(tiny, "A00003")
    assert challenge2017_read(tiny, "A00003", expect_rate=None).sampling_rate == 250.0


def test_challenge_score_is_the_mean_f1_of_normal_af_other():
    truth = ["normal", "af", "other", "noisy", "af"]
    pred = ["normal", "af", "normal", "inconclusive", "noisy"]  # the runtime says inconclusive for noisy
    s = challenge_score(truth, pred)
    assert s["f1_normal"] == pytest.approx(2 / 3) and s["f1_af"] == pytest.approx(2 / 3) and s["f1_other"] == 0.0
    assert s["score"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3) and s["f1_noisy"] == pytest.approx(2 / 3)


def test_augmentation_is_seeded_bounded_and_changes_the_windows():
    x = np.random.default_rng(0).normal(size=(16, 900)).astype(np.float32)
    a = ecg_windows_augment(x, np.random.default_rng(1), sampling_rate=100.0)
    b = ecg_windows_augment(x, np.random.default_rng(1), sampling_rate=100.0)
    assert a.dtype == np.float32 and a.shape == x.shape and np.array_equal(a, b)
    assert np.abs(a).max() <= 5.0 and not np.allclose(a, x)
    signs = np.sign(np.sum(a * x, axis=1))
    assert (signs < 0).any() and (signs > 0).any()  # some windows inverted, some not


@pytest.mark.realdata
def test_real_recordings_split_as_documented(data_dir):
    if not (data_dir / "challenge2017").is_dir():
        pytest.skip("no challenge2017 in the data dir")
    ref = challenge2017_reference(data_dir)
    assert len(ref) == 6879
    split = challenge2017_split(ref)
    assert [len(split[s]) for s in ("train", "val", "test")] == [5503, 688, 688]
    for s in ("val", "test"):
        counts = {lab: sum(ref[n] == lab for n in split[s]) for lab in CHALLENGE2017_LABELS}
        assert counts == {"normal": 409, "af": 62, "other": 194, "noisy": 23}
    rec = challenge2017_read(data_dir, "A00001")
    assert rec.sampling_rate == 300.0 and rec.signal.size == 9000 and rec.signal[0] == pytest.approx(-0.127)
