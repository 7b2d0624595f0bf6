"""Synthetic ECG/PPG: determinism, global RNG hygiene, and ground-truth consistency."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest

from wearable.data import (
    ARTIFACT_LABELS,
    RHYTHMS,
    WAVE_LABELS,
    DataError,
    artifacts_add,
    ecg_ppg_simulate,
)

RATES = (100.0, 125.0, 250.0, 360.0, 500.0)
_ARRAYS = ("ecg", "ppg", "beat_samples", "beat_types", "wave_mask", "artifact_mask", "pulse_samples",
           "pulse_amplitudes")
_P, _QRS = WAVE_LABELS.index("p"), WAVE_LABELS.index("qrs")


def _mean_hr(rec) -> float:
    return 60.0 / np.mean(np.diff(rec.beat_samples) / rec.sampling_rate)


@pytest.mark.parametrize("rhythm", RHYTHMS)
def test_same_seed_gives_identical_arrays(rhythm):
    a = ecg_ppg_simulate(8.0, sampling_rate=250.0, rhythm=rhythm, seed=11, artifacts=("motion",), noise_mv=0.02)
    b = ecg_ppg_simulate(8.0, sampling_rate=250.0, rhythm=rhythm, seed=11, artifacts=("motion",), noise_mv=0.02)
    for name in _ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), name


def test_different_seed_gives_different_record():
    a = ecg_ppg_simulate(8.0, sampling_rate=100.0, seed=1)
    b = ecg_ppg_simulate(8.0, sampling_rate=100.0, seed=2)
    assert not np.array_equal(a.ecg, b.ecg)
    assert not np.array_equal(a.ppg, b.ppg)


def test_global_random_state_untouched():
    random.seed(1234)
    np.random.seed(1234)
    py_state, np_state = random.getstate(), np.random.get_state()
    for rhythm in RHYTHMS:
        ecg_ppg_simulate(5.0, sampling_rate=100.0, rhythm=rhythm, seed=5)
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]


@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("rhythm", RHYTHMS)
def test_ground_truth_consistent(rhythm, fs):
    rec = ecg_ppg_simulate(10.0, sampling_rate=fs, rhythm=rhythm, seed=3)
    n = int(round(10.0 * fs))
    assert rec.ecg.shape == rec.ppg.shape == rec.wave_mask.shape == rec.artifact_mask.shape == (n,)
    assert rec.beat_samples.size >= 5
    assert np.all(np.diff(rec.beat_samples) > 0)
    # Every R peak lies inside a QRS, and at the QRS's largest deflection (within 10 ms).
    assert np.all(rec.wave_mask[rec.beat_samples] == _QRS)
    half = max(1, int(0.04 * fs))
    tol = max(1, int(round(0.01 * fs)))
    for b in rec.beat_samples[(rec.beat_samples > half) & (rec.beat_samples < n - half)]:
        seg = np.abs(rec.ecg[b - half : b + half + 1])
        assert abs(int(np.argmax(seg)) - half) <= tol
    # A PPG pulse follows each beat after a positive delay and peaks where it says.
    has_pulse = rec.pulse_samples >= 0
    delay = (rec.pulse_samples[has_pulse] - rec.beat_samples[has_pulse]) / fs
    assert np.all(delay > 0.1) and np.all(delay < 0.6)
    h = int(0.06 * fs)
    inner = has_pulse & (rec.pulse_samples > h) & (rec.pulse_samples < n - h)
    for p, amp in zip(rec.pulse_samples[inner], rec.pulse_amplitudes[inner]):
        # Noise and the previous pulse's tail flatten the top, so allow a small margin.
        assert rec.ppg[p] >= rec.ppg[p - h : p + h + 1].max() - 0.05
        if amp >= 0.5:  # a weak pulse may ride on the previous pulse's downslope
            assert rec.ppg[p] - rec.ppg[p - h] > 0.2 * amp
    # Only AF may lack P waves; sinus beats have a P within 300 ms before the R peak.
    if rhythm == "af":
        assert not np.any(rec.wave_mask == _P)
    else:
        look = int(0.3 * fs)
        for b, kind in zip(rec.beat_samples, rec.beat_types):
            if b > look and kind == "N":
                assert np.any(rec.wave_mask[b - look : b] == _P)
    assert set(np.unique(rec.wave_mask)) <= set(range(len(WAVE_LABELS)))
    assert not rec.artifact_mask.any()


@pytest.mark.parametrize("seed", range(8))
def test_rhythm_classes_have_their_defining_features(seed):
    fs = 250.0
    recs = {r: ecg_ppg_simulate(10.0, sampling_rate=fs, rhythm=r, seed=seed) for r in RHYTHMS}
    assert _mean_hr(recs["brady"]) < 60
    assert _mean_hr(recs["tachy"]) > 100
    assert 57 < _mean_hr(recs["normal"]) < 100
    for r in ("normal", "brady", "tachy"):
        assert np.all(recs[r].beat_types == "N")
        rr = np.diff(recs[r].beat_samples) / fs
        assert rr.std() / rr.mean() < 0.06, r
    rr_af = np.diff(recs["af"].beat_samples) / fs
    assert rr_af.std() / rr_af.mean() > 0.07
    assert np.sqrt(np.mean(np.diff(rr_af) ** 2)) / rr_af.mean() > 0.1  # irregular beat to beat, not a slow drift
    ect = recs["ectopic"]
    assert np.any(ect.beat_types != "N")


def test_ectopic_beats_premature_with_weak_pulse_and_pauses():
    fs = 500.0
    pvc_seen = pac_seen = 0
    for seed in range(30):
        rec = ecg_ppg_simulate(20.0, sampling_rate=fs, rhythm="ectopic", seed=seed)
        rr = np.diff(rec.beat_samples) / fs
        normal_rr = np.median(rr)
        normal_amp = np.median(rec.pulse_amplitudes[rec.beat_types == "N"])
        for i in np.flatnonzero(rec.beat_types != "N"):
            if i == 0 or i + 1 >= rec.beat_samples.size:
                continue
            assert rr[i - 1] < 0.85 * normal_rr  # premature
            assert rec.pulse_amplitudes[i] < 0.8 * normal_amp  # weak or missing pulse
            if rec.beat_types[i] == "V":
                pvc_seen += 1
                # Full compensatory pause: coupling + pause spans two sinus cycles.
                assert abs(rr[i - 1] + rr[i] - 2 * normal_rr) < 0.2 * normal_rr
                # Wide QRS, no P wave in front of it.
                r = rec.beat_samples[i]
                assert np.sum(rec.wave_mask[r - int(0.1 * fs) : r + int(0.15 * fs)] == _QRS) / fs >= 0.11
                before = rec.wave_mask[rec.beat_samples[i] - int(0.25 * fs) : rec.beat_samples[i]]
                assert not np.any(before == _P)
            else:
                pac_seen += 1
    assert pvc_seen > 5 and pac_seen > 5


def test_missing_pulse_after_early_pvc_is_marked():
    missing = 0
    for seed in range(30):
        rec = ecg_ppg_simulate(20.0, sampling_rate=100.0, rhythm="ectopic", seed=seed)
        gone = rec.pulse_samples < 0
        assert np.all(rec.pulse_amplitudes[gone & (rec.beat_types == "V")] == 0)
        missing += int(np.sum(gone & (rec.beat_types == "V")))
    assert missing > 0


def test_simulate_is_fast():
    ecg_ppg_simulate(10.0, sampling_rate=100.0, seed=0)  # imports and first-call setup
    best = min(_timed(lambda s=s: ecg_ppg_simulate(10.0, sampling_rate=100.0, seed=s)) for s in range(5))
    assert best < 0.05


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def test_simulate_rejects_bad_arguments():
    with pytest.raises(DataError, match="sampling rate"):
        ecg_ppg_simulate(5.0, sampling_rate=0.0)
    with pytest.raises(ValueError, match="rhythm"):
        ecg_ppg_simulate(5.0, sampling_rate=100.0, rhythm="vfib")
    with pytest.raises(ValueError, match="duration"):
        ecg_ppg_simulate(-1.0, sampling_rate=100.0)


@pytest.mark.parametrize("fs", (100.0, 360.0))
def test_artifacts_add_masks_exactly_what_changed(fs):
    clean = ecg_ppg_simulate(10.0, sampling_rate=fs, seed=4).ecg
    noisy, mask = artifacts_add(clean, sampling_rate=fs, kinds=("baseline_wander", "motion", "muscle",
                                                                 "electrode_pop"), seed=9)
    assert mask.dtype == np.int8 and mask.shape == clean.shape
    assert set(np.unique(mask)) == set(range(len(ARTIFACT_LABELS)))
    assert np.array_equal(noisy[mask == 0], clean[mask == 0])
    for kind in range(1, len(ARTIFACT_LABELS)):
        assert np.abs(noisy - clean)[mask == kind].max() > 0.01
    again, mask2 = artifacts_add(clean, sampling_rate=fs, kinds=("baseline_wander", "motion", "muscle",
                                                                  "electrode_pop"), seed=9)
    assert again.tobytes() == noisy.tobytes() and mask2.tobytes() == mask.tobytes()
    with pytest.raises(DataError, match="unknown artifact"):
        artifacts_add(clean, sampling_rate=fs, kinds=("sneeze",))
