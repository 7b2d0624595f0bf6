"""Task metrics in plain numpy (importable without torch, for the runtime and benchmarks)."""

from __future__ import annotations

import numpy as np

__all__ = ["confusion_matrix", "classification_report", "macro_f1", "detections_match"]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]``; inputs of any shape, flattened (so per-sample masks work)."""
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} entries, y_pred {p.size}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, labels: tuple[str, ...] | list[str]) -> dict:
    """Accuracy, macro F1 over the classes present in ``y_true``, and per-class Se (recall) and +P."""
    cm = confusion_matrix(y_true, y_pred, len(labels))
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    se = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    ppv = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    f1 = np.divide(2 * se * ppv, se + ppv, out=np.zeros_like(tp), where=(se + ppv) > 0)
    present = support > 0
    return {
        "accuracy": float(tp.sum() / max(cm.sum(), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {name: {"se": float(se[i]), "ppv": float(ppv[i]), "f1": float(f1[i]), "support": int(support[i])}
                      for i, name in enumerate(labels)},
    }


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Macro F1 over the classes present in ``y_true``."""
    return classification_report(y_true, y_pred, [str(i) for i in range(num_classes)])["macro_f1"]


def detections_match(reference: np.ndarray, detected: np.ndarray, *, tolerance: float) -> dict[str, int]:
    """Greedy one-to-one matching of event times (e.g. R peaks), in time order, within ``tolerance``.

    Each reference event takes the nearest unused detection within the tolerance (same unit
    as the times). Returns ``{"tp", "fn", "fp"}``; Se = tp / (tp + fn), +P = tp / (tp + fp).
    """
    detected = np.sort(np.asarray(detected, dtype=np.float64))
    used = np.zeros(detected.size, dtype=bool)
    tp = 0
    for r in np.sort(np.asarray(reference, dtype=np.float64)):
        lo = int(np.searchsorted(detected, r - tolerance, side="left"))
        hi = int(np.searchsorted(detected, r + tolerance, side="right"))
        free = [k for k in range(lo, hi) if not used[k]]
        if free:
            used[min(free, key=lambda k: abs(detected[k] - r))] = True
            tp += 1
    return {"tp": tp, "fn": int(len(reference) - tp), "fp": int(detected.size - tp)}
