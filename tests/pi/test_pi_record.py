"""The record decision (numpy only): window placement, the vote, short and noisy records, and the
``record`` event of a stream, which must equal the offline decision over the same windows."""

from __future__ import annotations

import numpy as np
import pytest

from wearable.runtime import INCONCLUSIVE, StreamRuntime, record_decide, record_window_starts
from wearable.runtime._fake import FakeInterpreter, fake_artifact

LABELS = ("normal", "af", "other", "noisy")


def test_window_starts_cover_the_tail_and_nothing_when_short():
    assert record_window_starts(900, window_samples=900, hop_samples=450).tolist() == [0]
    assert record_window_starts(1350, window_samples=900, hop_samples=450).tolist() == [0, 450]
    assert record_window_starts(1351, window_samples=900, hop_samples=450).tolist() == [0, 450, 451]
    assert record_window_starts(899, window_samples=900, hop_samples=450).size == 0
    for n in range(900, 3000, 37):  # every sample is inside some window
        s = record_window_starts(n, window_samples=900, hop_samples=450)
        covered = np.zeros(n, dtype=bool)
        for a in s:
            covered[a:a + 900] = True
        assert covered.all() and s[-1] + 900 == n
    with pytest.raises(ValueError):
        record_window_starts(10, window_samples=0, hop_samples=1)


def test_mean_probability_vote_burden_and_noisy():
    p = np.array([[0.6, 0.3, 0.1, 0.0], [0.1, 0.8, 0.1, 0.0], [0.1, 0.8, 0.1, 0.0]])
    d = record_decide(p, LABELS, n_samples=2000, window_samples=900)
    assert d["label"] == "af" and d["windows"] == 3 and d["p"] == pytest.approx(1.9 / 3, abs=1e-4)
    assert d["burden"]["af"] == pytest.approx(2 / 3, abs=1e-4) and d["burden"]["normal"] == pytest.approx(1 / 3, abs=1e-4)
    noisy = record_decide([[0.1, 0.1, 0.1, 0.7]], LABELS, n_samples=900, window_samples=900)
    assert noisy["label"] == INCONCLUSIVE and "noisy" in noisy["reason"]


def test_short_record_and_no_clean_window_are_inconclusive_with_a_reason():
    short = record_decide(np.zeros((0, 4)), LABELS, n_samples=500, window_samples=900)
    assert short["label"] == INCONCLUSIVE and "shorter than one window" in short["reason"] and short["p"] is None
    dirty = record_decide([[0.9, 0.1, 0, 0]], LABELS, n_samples=900, window_samples=900, clean=[False])
    assert dirty["label"] == INCONCLUSIVE and dirty["windows"] == 0 and "artifact" in dirty["reason"]
    with pytest.raises(ValueError):
        record_decide([[0.9, 0.1, 0, 0]], LABELS, n_samples=900, window_samples=900, clean=[True, False])


def _ecg(seconds: float, amp: float, rate: float = 100.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.02 * np.random.default_rng(0).normal(size=t.size)
    for r in np.arange(0.5, seconds, 0.8):
        x += amp * np.exp(-0.5 * ((t - r) / 0.012) ** 2)
    return x


def _stream(x: np.ndarray, chunk: int) -> tuple[list[dict], StreamRuntime]:
    art = fake_artifact("classification")  # window 200, hop 50
    rt = StreamRuntime(art, interpreter=FakeInterpreter(art))
    events = []
    for i in range(0, len(x), chunk):
        events += rt.push(x[i:i + chunk])
    return events + rt.flush(), rt


@pytest.mark.parametrize("chunk", [1, 33, 10_000])
def test_stream_classifies_its_tail_and_ends_with_the_record_decision(chunk):
    x = np.concatenate([_ecg(10, 0.2), _ecg(3.3, 2.0)])  # 1330 samples: the regular windows end at 1300
    events, rt = _stream(x, chunk)
    cls = [e for e in events if e["type"] == "class"]
    assert cls[-1]["end"] == 13.3 and cls[-1]["start"] == pytest.approx(11.3)  # the tail window
    assert rt.windows == len(record_window_starts(len(x), window_samples=200, hop_samples=50))
    rhythm = [e for e in events if e["type"] == "rhythm"]
    assert rhythm[-1]["end"] == 13.3 and all(a["end"] == b["start"] for a, b in zip(rhythm, rhythm[1:]))
    (record,) = [e for e in events if e["type"] == "record"]
    assert events[-1] is record and record["end"] == 13.3 and record["windows"] == len(cls)
    # the same windows' probabilities, decided offline, give the same record
    probs = []
    for e in cls:
        p = np.zeros(2)
        p[["low", "high"].index(e["label"])] = e["p"]
        p[1 - ["low", "high"].index(e["label"])] = 1 - e["p"]
        probs.append(p)
    offline = record_decide(np.array(probs), ("low", "high"), n_samples=len(x), window_samples=200)
    assert record["label"] == offline["label"] and record["burden"] == offline["burden"]


def test_stream_shorter_than_a_window_says_so():
    events, rt = _stream(_ecg(1.5, 1.0), 40)
    assert rt.windows == 0 and not [e for e in events if e["type"] == "class"]
    (record,) = [e for e in events if e["type"] == "record"]
    assert record["label"] == INCONCLUSIVE and "shorter than one window" in record["reason"]
