"""Metrics against confusion matrices computed by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tfhsi.errors import DataFormatError, UnknownNameError
from tfhsi.train.metrics import Metrics, aggregate, compute_metrics, confusion_matrix

NAMES3 = ("A", "B", "C")


def _labels_from_confusion(cm: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Expands a confusion matrix into (y_true, y_pred) pairs, shuffled."""
    pairs = [(t, p) for t, row in enumerate(cm) for p, n in enumerate(row) for _ in range(n)]
    order = np.random.default_rng(0).permutation(len(pairs))
    arr = np.array(pairs)[order]
    return arr[:, 0], arr[:, 1]


# Hand-computed 3-class example (rows = true, cols = predicted):
#
#          pred A  pred B  pred C | support r
#   true A    4       1       0   |   5
#   true B    1       3       1   |   5
#   true C    0       0       5   |   5
#   col sum c 5       4       6   |  N = 15
#
# OA = (4 + 3 + 5) / 15 = 12/15 = 0.8
# recall = (4/5, 3/5, 5/5) = (0.8, 0.6, 1.0)  ->  AA = 2.4 / 3 = 0.8
# precision = (4/5, 3/4, 5/6)
# F1 = 2TP / (r + c) = (8/10, 6/9, 10/11)
# pe = sum(r * c) / N^2 = (25 + 20 + 30) / 225 = 1/3
# kappa = (po - pe) / (1 - pe) = (0.8 - 1/3) / (2/3) = (7/15) * (3/2) = 0.7
HAND_CM = [[4, 1, 0], [1, 3, 1], [0, 0, 5]]


def test_confusion_matrix_counts_rows_true_cols_predicted() -> None:
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_hand_computed_3x3_matches_every_figure() -> None:
    y_true, y_pred = _labels_from_confusion(HAND_CM)
    m = compute_metrics(y_true, y_pred, class_names=NAMES3)
    np.testing.assert_array_equal(m.confusion, HAND_CM)
    assert m.oa == pytest.approx(0.8)
    assert m.aa == pytest.approx(0.8)
    assert m.kappa == pytest.approx(0.7)
    np.testing.assert_allclose(m.per_class_accuracy, [0.8, 0.6, 1.0])
    np.testing.assert_allclose(m.recall, [0.8, 0.6, 1.0])
    np.testing.assert_allclose(m.precision, [4 / 5, 3 / 4, 5 / 6])
    np.testing.assert_allclose(m.f1, [0.8, 2 / 3, 10 / 11])
    np.testing.assert_array_equal(m.support, [5, 5, 5])
    assert m.n_samples == 15


def test_class_absent_from_test_set_is_nan_and_excluded_from_aa() -> None:
    # Class B never occurs in the test set but is predicted once.
    # cm = [[2, 1, 0], [0, 0, 0], [0, 0, 2]]; recall = (2/3, NaN, 1) -> AA = (2/3 + 1) / 2 = 5/6
    # r = (3, 0, 2), c = (2, 1, 2): kappa = (N*trace - sum rc) / (N^2 - sum rc)
    #                                     = (5*4 - 10) / (25 - 10) = 2/3
    m = compute_metrics([0, 0, 0, 2, 2], [0, 1, 0, 2, 2], class_names=NAMES3)
    assert math.isnan(m.per_class_accuracy[1])
    assert m.aa == pytest.approx(5 / 6)
    assert m.oa == pytest.approx(0.8)
    assert m.kappa == pytest.approx(2 / 3)
    assert m.precision[1] == 0.0  # predicted once, never right
    assert m.f1[1] == 0.0
    assert m.support[1] == 0


def test_class_neither_present_nor_predicted_is_nan_everywhere() -> None:
    m = compute_metrics([0, 2], [0, 2], class_names=NAMES3)
    for values in (m.per_class_accuracy, m.precision, m.recall, m.f1):
        assert math.isnan(values[1])
    assert m.aa == 1.0


def test_perfect_predictions_give_one_everywhere() -> None:
    y = np.array([0, 1, 2, 2, 1, 0, 0])
    m = compute_metrics(y, y, class_names=NAMES3)
    assert (m.oa, m.aa, m.kappa) == (1.0, 1.0, 1.0)
    np.testing.assert_array_equal(m.f1, [1.0, 1.0, 1.0])


def test_single_class_all_correct_gives_kappa_one_not_nan() -> None:
    # pe == 1: truth and predictions are the same single class.
    m = compute_metrics([1, 1, 1], [1, 1, 1], class_names=NAMES3)
    assert m.kappa == 1.0
    assert m.oa == 1.0


def test_all_wrong_swapped_classes_give_kappa_minus_one() -> None:
    # r = c = (2, 2): pe = 8/16 = 0.5, po = 0 -> kappa = -0.5 / 0.5 = -1
    m = compute_metrics([0, 1, 0, 1], [1, 0, 1, 0], class_names=("A", "B"))
    assert m.oa == 0.0
    assert m.aa == 0.0
    assert m.kappa == pytest.approx(-1.0)
    np.testing.assert_array_equal(m.f1, [0.0, 0.0])


