"""RingBuffer contract (numpy only): the same semantics as the firmware's C ring buffer."""

from __future__ import annotations

import numpy as np
import pytest

from wearable.runtime import RingBuffer


def test_overwrite_oldest_keeps_newest_and_counts_drops():
    rb = RingBuffer(5)
    assert (rb.capacity, rb.size, rb.dropped, rb.total_pushed) == (5, 0, 0, 0)
    assert rb.push(np.arange(3)) == 0
    assert rb.latest(3).tolist() == [0, 1, 2]
    assert rb.push(np.arange(3, 7)) == 2          # 0 and 1 no longer fit
    assert rb.latest(5).tolist() == [2, 3, 4, 5, 6]
    assert rb.push(np.arange(7, 20)) == 13 - 5 + 5  # 8 of the chunk itself + the 5 held
    assert rb.latest(5).tolist() == [15, 16, 17, 18, 19]
    assert (rb.size, rb.dropped, rb.total_pushed) == (5, 15, 20)


def test_reject_new_keeps_buffered_and_drops_incoming():
    rb = RingBuffer(4, dtype=np.int8, policy="reject_new")
    assert rb.push(np.array([1, 2, 3], np.int8)) == 0
    assert rb.push(np.array([4, 5, 6], np.int8)) == 2
    assert rb.latest(4).tolist() == [1, 2, 3, 4]
    assert rb.push(np.array([7], np.int8)) == 1
    assert (rb.size, rb.dropped, rb.total_pushed) == (4, 3, 7)
    rb.clear()
    assert rb.size == 0 and rb.dropped == 3 and rb.total_pushed == 7
    assert rb.push(np.array([8, 9], np.int8)) == 0
    assert rb.latest(2).tolist() == [8, 9]


def test_latest_is_a_read_only_view_across_the_wrap():
    rb = RingBuffer(4)
    rb.push(np.arange(6, dtype=np.float32))      # wraps
    w = rb.latest(4)
    assert w.tolist() == [2, 3, 4, 5]
    assert w.base is not None and not w.flags.writeable and w.flags.c_contiguous
    assert rb.latest(0).size == 0
    for n in (-1, 5, 2.0, True):
        with pytest.raises(ValueError):
            rb.latest(n)


def test_matches_a_reference_for_random_pushes():
    rng = np.random.default_rng(0)
    for policy in ("overwrite_oldest", "reject_new"):
        rb, ref, dropped, total = RingBuffer(7, dtype=np.int64, policy=policy), [], 0, 0
        for _ in range(300):
            chunk = rng.integers(0, 1000, int(rng.integers(0, 12)))
            total += len(chunk)
            if policy == "overwrite_oldest":
                ref += chunk.tolist()
                d = max(0, len(ref) - 7)
                ref = ref[d:]
            else:
                keep = 7 - len(ref)
                d = max(0, len(chunk) - keep)
                ref += chunk[:keep].tolist()
            dropped += d
            assert rb.push(chunk) == d
            assert rb.latest(rb.size).tolist() == ref
            if rng.random() < 0.05:
                rb.clear()
                ref = []
        assert (rb.dropped, rb.total_pushed) == (dropped, total)


def test_bad_arguments():
    for cap in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="capacity"):
            RingBuffer(cap)
    with pytest.raises(ValueError, match="accepted: overwrite_oldest, reject_new"):
        RingBuffer(3, policy="block")
    with pytest.raises(ValueError, match="1-D"):
        RingBuffer(3).push(np.zeros((2, 2)))
    assert RingBuffer(3).push(np.zeros(0)) == 0
