"""ECG-CL beat classification: the RR channel (causal reference, prematurity), the flatten decoder, the command.

Synthetic peak trains and random tiny windows; the MIT-BIH check reads only the three validation records.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from wearable.data import load_windows  # noqa: E402
from wearable.data._tasks_mitdb import RR_CHANNEL_GAIN, rr_channel, rr_reference  # noqa: E402
from wearable.data.windows import WindowSet  # noqa: E402
from wearable.models import create  # noqa: E402
from wearable.models.ecgcl import ECGCLConfig  # noqa: E402


def _peaks(premature_at: int = 10) -> np.ndarray:
    rr = np.full(20, 100.0)
    rr[premature_at - 1] = 60.0  # beat `premature_at` comes 40 samples early ...
    rr[premature_at] = 140.0  # ... and a compensatory pause follows
    return np.concatenate([[50.0], 50.0 + np.cumsum(rr)])


def test_rr_reference_uses_past_beats_only():
    peaks = _peaks()
    ref = rr_reference(peaks, n_past=4)
    assert np.isnan(ref[0]) and ref[1] == 100.0 and ref[5] == 100.0
    assert ref[10] == 100.0  # the premature beat's own pre-RR is not in its reference
    assert ref[11] == pytest.approx((100 + 100 + 100 + 60) / 4)
    later = peaks.copy()
    later[15:] += 30  # changing later beats leaves earlier references alone
    np.testing.assert_array_equal(rr_reference(later, n_past=4)[:15], ref[:15])


def test_rr_channel_shows_prematurity_around_the_centre():
    peaks = _peaks()
    k, w = 10, 256
    start = int(peaks[k]) - w // 2
    ch = rr_channel(peaks, k, rr_reference(peaks)[k], start, w)
    assert ch[w // 2 - 1] == pytest.approx(RR_CHANNEL_GAIN * (60 / 100 - 1))  # pre-RR, left of the beat
    assert ch[w // 2 + 1] == pytest.approx(RR_CHANNEL_GAIN * (140 / 100 - 1))  # post-RR, right of it
    normal = rr_channel(peaks, 5, rr_reference(peaks)[5], int(peaks[5]) - w // 2, w)
    inside = (np.arange(w) + int(peaks[5]) - w // 2) >= peaks[0]
    assert np.all(normal[inside] == 0.0) and np.all(normal[~inside] == 0.0)  # regular rhythm: flat zero
    assert np.all(rr_channel(peaks, 0, np.nan, 0, w) == 0.0)  # no reference: no channel


def test_flatten_decoder_sees_the_position():
    torch.manual_seed(0)
    cfg = dict(window_samples=128, channels=(4, 6, 8, 8), hidden=8, in_channels=2, num_classes=4)
    flat, mean = (create("ecgcl_tiny", pool=p, **cfg).eval() for p in ("flatten", "mean"))
    x = torch.randn(1, 2, 128)
    assert flat(x).shape == (1, 4) and mean(x).shape == (1, 4)
    assert flat.decoder.out.in_features == 8 * 128 // 16
    with pytest.raises(ValueError, match="pool"):
        ECGCLConfig(pool="max")
    # the mean decoder reads the same features wherever they sit; the flatten one does not
    impulse = torch.zeros(1, 2, 128)
    impulse[0, 0, 40] = 3.0
    shifted = torch.roll(impulse, 48, dims=-1)
    with torch.no_grad():
        assert not torch.allclose(flat(impulse), flat(shifted), atol=1e-4)


def test_n_subsample_and_beat_train_keep_the_best_epoch():
    from wearable.continual.beat import BeatConfig, beat_train, n_subsample

    rng = np.random.default_rng(0)
    y = np.array([0] * 40 + [1] * 8 + [2] * 8 + [3] * 8)
    x = rng.normal(size=(y.size, 2, 64)).astype(np.float32)
    x[:, 1, 30:34] += y[:, None]  # learnable: the class shows in the RR channel at the centre
    ws = WindowSet(x=x, y=y, labels=("N", "S", "V", "F"), sampling_rate_hz=100.0, source="t", task="t", records=())
    sub = n_subsample(ws, 10, seed=0)
    assert np.bincount(sub.y).tolist() == [10, 8, 8, 8]
    model = create("ecgcl_tiny", window_samples=64, channels=(4, 4, 4, 4), hidden=4, in_channels=2,
                   num_classes=4, pool="flatten")
    model, history = beat_train(model, sub, ws, config=BeatConfig(epochs=3, batch_size=16))
    assert [h["epoch"] for h in history] == [1, 2, 3] and not model.training
    from wearable.metrics import classification_report
    from wearable.training.loop import predict
    best = max(h["val_macro_f1"] for h in history)
    assert classification_report(y, predict(model, x).argmax(axis=1), ws.labels)["macro_f1"] == pytest.approx(best)


def test_beat_command_bad_input_exits_2(capsys):
    from wearable.continual.beat import main

    assert main(["--epochs", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: --epochs")
    with pytest.raises(SystemExit) as exc:
        main(["--task", "nope"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_mitdb_beat_rr_windows(data_dir):
    ws = load_windows("mitdb", "beat_rr", split="val", sampling_rate_hz=100.0, window_samples=256, data_dir=data_dir)
    assert ws.labels == ("N", "S", "V", "F") and ws.x.shape[1:] == (2, 256)
    beat = load_windows("mitdb", "beat", split="val", sampling_rate_hz=100.0, window_samples=256, data_dir=data_dir)
    no_q = np.asarray(beat.labels)[beat.y] != "Q"
    np.testing.assert_array_equal(ws.x[:, 0], beat.x[no_q, 0])  # channel 0 is the beat task's ECG window
    pre = ws.x[:, 1, 127]
    assert np.median(pre[ws.y == 1]) < -0.3 < np.median(pre[ws.y == 0])  # S beats come early
