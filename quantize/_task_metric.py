"""The task's own metric on float and int8 outputs, for the accuracy gate.

The kind of task follows from the labels, so the export needs no task table:
integer ``(n,)`` labels are classification (macro F1 over the classes present, percent),
integer ``(n, W)`` labels are segmentation (per-sample macro F1, percent), float ``(n,)``
labels are regression (mean absolute error, in the target's unit). The model output that
matches the labels' shape is the one scored (the first such output).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from wearable.metrics import macro_f1

__all__ = ["TaskScore", "score_outputs", "score_all", "metric_kind", "label_for_output"]


@dataclass(frozen=True)
class TaskScore:
    """One metric on float and int8 outputs; ``drop`` is positive when int8 is worse."""

    metric: str
    output: int
    float_value: float
    int8_value: float
    higher_is_better: bool

    @property
    def drop(self) -> float:
        diff = self.float_value - self.int8_value
        return diff if self.higher_is_better else -diff

    def to_dict(self) -> dict[str, Any]:
        r = lambda v: float(f"{v:.6g}")  # noqa: E731
        return {"metric": self.metric, "output": self.output, "float": r(self.float_value), "int8": r(self.int8_value),
                "drop": r(self.drop), "higher_is_better": self.higher_is_better}


def metric_kind(labels: np.ndarray) -> str:
    """"classification", "segmentation" or "regression", from the labels' dtype and shape."""
    labels = np.asarray(labels)
    if np.issubdtype(labels.dtype, np.floating):
        if labels.ndim != 1:
            raise ValueError(f"regression labels must be (n,), got {labels.shape}")
        return "regression"
    if labels.ndim == 1:
        return "classification"
    if labels.ndim == 2:
        return "segmentation"
    raise ValueError(f"labels must be (n,) or (n, W), got {labels.shape}")


def _fits(y: np.ndarray, labels: np.ndarray, kind: str) -> bool:
    if kind == "regression":
        return y.reshape(len(y), -1).shape[1] == 1
    return y.ndim == labels.ndim + 1 and y.shape[0] == labels.shape[0] and y.shape[2:] == labels.shape[1:] \
        and y.shape[1] >= 2


def score_outputs(float_outputs: Sequence[np.ndarray], int8_outputs: Sequence[np.ndarray],
                  labels: np.ndarray, *, skip: Sequence[int] = ()) -> TaskScore | None:
    """Score float and dequantized int8 outputs against ``labels``; None if no output fits them.

    The first output (not in ``skip``) whose shape fits the labels is scored.
    """
    labels = np.asarray(labels)
    kind = metric_kind(labels)
    for k, (yf, yq) in enumerate(zip(float_outputs, int8_outputs)):
        if k in skip or not _fits(yf, labels, kind):
            continue
        if kind == "regression":
            return TaskScore("MAE", k, _mae(yf, labels), _mae(yq, labels), higher_is_better=False)
        n = max(int(yf.shape[1]), int(labels.max()) + 1)
        name = "macro F1 %" if kind == "classification" else "per-sample macro F1 %"
        return TaskScore(name, k, _f1(yf, labels, n), _f1(yq, labels, n), higher_is_better=True)
    return None


def score_all(float_outputs: Sequence[np.ndarray], int8_outputs: Sequence[np.ndarray],
              labels: Sequence[np.ndarray]) -> list[TaskScore]:
    """One score per label array (e.g. a class and a per-sample mask), each on its own output."""
    scores: list[TaskScore] = []
    for target in labels:
        s = score_outputs(float_outputs, int8_outputs, target, skip=[x.output for x in scores])
        if s is not None:
            scores.append(s)
    return scores


def label_for_output(y: np.ndarray, labels: Sequence[np.ndarray]) -> np.ndarray | None:
    """The label array whose shape fits output ``y`` (for per-output accuracies), if any."""
    for target in labels:
        target = np.asarray(target)
        if _fits(y, target, metric_kind(target)):
            return target
    return None


def _f1(y: np.ndarray, labels: np.ndarray, n: int) -> float:
    return 100.0 * macro_f1(labels.reshape(-1), y.argmax(axis=1).reshape(-1), n)


def _mae(y: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.abs(y.reshape(len(y)).astype(np.float64) - labels)))
