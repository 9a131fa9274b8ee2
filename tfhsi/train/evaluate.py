"""One evaluation API for anything that maps a batch of patches to class scores.

``predict`` is a plain callable ``(N, ...) array -> (N, C) scores``: pass
``keras_model.predict_on_batch`` for a Keras model or ``TFLiteModel(path).predict`` for a
``.tflite`` file, and the same batches give directly comparable metrics. No TensorFlow
import: tensors are converted with their own ``.numpy()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from tfhsi.errors import DataFormatError
from tfhsi.train.metrics import Metrics, compute_metrics

__all__ = ["evaluate", "predict_batches"]

Predict = Callable[[np.ndarray], Any]


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "numpy"):  # tf.Tensor, without importing TensorFlow
        value = value.numpy()
    return np.asarray(value)


def _labels_to_indices(y: np.ndarray, *, batch: int) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2:  # one-hot / soft labels
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise DataFormatError(
            f"batch {batch}: labels have shape {y.shape}; expected (N,) class indices "
            "or (N, C) one-hot"
        )
    return y.astype(np.int64)


def predict_batches(
    predict: Predict,
    batches: Iterable[Any],
    *,
    n_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Runs ``predict`` over ``(x, y)`` batches and collects labels and predicted classes.

    Args:
        predict: Maps an ``(N, ...)`` input batch to ``(N, C)`` scores or logits (numpy or
            anything with ``.numpy()``).
        batches: Iterable of ``(x, y)`` pairs (numpy arrays or tensors, e.g. a
            ``tf.data.Dataset``); ``y`` holds ``(N,)`` class indices or ``(N, C)`` one-hot.
        n_classes: If given, ``predict`` must return exactly this many scores per sample.

    Returns:
        ``(y_true, y_pred)``: 1-D int64 arrays; ``y_pred`` is the argmax of the scores.

    Raises:
        DataFormatError: if a batch is not an ``(x, y)`` pair, or the scores have the
            wrong shape, a varying or unexpected number of classes, or NaN values.
    """
    trues: list[np.ndarray] = []
    preds: list[np.ndarray] = []
    width = n_classes
    for i, item in enumerate(batches):
        if not isinstance(item, Sequence) or len(item) != 2:
            raise DataFormatError(
                f"batch {i} is not an (x, y) pair; pass batches of inputs and labels "
                "(e.g. the test tf.data.Dataset), without sample weights"
            )
        x, y = _to_numpy(item[0]), _to_numpy(item[1])
        y = _labels_to_indices(y, batch=i)
        if len(y) != len(x):
            raise DataFormatError(f"batch {i}: {len(x)} inputs but {len(y)} labels")
        scores = _to_numpy(predict(x))
        if scores.ndim != 2 or scores.shape[0] != len(x):
            raise DataFormatError(
                f"batch {i}: predict returned shape {scores.shape} for {len(x)} inputs; "
                f"expected ({len(x)}, n_classes) scores"
            )
        if width is None:
            width = scores.shape[1]
        elif scores.shape[1] != width:
            expected = "the scene has" if n_classes is not None else "earlier batches had"
            raise DataFormatError(
                f"batch {i}: predict returned {scores.shape[1]} scores per sample but "
                f"{expected} {width} classes; the model was built for a different number "
                "of classes"
            )
        if np.isnan(scores).any():
            raise DataFormatError(
                f"batch {i}: predict returned NaN scores for "
                f"{int(np.isnan(scores).any(axis=1).sum())} of {len(x)} samples; the model "
                "diverged or its input was not normalised like during training"
            )
        trues.append(y)
        preds.append(scores.argmax(axis=1).astype(np.int64))
    if not trues:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(trues), np.concatenate(preds)


def evaluate(predict: Predict, batches: Iterable[Any], *, class_names: Sequence[str]) -> Metrics:
    """Scores ``predict`` on labelled batches.

    Args:
        predict: ``(N, ...) -> (N, C)`` scores; e.g. ``model.predict_on_batch`` or
            ``TFLiteModel(path).predict``.
        batches: Iterable of ``(x, y)`` pairs, as for :func:`predict_batches`.
        class_names: The C class names (fixes C; scores must have C columns).

    Returns:
        :class:`~tfhsi.train.metrics.Metrics` of the whole set.

    Raises:
        DataFormatError: for malformed batches or scores, or an empty set.
    """
    names = tuple(class_names)
    y_true, y_pred = predict_batches(predict, batches, n_classes=len(names))
    return compute_metrics(y_true, y_pred, class_names=names)
