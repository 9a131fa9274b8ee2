"""The evaluation API with a fake numpy ``predict`` (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from tfhsi.errors import DataFormatError
from tfhsi.train.evaluate import evaluate, predict_batches

NAMES = ("A", "B", "C")


def _one_hot_of_first_feature(x: np.ndarray) -> np.ndarray:
    """Fake model: predicts class int(x[:, 0]) with a one-hot score."""
    return np.eye(3, dtype=np.float32)[x[:, 0].astype(int)]


def _batches(classes: list[int], labels: list[int], *, size: int = 2):
    x = np.zeros((len(classes), 4), np.float32)
    x[:, 0] = classes
    y = np.array(labels)
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]


class _FakeTensor:
    """Stands in for a tf.Tensor: only ``.numpy()``."""

    def __init__(self, value: np.ndarray) -> None:
        self._value = value

    def numpy(self) -> np.ndarray:
        return self._value


def test_predict_batches_concatenates_labels_and_argmax_over_batches() -> None:
    y_true, y_pred = predict_batches(
        _one_hot_of_first_feature, _batches([0, 1, 2, 2, 1], [0, 1, 1, 2, 0])
    )
    np.testing.assert_array_equal(y_true, [0, 1, 1, 2, 0])
    np.testing.assert_array_equal(y_pred, [0, 1, 2, 2, 1])
    assert y_true.dtype == y_pred.dtype == np.int64


def test_evaluate_gives_metrics_of_the_whole_set() -> None:
    m = evaluate(
        _one_hot_of_first_feature, _batches([0, 1, 2, 2, 1], [0, 1, 1, 2, 0]), class_names=NAMES
    )
    assert m.oa == pytest.approx(3 / 5)
    np.testing.assert_array_equal(m.confusion, [[1, 1, 0], [0, 1, 1], [0, 0, 1]])


def test_tensor_like_batches_and_one_hot_labels_are_accepted() -> None:
    x = np.zeros((3, 4), np.float32)
    x[:, 0] = [2, 0, 1]
    y_one_hot = np.eye(3)[[2, 0, 0]]
    batches = [(_FakeTensor(x), _FakeTensor(y_one_hot))]
    m = evaluate(lambda b: _FakeTensor(_one_hot_of_first_feature(b)), batches, class_names=NAMES)
    np.testing.assert_array_equal(m.confusion, [[1, 1, 0], [0, 0, 0], [0, 0, 1]])


def test_column_labels_are_flattened() -> None:
    x = np.zeros((2, 4), np.float32)
    y_true, _ = predict_batches(_one_hot_of_first_feature, [(x, np.array([[1], [2]]))])
    np.testing.assert_array_equal(y_true, [1, 2])


def test_scores_width_other_than_class_count_raises() -> None:
    def four_scores(x: np.ndarray) -> np.ndarray:
        return np.zeros((len(x), 4), np.float32)

    with pytest.raises(DataFormatError, match="4 scores per sample but the scene has 3"):
        evaluate(four_scores, _batches([0, 1], [0, 1]), class_names=NAMES)


def test_nan_scores_raise_instead_of_counting_as_class_zero() -> None:
    def nan_model(x: np.ndarray) -> np.ndarray:
        return np.full((len(x), 3), np.nan, np.float32)

    with pytest.raises(DataFormatError, match="NaN scores for 2 of 2"):
        evaluate(nan_model, _batches([0, 1], [0, 1]), class_names=NAMES)


def test_wrong_score_rows_or_batch_structure_raise() -> None:
    with pytest.raises(DataFormatError, match=r"expected \(2, n_classes\)"):
        predict_batches(lambda x: np.zeros((1, 3)), _batches([0, 1], [0, 1]))
    x = np.zeros((2, 4), np.float32)
    with pytest.raises(DataFormatError, match=r"not an \(x, y\) pair"):
        predict_batches(_one_hot_of_first_feature, [(x, np.zeros(2), np.ones(2))])
    with pytest.raises(DataFormatError, match="2 inputs but 3 labels"):
        predict_batches(_one_hot_of_first_feature, [(x, np.zeros(3))])


def test_no_batches_gives_empty_arrays_and_evaluate_refuses_empty_set() -> None:
    y_true, y_pred = predict_batches(_one_hot_of_first_feature, [])
    assert y_true.shape == y_pred.shape == (0,)
    with pytest.raises(DataFormatError, match="no samples"):
        evaluate(_one_hot_of_first_feature, [], class_names=NAMES)


def test_evaluate_does_not_import_tensorflow() -> None:
    import subprocess
    import sys

    code = "import sys, tfhsi.train.evaluate; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
