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
