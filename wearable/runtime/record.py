"""One label for a whole recording (or a stream) from its window outputs: the record decision.

A rhythm model classifies fixed windows; a user wants one answer per recording ("this 30 s ECG
shows AF"). Offline evaluation, ``StreamRuntime.flush`` (the ``record`` event) and the firmware
guide all reduce window outputs to that answer here, with one rule:

- Windows: every ``hop`` from the first sample, plus one window that ends at the last sample
  when the regular ones leave a tail (``record_window_starts``), so every sample is seen.
- Windows that overlap an input artifact (gap, NaN, saturation) do not vote.
- The label is the argmax of the mean of the voting windows' class probabilities. A noisy
  label (``NOISY_LABELS``) becomes ``inconclusive``: the model says the ECG cannot be read.
- A recording shorter than one window, or one without a clean window, is ``inconclusive``
  with a ``reason``; it is never dropped and never guessed.
- ``burden``: for each label, the fraction of voting windows whose own argmax is that label
  (for "af": the AF burden of a long stream).

Numpy only, like the rest of the runtime.

>>> import numpy as np
>>> d = record_decide(np.array([[0.7, 0.2, 0.1, 0.0], [0.2, 0.7, 0.1, 0.0]] * 2),
...                   ("normal", "af", "other", "noisy"), n_samples=3000, window_samples=900)
>>> d["label"], d["windows"], d["burden"]["af"]
('normal', 4, 0.5)
"""

from __future__ import annotations

import numpy as np

__all__ = ["INCONCLUSIVE", "NOISY_LABELS", "record_window_starts", "record_decide", "RecordVote", "softmax",
           "record_probs", "record_labels"]

INCONCLUSIVE = "inconclusive"
# labels that mean "this signal cannot be classified" rather than a rhythm
NOISY_LABELS = ("noisy", "~")


def record_window_starts(n_samples: int, *, window_samples: int, hop_samples: int) -> np.ndarray:
    """Start sample of every window the decision uses: one every ``hop_samples`` and, when they
    leave a tail, one more that ends at the last sample. Empty when ``n_samples < window_samples``.

    >>> record_window_starts(2000, window_samples=900, hop_samples=450).tolist()
    [0, 450, 900, 1100]
    """
    if window_samples < 1 or hop_samples < 1 or n_samples < 0:
        raise ValueError(f"need window_samples >= 1, hop_samples >= 1 and n_samples >= 0, got "
                         f"{window_samples}, {hop_samples}, {n_samples}")
    if n_samples < window_samples:
        return np.zeros(0, dtype=np.int64)
    starts = np.arange(0, n_samples - window_samples + 1, hop_samples, dtype=np.int64)
    if starts[-1] + window_samples < n_samples:
        starts = np.append(starts, np.int64(n_samples - window_samples))
    return starts


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of logits ``(n, K)``, row by row, in float64."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def record_probs(predict, signals, *, window: int, hop: int, batch: int = 512) -> list[np.ndarray]:
    """Per recording (preprocessed model input, 1-D), the class probabilities ``(n_windows, K)`` of
    its record windows (none for a recording shorter than a window). ``predict`` maps float32
    ``(n, 1, W)`` to probabilities; it is called in batches of ``batch`` windows."""
    starts = [record_window_starts(s.size, window_samples=window, hop_samples=hop) for s in signals]
    x = np.concatenate([np.stack([s[a:a + window] for a in st]) if st.size else np.zeros((0, window), np.float32)
                        for s, st in zip(signals, starts)])[:, None, :].astype(np.float32)
    probs = np.concatenate([predict(x[k:k + batch]) for k in range(0, len(x), batch)]) if len(x) else np.zeros((0, 0))
    bounds = np.cumsum([0] + [st.size for st in starts])
    return [probs[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def record_labels(probs: list[np.ndarray], signals, labels, *, window: int) -> list[str]:
    """The record decision of every recording from ``record_probs``."""
    labels = tuple(labels)
    return [record_decide(p.reshape(-1, len(labels)), labels, n_samples=s.size, window_samples=window)["label"]
            for p, s in zip(probs, signals)]


def record_decide(probs, labels, *, n_samples: int, window_samples: int, clean=None) -> dict:
    """The record decision from the windows' class probabilities ``probs`` ``(n_windows, K)``.

    ``clean`` (bool per window, default all) marks the windows that may vote. Returns a dict:
    ``label`` (a label or ``"inconclusive"``), ``p`` (the mean probability of the winning class,
    ``None`` without voting windows), ``windows`` (voting windows), ``mean`` (the mean
    probability per label), ``burden`` (fraction of voting windows per own-argmax label), and
    ``reason`` when inconclusive.
    """
    labels = tuple(labels)
    probs = np.asarray(probs, dtype=np.float64).reshape(-1, len(labels))
    clean = np.ones(len(probs), dtype=bool) if clean is None else np.asarray(clean, dtype=bool)
    if clean.shape != (len(probs),):
        raise ValueError(f"clean must hold one flag per window ({len(probs)}), got shape {clean.shape}")
    vote = RecordVote(labels)
    for p in probs[clean]:
        vote.add(p)
    return vote.decide(n_samples=n_samples, window_samples=window_samples)


class RecordVote:
    """The record decision accumulated window by window in constant memory (a day-long stream)."""

    def __init__(self, labels) -> None:
        self.labels = tuple(labels)
        self.sum = np.zeros(len(self.labels))
        self.own = np.zeros(len(self.labels), dtype=np.int64)
        self.windows = 0

    def add(self, p: np.ndarray) -> None:
        """One voting window's class probabilities."""
        self.sum += p
        self.own[int(np.argmax(p))] += 1
        self.windows += 1

    def decide(self, *, n_samples: int, window_samples: int) -> dict:
        labels, n = self.labels, self.windows
        out: dict = {"label": INCONCLUSIVE, "p": None, "windows": n, "mean": {},
                     "burden": {label: 0.0 for label in labels}}
        if n_samples < window_samples:
            out["reason"] = f"shorter than one window ({n_samples} < {window_samples} samples)"
            return out
        if not n:
            out["reason"] = "no window free of input artifacts"
            return out
        mean = self.sum / n
        best = int(mean.argmax())
        out.update(mean={label: round(float(m), 4) for label, m in zip(labels, mean)},
                   burden={label: round(float(c / n), 4) for label, c in zip(labels, self.own)},
                   p=round(float(mean[best]), 4))
        if labels[best] in NOISY_LABELS:
            out["reason"] = "the model reads the signal as too noisy to classify"
        else:
            out["label"] = labels[best]
        return out
