"""A preallocated, mirrored ring buffer of samples with an explicit overrun policy.

Contract (the firmware's C ring buffer implements the same semantics):

``RingBuffer(capacity, dtype=np.float32, policy="overwrite_oldest" | "reject_new")``
    Storage is allocated once (``2 * capacity`` elements, see below); nothing is allocated
    by ``push`` or ``latest``.
``push(samples) -> int``
    Appends a 1-D chunk (any length, zero included) and returns how many samples this call
    dropped. ``overwrite_oldest``: when the chunk does not fit, the oldest samples that no
    longer fit are dropped (they may be older buffered samples or the head of the chunk
    itself); the buffer then holds the newest ``capacity`` samples. ``reject_new``: the
    incoming samples that do not fit in the free space are dropped; buffered samples stay.
``dropped``
    Total number of samples dropped since construction (``clear`` does not reset it).
``size``, ``capacity``
    Samples held now (``0 <= size <= capacity``) and the fixed capacity.
``total_pushed``
    Total number of samples offered to ``push`` since construction, dropped ones included,
    so that ``total_pushed`` is the stream position of the next sample whatever the policy.
``latest(n) -> ndarray``
    The newest ``n`` samples (``0 <= n <= size``), oldest first. It is a read-only *view*
    into the buffer (no copy): valid until the next ``push``/``clear``.
``clear()``
    Forgets the buffered samples (``size = 0``); counters keep counting.

Why mirrored: every sample is written twice, at ``i`` and ``i + capacity``, so the newest
``n`` samples are always one contiguous slice ending at ``write + capacity``; a model window
can be handed to the interpreter without assembling it from two pieces.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RingBuffer", "OVERRUN_POLICIES"]

OVERRUN_POLICIES = ("overwrite_oldest", "reject_new")


class RingBuffer:
    """Fixed-capacity sample buffer; see the module docstring for the exact contract."""

    __slots__ = ("_buf", "_cap", "_write", "_size", "_policy", "dropped", "total_pushed")

    def __init__(self, capacity: int, dtype=np.float32, policy: str = "overwrite_oldest") -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        if policy not in OVERRUN_POLICIES:
            raise ValueError(f"unknown overrun policy {policy!r}; accepted: {', '.join(OVERRUN_POLICIES)}")
        self._cap = int(capacity)
        self._buf = np.zeros(2 * self._cap, dtype=dtype)
        self._write = 0  # index in [0, capacity) where the next sample goes
        self._size = 0
        self._policy = policy
        self.dropped = 0
        self.total_pushed = 0

    @property
    def capacity(self) -> int:
        return self._cap

    @property
    def size(self) -> int:
        return self._size

    @property
    def policy(self) -> str:
        return self._policy

    @property
    def dtype(self) -> np.dtype:
        return self._buf.dtype

    def push(self, samples) -> int:
        """Append ``samples`` (1-D); return the number of samples dropped by this call."""
        x = np.asarray(samples)
        if x.ndim != 1:
            raise ValueError(f"push takes a 1-D chunk, got shape {x.shape}")
        n = int(x.shape[0])
        self.total_pushed += n
        if n == 0:
            return 0
        cap = self._cap
        if self._policy == "reject_new":
            keep = min(n, cap - self._size)
            dropped = n - keep
            x = x[:keep]
        else:
            dropped = max(0, self._size + n - cap)
            x = x[-cap:] if n > cap else x
        m = int(x.shape[0])
        if m:
            w = self._write
            first = min(m, cap - w)
            # Both halves of the mirror get every sample.
            self._buf[w:w + first] = x[:first]
            self._buf[w + cap:w + cap + first] = x[:first]
            if m > first:
                rest = m - first
                self._buf[:rest] = x[first:]
                self._buf[cap:cap + rest] = x[first:]
            self._write = (w + m) % cap
            self._size = min(cap, self._size + m)
        self.dropped += dropped
        return dropped

    def latest(self, n: int) -> np.ndarray:
        """The newest ``n`` samples, oldest first, as a read-only view."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= self._size:
            raise ValueError(f"latest(n) needs 0 <= n <= size ({self._size}), got {n!r}")
        end = self._write + self._cap
        view = self._buf[end - int(n):end]
        view.flags.writeable = False
        return view

    def clear(self) -> None:
        """Forget the buffered samples; ``dropped`` and ``total_pushed`` keep counting."""
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return (f"RingBuffer(capacity={self._cap}, dtype={self._buf.dtype.name}, policy={self._policy!r}, "
                f"size={self._size}, dropped={self.dropped}, total_pushed={self.total_pushed})")