def test_constant_prediction_has_kappa_zero_and_nan_precision_for_unpredicted_class() -> None:
    # r = (2, 2), c = (4, 0): pe = 8/16 = 0.5 = po -> kappa 0
    m = compute_metrics([0, 0, 1, 1], [0, 0, 0, 0], class_names=("A", "B"))
    assert m.kappa == pytest.approx(0.0)
    assert math.isnan(m.precision[1])  # never predicted: 0/0
    assert m.recall[1] == 0.0
    assert m.f1[1] == 0.0  # present but never predicted
    assert m.precision[0] == pytest.approx(0.5)


def test_kappa_matches_definition_on_random_labels() -> None:
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 5, 400), rng.integers(0, 5, 400)
    m = compute_metrics(y_true, y_pred, class_names=list("abcde"))
    cm = m.confusion.astype(float)
    n = cm.sum()
    po = np.trace(cm) / n
    pe = (cm.sum(0) * cm.sum(1)).sum() / n**2
    assert m.kappa == pytest.approx((po - pe) / (1 - pe), abs=1e-12)


def test_out_of_range_prediction_raises_with_class_count() -> None:
    with pytest.raises(DataFormatError, match=r"class index 3, outside 0\.\.2"):
        compute_metrics([0, 1], [0, 3], class_names=NAMES3)


def test_length_mismatch_and_empty_input_raise() -> None:
    with pytest.raises(DataFormatError, match="same samples"):
        confusion_matrix([0, 1], [0], 3)
    with pytest.raises(DataFormatError, match="no samples"):
        compute_metrics([], [], class_names=NAMES3)


def test_metrics_arrays_are_read_only() -> None:
    m = compute_metrics([0, 1], [0, 1], class_names=("A", "B"))
    with pytest.raises(ValueError):
        m.confusion[0, 0] = 7


def test_to_dict_is_json_serialisable_with_nan_as_none_and_round_trips() -> None:
    m = compute_metrics([0, 0, 0, 2, 2], [0, 1, 0, 2, 2], class_names=NAMES3)
    d = m.to_dict()
    text = json.dumps(d, allow_nan=False)
    loaded = json.loads(text)
    assert loaded["per_class_accuracy"][1] is None
    assert loaded["confusion"] == [[2, 1, 0], [0, 0, 0], [0, 0, 2]]
    back = Metrics.from_dict(loaded)
    assert back == m
    assert back != compute_metrics([0, 0, 0, 2, 2], [0, 0, 0, 2, 2], class_names=NAMES3)


def test_from_dict_missing_key_raises_data_format_error() -> None:
    d = compute_metrics([0, 1], [0, 1], class_names=("A", "B")).to_dict()
    del d["kappa"]
    with pytest.raises(DataFormatError, match="kappa"):
        Metrics.from_dict(d)


def _run(n_correct: int, *, with_c: bool = True) -> Metrics:
    """10 samples; the first n_correct right. Class C appears only when with_c."""
    y_true = np.array([0, 1] * 5) if not with_c else np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    y_pred = y_true.copy()
    y_pred[n_correct:] = (y_true[n_correct:] + 1) % 2
    return compute_metrics(y_true, y_pred, class_names=NAMES3)


def test_aggregate_mean_and_sample_std_over_three_runs() -> None:
    runs = [_run(8), _run(9), _run(10)]
    agg = aggregate(runs)
    assert agg.n == 3
    assert agg.oa_mean == pytest.approx(0.9)
    assert agg.oa_std == pytest.approx(0.1)  # ddof=1: sqrt((0.01 + 0 + 0.01) / 2)
    kappas = [r.kappa for r in runs]
    assert agg.kappa_mean == pytest.approx(np.mean(kappas))
    assert agg.kappa_std == pytest.approx(np.std(kappas, ddof=1))
    assert agg.format("oa") == "90.00 ± 10.00"


def test_aggregate_single_run_has_zero_std() -> None:
    agg = aggregate([_run(9)])
    assert agg.oa_std == 0.0
    assert agg.format("oa", digits=1) == "90.0 ± 0.0"


def test_aggregate_per_class_skips_runs_where_class_is_absent() -> None:
    runs = [_run(10, with_c=False), _run(10), _run(10)]
    agg = aggregate(runs)
    np.testing.assert_array_equal(agg.per_class_runs, [3, 3, 2])
    assert agg.per_class_accuracy_mean[2] == 1.0
    assert agg.format("C") == "100.00 ± 0.00"


def test_aggregate_class_absent_from_every_run_formats_as_na() -> None:
    agg = aggregate([_run(10, with_c=False), _run(9, with_c=False)])
    assert agg.format("C") == "n/a"
    assert math.isnan(agg.per_class_accuracy_mean[2])


def test_aggregate_to_dict_round_trips_through_json() -> None:
    agg = aggregate([_run(10, with_c=False), _run(7), _run(9)])
    loaded = json.loads(json.dumps(agg.to_dict(), allow_nan=False))
    assert type(agg).from_dict(loaded) == agg


def test_aggregate_rejects_empty_and_mismatched_class_names() -> None:
    with pytest.raises(DataFormatError, match="zero runs"):
        aggregate([])
    other = compute_metrics([0, 1], [0, 1], class_names=("X", "Y"))
    with pytest.raises(DataFormatError, match="same scene"):
        aggregate([_run(9), other])


def test_format_unknown_field_suggests_close_match() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'kappa'"):
        aggregate([_run(9)]).format("kapa")
