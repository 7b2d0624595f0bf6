"""Streaming preprocessing equals the offline ``wearable.data`` preprocessing, whatever the chunking."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps

from wearable.data import ecg_ppg_simulate, mitdb_read
from wearable.data.preprocess import ecg_clean, ecg_scale, filter_sos, resample_ratio, signal_filter, signal_resample
from wearable.runtime import Preprocessor, RateMismatchError, Resampler, SosFilter
from wearable.runtime.dsp import sosfilt_zi


def _chunks(x, seed=0, high=400):
    cuts = np.sort(np.random.default_rng(seed).integers(0, len(x), len(x) // max(high // 2, 1)))
    return np.split(x, cuts)


def test_sosfilt_zi_matches_scipy():
    for kind in ("ecg", "ecg_wide", "ppg"):
        sos = filter_sos(kind, sampling_rate=100.0)
        np.testing.assert_allclose(sosfilt_zi(sos), sps.sosfilt_zi(sos), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", ["scipy", "numpy"])
def test_filter_equals_offline_causal_filter(backend):
    x = ecg_ppg_simulate(30, sampling_rate=100.0, rhythm="af", seed=3).ecg + 0.7  # offset: steady-state start
    ref = signal_filter(x, sampling_rate=100.0, kind="ecg")
    sos = filter_sos("ecg", sampling_rate=100.0)
    whole = SosFilter(sos, backend=backend)(x)
    f = SosFilter(sos, backend=backend)
    chunked = np.concatenate([f(c) for c in _chunks(x)])
    np.testing.assert_allclose(whole, ref, rtol=0, atol=1e-12)
    assert np.array_equal(whole, chunked)  # bit-identical, not just close
    assert whole[0] == pytest.approx(0.0, abs=1e-12)  # steady state of the first sample: no step


def test_filter_fast_path_equals_public_sosfilt():
    # The scipy backend calls sosfilt's C kernel directly (its checks cost more than the filtering
    # of a window): it must give public sosfilt's output and state bit for bit.
    x = ecg_ppg_simulate(30, sampling_rate=100.0, rhythm="normal", seed=5).ecg - 0.3
    sos = filter_sos("ecg", sampling_rate=100.0)
    f = SosFilter(sos, backend="scipy")
    assert f._kernel is not None  # the fast path is what runs here
    zi = sosfilt_zi(f.sos) * x[0]
    for c in _chunks(x, seed=4):
        ref, zi = sps.sosfilt(f.sos, c, zi=zi)
        assert np.array_equal(f(c), ref)
        assert np.array_equal(f._zi, zi)


@pytest.mark.parametrize("rates", [(360, 100), (250, 100), (128, 100), (100, 360)])
def test_resampler_equals_resample_poly(rates):
    x = np.random.default_rng(1).normal(size=4001)
    ref = sps.resample_poly(x, *resample_ratio(*rates))
    r = Resampler(*rates)
    got = np.concatenate([r(c) for c in _chunks(x, high=50)] + [r.flush()])
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    r1 = Resampler(*rates)
    assert np.array_equal(np.concatenate([r1(x), r1.flush()]), got)
    assert r.flush().size == 0  # nothing left after the tail


@pytest.mark.realdata
def test_preprocessor_reproduces_mitdb_pipeline(data_dir):
    rec = mitdb_read(data_dir, "100")
    x = rec.signal[: 360 * 60]
    ref = ecg_scale(ecg_clean(signal_resample(x, sampling_rate=360, target_rate=100.0), sampling_rate=100.0))
    channels = [{"kind": "ecg", "sos": filter_sos("ecg", sampling_rate=100.0).round(12).tolist()}]
    for backend in ("scipy", "numpy"):
        pre = Preprocessor(channels, model_rate=100.0, sampling_rate=360.0, resample=True, filter_backend=backend)
        got = np.concatenate([pre(c) for c in _chunks(x, seed=2)] + [pre.flush()])[:, 0]
        assert got.shape == ref.shape
        # manifest coefficients are rounded to 12 digits: agreement to ~1e-9 mV
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-8)


def test_rate_mismatch_refused_without_resampling():
    channels = [{"kind": "ecg", "sos": filter_sos("ecg", sampling_rate=100.0).tolist()}]
    with pytest.raises(RateMismatchError, match="360 Hz differs from the model's 100 Hz"):
        Preprocessor(channels, model_rate=100.0, sampling_rate=360.0)
    with pytest.raises(ValueError, match="positive number"):
        Preprocessor(channels, model_rate=100.0, sampling_rate=-1)
    with pytest.raises(ValueError, match="sos must have shape"):
        SosFilter(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="accepted: scipy, numpy"):
        SosFilter(filter_sos("ecg", sampling_rate=100.0), backend="c")


def test_resampler_row_blocks_change_no_output(monkeypatch):
    """A long chunk is resampled in row blocks (bounded memory): the outputs are those of one block."""
    from wearable.runtime import dsp

    x = np.random.default_rng(0).normal(size=50_000)
    outs = []
    for block in (1 << 30, 1 << 10):
        monkeypatch.setattr(dsp, "_RESAMPLE_BLOCK", block)
        r = dsp.Resampler(360.0, 100.0)
        outs.append(np.concatenate([r(x), r.flush()]))
    assert np.array_equal(outs[0], outs[1]) and len(outs[0]) == 13_889
