"""WFDB readers: MIT-BIH (AAMI classes, rhythm episodes, MLII by name), BIDMC, nstdb noise at a set SNR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb
from scipy.stats import trim_mean

from wearable.data import (
    AAMI_CLASSES,
    DS1,
    DS2,
    MITDB_PACED,
    MITDB_VAL,
    NSTDB_MASK_IDS,
    DataError,
    bidmc_read,
    ecg_ppg_simulate,
    ecg_snr,
    mitdb_read,
    nstdb_noise_add,
    rhythm_label,
)

FS = 360


@pytest.fixture()
def tiny_mitdb(tmp_path: Path) -> Path:
    """A 20 s two-lead record with MLII stored second (like 114) and hand-made annotations."""
    n = 20 * FS
    t = np.arange(n) / FS
    v5 = 0.1 * np.sin(2 * np.pi * t)
    mlii = 0.5 * np.sin(2 * np.pi * 3 * t)
    wfdb.wrsamp("900", fs=FS, units=["mV", "mV"], sig_name=["V5", "MLII"], p_signal=np.column_stack([v5, mlii]),
                fmt=["16", "16"], write_dir=str(tmp_path))
    ann = [  # (sample, symbol, aux)
        (5, "+", "(N"), (300, "N", ""), (600, "L", ""), (900, "A", ""), (1200, "V", ""), (1500, "~", ""),
        (1800, "F", ""), (2100, "/", ""), (2400, "j", ""), (2700, "E", ""), (3000, "+", "(AFIB"),
        (3300, "N", ""), (3600, "a", ""), (3900, "f", ""), (4200, "Q", ""), (4500, "|", ""),
        (5000, "+", "(AFL"), (5400, "S", ""), (5700, "e", ""), (6000, "J", ""),
    ]
    wfdb.wrann("900", "atr", np.array([a[0] for a in ann]), symbol=[a[1] for a in ann],
               aux_note=[a[2] for a in ann], write_dir=str(tmp_path))
    return tmp_path


def test_mitdb_read_tiny_record(tiny_mitdb):
    rec = mitdb_read(tiny_mitdb, "900")
    assert rec.sampling_rate == FS and rec.lead == "MLII"
    assert rec.signal.shape == (20 * FS,)
    # MLII was stored second: the 3 Hz, 0.5 mV channel must be the one returned.
    assert np.allclose(rec.signal, 0.5 * np.sin(2 * np.pi * 3 * np.arange(20 * FS) / FS), atol=1e-3)
    expected = {"N": "N", "L": "N", "A": "S", "V": "V", "F": "F", "/": "Q", "j": "N", "E": "V", "a": "S",
                "f": "Q", "Q": "Q", "S": "S", "e": "N", "J": "S"}
    assert "".join(rec.beat_symbols) == "NLAVF/jENafQSeJ"  # rhythm, noise and '|' are not beats
    assert [AAMI_CLASSES[c] for c in rec.beat_classes] == [expected[s] for s in rec.beat_symbols]
    assert rec.beat_samples.tolist() == [300, 600, 900, 1200, 1800, 2100, 2400, 2700, 3300, 3600, 3900, 4200,
                                         5400, 5700, 6000]
    assert [(e.start, e.stop, e.aux) for e in rec.rhythms] == [(5, 3000, "(N"), (3000, 5000, "(AFIB"),
                                                               (5000, 20 * FS, "(AFL")]
    assert [rhythm_label(e.aux) for e in rec.rhythms] == ["normal", "af", "other"]


def test_mitdb_read_errors(tiny_mitdb, tmp_path):
    with pytest.raises(DataError, match="no V1 lead"):
        mitdb_read(tiny_mitdb, "900", lead="V1")
    with pytest.raises(DataError, match="record 901 not found"):
        mitdb_read(tiny_mitdb, "901")
    with pytest.raises(DataError, match="does not exist"):
        mitdb_read(tmp_path / "nowhere", "900")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no records"):
        mitdb_read(empty, "100")


def test_inter_patient_split_constants():
    assert len(DS1) == len(DS2) == 22
    assert not set(DS1) & set(DS2)
    assert not set(MITDB_PACED) & (set(DS1) | set(DS2))
    assert set(MITDB_VAL) < set(DS1)


@pytest.fixture()
def mitdb_dir(data_dir: Path) -> Path:
    if not (data_dir / "mitdb" / "100.hea").is_file():
        pytest.skip(f"mitdb not found under {data_dir}")
    return data_dir / "mitdb"


@pytest.mark.realdata
def test_mitdb_real_records(mitdb_dir):
    rec = mitdb_read(mitdb_dir, "100")
    assert rec.beat_samples.size == 2273 and rec.sampling_rate == 360.0 and rec.signal.size == 650000
    counts = np.bincount(rec.beat_classes, minlength=5)
    assert counts.tolist() == [2239, 33, 1, 0, 0]
    # 114 stores MLII as its second signal.
    rec114 = mitdb_read(mitdb_dir, "114")
    raw = wfdb.rdrecord(str(mitdb_dir / "114"))
    assert raw.sig_name == ["V5", "MLII"]
    assert np.allclose(rec114.signal, raw.p_signal[:, 1])
    rec201 = mitdb_read(mitdb_dir.parent, "201")  # the data root works as well as the mitdb folder
    assert {e.aux for e in rec201.rhythms} >= {"(N", "(AFIB"}
    with pytest.raises(DataError, match="no MLII lead"):
        mitdb_read(mitdb_dir, "102")  # paced, V5/V2 only


@pytest.mark.realdata
def test_bidmc_real_record(data_dir):
    if not (data_dir / "bidmc" / "bidmc01.hea").is_file():
        pytest.skip(f"bidmc not found under {data_dir}")
    rec = bidmc_read(data_dir, "bidmc01")  # channels RESP, PLETH, V, AVR, II: names end in ','
    assert rec.sampling_rate == 125.0 and rec.ecg.shape == rec.ppg.shape == (60001,)
    assert rec.hr.shape == (481,) and 40 < np.nanmedian(rec.hr) < 160
    assert np.std(rec.ecg) > 0 and np.std(rec.ppg) > 0
    assert np.isnan(bidmc_read(data_dir, "bidmc27").hr).any()  # known gaps stay NaN


# --- nstdb noise ---------------------------------------------------------------------------


@pytest.fixture()
def fake_nstdb(tmp_path: Path) -> Path:
    """Stand-in noise records (bw, em, ma) in the nstdb layout: 360 Hz, two channels, 2 min."""
    folder = tmp_path / "nstdb"
    folder.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(120 * FS) / FS
    for name in ("bw", "em", "ma"):
        noise = rng.normal(0, 0.2, (t.size, 2)) + np.column_stack([np.sin(2 * np.pi * 0.3 * t)] * 2)
        wfdb.wrsamp(name, fs=FS, units=["mV", "mV"], sig_name=["noise1", "noise2"], p_signal=noise,
                    fmt=["16", "16"], write_dir=str(folder))
    return tmp_path


def _measured_snr_db(clean, noisy, beats, fs, span):
    """nst's definition, written independently with scipy's trimmed mean: QRS p-p amplitude²/8
    over the squared RMS of the added noise about the mean of each 1 s chunk."""
    half = int(0.05 * fs)
    pp = trim_mean([np.ptp(clean[b - half : b + half + 1]) for b in beats if half <= b < clean.size - half], 0.05)
    added = (noisy - clean)[span[0] : span[1]]
    chunks = added[: added.size // int(fs) * int(fs)].reshape(-1, int(fs))
    rms = trim_mean(np.std(chunks, axis=1), 0.05)
    return 10 * np.log10(pp**2 / 8 / rms**2)


@pytest.mark.parametrize("snr_db", (-6.0, 0.0, 6.0, 12.0))
def test_nstdb_noise_at_snr(fake_nstdb, snr_db):
    fs = 250.0
    rec = ecg_ppg_simulate(60.0, sampling_rate=fs, seed=2)
    span = (int(10 * fs), int(40 * fs))
    noisy, mask = nstdb_noise_add(rec.ecg, sampling_rate=fs, noise="em", snr_db=snr_db, data_dir=fake_nstdb,
                                  beat_samples=rec.beat_samples, span=span, seed=1)
    assert abs(_measured_snr_db(rec.ecg, noisy, rec.beat_samples, fs, span) - snr_db) < 0.5
    assert abs(ecg_snr(rec.ecg, (noisy - rec.ecg)[span[0] : span[1]], sampling_rate=fs,
                       beat_samples=rec.beat_samples) - snr_db) < 0.01
    assert np.all(mask[span[0] : span[1]] == NSTDB_MASK_IDS["em"]) and not mask[: span[0]].any()
    assert not mask[span[1] :].any()
    assert np.array_equal(noisy[: span[0]], rec.ecg[: span[0]]) and np.array_equal(noisy[span[1] :], rec.ecg[span[1] :])


def test_nstdb_power_method_and_errors(fake_nstdb):
    fs = 100.0
    ecg = ecg_ppg_simulate(20.0, sampling_rate=fs, seed=3).ecg
    noisy, mask = nstdb_noise_add(ecg, sampling_rate=fs, noise="ma", snr_db=3.0, data_dir=fake_nstdb,
                                  method="power", seed=0)
    added = noisy - ecg
    measured = 10 * np.log10(np.var(ecg) / np.var(added))
    assert abs(measured - 3.0) < 0.05 and np.all(mask == NSTDB_MASK_IDS["ma"])
    with pytest.raises(DataError, match="needs beat_samples"):
        nstdb_noise_add(ecg, sampling_rate=fs, noise="ma", snr_db=3.0, data_dir=fake_nstdb)
    with pytest.raises(DataError, match="unknown nstdb noise"):
        nstdb_noise_add(ecg, sampling_rate=fs, noise="xx", snr_db=3.0, data_dir=fake_nstdb, method="power")


@pytest.mark.realdata
@pytest.mark.parametrize("noise", ("bw", "em", "ma"))
def test_nstdb_real_noise_at_snr(data_dir, noise):
    if not (data_dir / "nstdb" / f"{noise}.hea").is_file():
        pytest.skip(f"nstdb not found under {data_dir}")
    fs = 360.0
    rec = ecg_ppg_simulate(30.0, sampling_rate=fs, seed=5)
    span = (int(5 * fs), int(25 * fs))
    noisy, mask = nstdb_noise_add(rec.ecg, sampling_rate=fs, noise=noise, snr_db=6.0, data_dir=data_dir,
                                  beat_samples=rec.beat_samples, span=span, seed=2)
    assert abs(_measured_snr_db(rec.ecg, noisy, rec.beat_samples, fs, span) - 6.0) < 0.5
    assert np.all(mask[span[0] : span[1]] == NSTDB_MASK_IDS[noise]) and mask.sum() == NSTDB_MASK_IDS[noise] * (
        span[1] - span[0])
