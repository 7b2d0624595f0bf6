import numpy as np

from wearable.metrics import classification_report, confusion_matrix, macro_f1


def test_confusion_matrix_counts_by_hand():
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_report_matches_hand_computation():
    r = classification_report([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], ("a", "b", "c"))
    assert r["accuracy"] == 4 / 6
    assert r["per_class"]["b"] == {"se": 1.0, "ppv": 0.5, "f1": 2 / 3, "support": 1}
    f1_a = 2 * 0.5 * 0.5 / 1.0
    f1_c = 2 * (2 / 3) * 1.0 / (2 / 3 + 1.0)
    assert np.isclose(r["macro_f1"], (f1_a + 2 / 3 + f1_c) / 3)


def test_absent_classes_do_not_drag_macro_f1():
    assert macro_f1([0, 0, 1], [0, 0, 1], 5) == 1.0


def test_per_sample_targets_are_flattened():
    assert confusion_matrix(np.zeros((2, 3), int), np.ones((2, 3), int), 2)[0, 1] == 6


def test_detections_match_is_one_to_one_within_tolerance():
    from wearable.metrics import detections_match

    ref = np.array([1.0, 2.0, 3.0, 4.0])
    # 1.1 matches 1.0; 1.12 is a second detection near the same beat (FP); 2.2 is outside 0.15 s;
    # 3.05 and 2.95 compete for 3.0 (nearest wins); nothing near 4.0
    got = detections_match(ref, np.array([1.12, 1.1, 2.2, 3.05, 2.95]), tolerance=0.15)
    assert got == {"tp": 2, "fn": 2, "fp": 3}
    assert detections_match(ref, ref, tolerance=0.01) == {"tp": 4, "fn": 0, "fp": 0}
    assert detections_match(ref, np.array([]), tolerance=0.1) == {"tp": 0, "fn": 4, "fp": 0}
    assert detections_match(np.array([]), ref, tolerance=0.1) == {"tp": 0, "fn": 0, "fp": 4}
