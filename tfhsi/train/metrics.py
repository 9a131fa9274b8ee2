"""HSI classification metrics: OA, AA, Cohen's Kappa, per-class figures, mean ± std over seeds.

Plain numpy; no TensorFlow. Class indices are ``0 .. C-1`` (scene label ``k`` is class
index ``k - 1``). Every figure is stored as a fraction in ``[0, 1]`` and formatted as a
percentage only by :meth:`Aggregate.format`.

Conventions for classes that make a ratio undefined (0 / 0) — NaN means "undefined", never 0:

* ``recall`` / ``per_class_accuracy``: NaN for a class absent from the test set.
* ``precision``: NaN for a class the model never predicted.
* ``f1`` = ``2 TP / (2 TP + FP + FN)``: equals the harmonic mean of precision and recall
  when both are defined, is 0 for a class that is present but never predicted (or
  predicted but absent), and NaN only for a class neither present nor predicted.
* ``aa`` (average accuracy) is the mean of ``per_class_accuracy`` over the classes present
  in the test set; absent classes are excluded (they show NaN), not counted as 0.
* ``kappa`` = ``(po - pe) / (1 - pe)``; in the degenerate case ``pe == 1`` (one class in
  both truth and predictions, hence all correct) it is 1.0.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from tfhsi.errors import DataFormatError, UnknownNameError

__all__ = ["Aggregate", "Metrics", "aggregate", "compute_metrics", "confusion_matrix"]


def _readonly(values: Any, dtype: Any) -> np.ndarray:
    arr = np.array(values, dtype=dtype)  # always a copy
    arr.setflags(write=False)
    return arr


def _json_floats(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in values.tolist()]


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _from_json_floats(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)


def _from_json_float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _arrays_equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _fields_equal(a: Any, b: Any) -> bool:
    return all(_arrays_equal(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))


def _class_indices(values: Any, *, name: str, n_classes: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataFormatError(
            f"{name} must be a 1-D array of class indices, got shape {arr.shape}; "
            "take the argmax of scores / one-hot labels first"
        )
    if (
        arr.size
        and not np.issubdtype(arr.dtype, np.integer)
        and (arr.dtype.kind != "f" or not np.array_equal(arr, np.round(arr)))
    ):
        raise DataFormatError(
            f"{name} must hold integer class indices, got dtype {arr.dtype} with non-integer values"
        )
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        bad = int(arr.min()) if arr.min() < 0 else int(arr.max())
        raise DataFormatError(
            f"{name} holds class index {bad}, outside 0..{n_classes - 1} for {n_classes} "
            "classes; labels must be 0-based (scene label k is index k-1) and the model's "
            "number of outputs must match the scene's classes"
        )
    return arr


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int) -> np.ndarray:
    """Counts (true, predicted) pairs.

    Args:
        y_true: 1-D integer class indices in ``0 .. n_classes-1``.
        y_pred: 1-D integer class indices, same length.
        n_classes: Number of classes C.

    Returns:
        ``(C, C)`` int64 matrix; rows are true classes, columns predicted classes.

    Raises:
        DataFormatError: for mismatched lengths, non-integer or out-of-range indices.
    """
    if n_classes < 1:
        raise DataFormatError(f"n_classes must be >= 1, got {n_classes}")
    t = _class_indices(y_true, name="y_true", n_classes=n_classes)
    p = _class_indices(y_pred, name="y_pred", n_classes=n_classes)
    if t.shape != p.shape:
        raise DataFormatError(
            f"y_true has {t.size} labels but y_pred has {p.size} predictions; "
            "they must come from the same samples"
        )
    counts = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes).astype(np.int64)


@dataclass(frozen=True, eq=False)
class Metrics:
    """Scores of one evaluation. Arrays are read-only and aligned with ``class_names``.

    Build it with :func:`compute_metrics` or :meth:`from_confusion`; the derived figures
    follow the conventions in the module docstring.
    """

    confusion: np.ndarray
    class_names: tuple[str, ...]
    oa: float
    aa: float
    kappa: float
    per_class_accuracy: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "class_names", tuple(str(n) for n in self.class_names))
        c = len(self.class_names)
        set_(self, "confusion", _readonly(self.confusion, np.int64))
        if self.confusion.shape != (c, c):
            raise DataFormatError(
                f"confusion matrix has shape {self.confusion.shape} but there are {c} "
                f"class names; expected ({c}, {c})"
            )
        for name in ("per_class_accuracy", "precision", "recall", "f1"):
            set_(self, name, _readonly(getattr(self, name), np.float64))
        set_(self, "support", _readonly(self.support, np.int64))
        for name in ("per_class_accuracy", "precision", "recall", "f1", "support"):
            if getattr(self, name).shape != (c,):
                raise DataFormatError(f"{name} must have {c} entries (one per class)")
        for name in ("oa", "aa", "kappa"):
            set_(self, name, float(getattr(self, name)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Metrics):
            return NotImplemented
        return _fields_equal(self, other)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_samples(self) -> int:
        return int(self.confusion.sum())

    @classmethod
    def from_confusion(cls, confusion: Any, class_names: Sequence[str]) -> Metrics:
        """Derives every figure from a ``(C, C)`` confusion matrix (rows true, cols predicted).

        Raises:
            DataFormatError: for a non-square / negative matrix, a class-name count that
                differs from C, or an empty matrix (no samples).
        """
        cm = np.asarray(confusion)
        names = tuple(class_names)
        c = len(names)
        if cm.shape != (c, c):
            raise DataFormatError(
                f"confusion matrix has shape {cm.shape} but there are {c} class names; "
                f"expected ({c}, {c})"
            )
        if not np.issubdtype(cm.dtype, np.integer) and not np.array_equal(cm, np.round(cm)):
            raise DataFormatError("confusion matrix must hold integer counts")
        cm = cm.astype(np.int64)
        if (cm < 0).any():
            raise DataFormatError("confusion matrix holds negative counts")
        total = int(cm.sum())
        if total == 0:
            raise DataFormatError(
                "no samples to score (empty test set); check that the split has test pixels"
            )
        tp = np.diag(cm).astype(np.float64)
        support = cm.sum(axis=1)
        predicted = cm.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            recall = np.where(support > 0, tp / support, np.nan)
            precision = np.where(predicted > 0, tp / predicted, np.nan)
            f1_den = support + predicted  # = 2TP + FP + FN
            f1 = np.where(f1_den > 0, 2.0 * tp / f1_den, np.nan)
        trace = int(np.trace(cm))
        # Integer arithmetic: kappa = (N*trace - sum r_k c_k) / (N^2 - sum r_k c_k).
        chance = sum(
            int(r) * int(p) for r, p in zip(support.tolist(), predicted.tolist(), strict=True)
        )
        denom = total * total - chance
        kappa = 1.0 if denom == 0 else (total * trace - chance) / denom
        return cls(
            confusion=cm,
            class_names=names,
            oa=trace / total,
            aa=float(np.mean(recall[support > 0])),
            kappa=kappa,
            per_class_accuracy=recall,
            precision=precision,
            recall=recall,
            f1=f1,
            support=support,
        )

    def summary(self) -> str:
        """One line: ``OA 97.06 %  AA 93.48 %  kappa 0.9628 (1,024 pixels)``."""
        return (
            f"OA {100 * self.oa:.2f} %  AA {100 * self.aa:.2f} %  kappa {self.kappa:.4f} "
            f"({self.n_samples:,} pixels)"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes ``None``); per-class lists follow ``class_names``."""
        return {
            "class_names": list(self.class_names),
            "n_samples": self.n_samples,
            "oa": self.oa,
            "aa": _json_float(self.aa),
            "kappa": self.kappa,
            "per_class_accuracy": _json_floats(self.per_class_accuracy),
            "precision": _json_floats(self.precision),
            "recall": _json_floats(self.recall),
            "f1": _json_floats(self.f1),
            "support": self.support.tolist(),
            "confusion": self.confusion.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Metrics:
        """Inverse of :meth:`to_dict`.

        Raises:
            DataFormatError: if a key is missing.
        """
        try:
            return cls(
                confusion=np.asarray(d["confusion"], dtype=np.int64),
                class_names=tuple(d["class_names"]),
                oa=_from_json_float(d["oa"]),
                aa=_from_json_float(d["aa"]),
                kappa=_from_json_float(d["kappa"]),
                per_class_accuracy=_from_json_floats(d["per_class_accuracy"]),
                precision=_from_json_floats(d["precision"]),
                recall=_from_json_floats(d["recall"]),
                f1=_from_json_floats(d["f1"]),
                support=np.asarray(d["support"], dtype=np.int64),
            )
        except KeyError as exc:
            raise DataFormatError(
                f"metrics record lacks the key {exc.args[0]!r}; it was not written by "
                "Metrics.to_dict"
            ) from None


def compute_metrics(y_true: Any, y_pred: Any, *, class_names: Sequence[str]) -> Metrics:
    """Scores predicted class indices against true ones.

    Args:
        y_true: 1-D integer class indices in ``0 .. C-1``.
        y_pred: 1-D integer class indices (e.g. ``argmax`` of logits), same length.
        class_names: The C class names; their count fixes C.

    Raises:
        DataFormatError: for out-of-range indices, mismatched lengths or no samples.
    """
    names = tuple(class_names)
    cm = confusion_matrix(y_true, y_pred, len(names))
    return Metrics.from_confusion(cm, names)


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    present = values[~np.isnan(values)]
    if present.size == 0:
        return math.nan, math.nan
    if present.size == 1:
        return float(present[0]), 0.0
    return float(present.mean()), float(present.std(ddof=1))


@dataclass(frozen=True, eq=False)
class Aggregate:
    """Mean and standard deviation of metrics over ``n`` runs (seeds).

    ``std`` is the sample standard deviation (``ddof=1``) and 0.0 for a single run.
    Per-class figures average only the runs whose test set holds the class
    (``per_class_runs`` counts them); a class absent from every run is NaN.
    """

    n: int
    class_names: tuple[str, ...]
    oa_mean: float
    oa_std: float
    aa_mean: float
    aa_std: float
    kappa_mean: float
    kappa_std: float
    per_class_accuracy_mean: np.ndarray
    per_class_accuracy_std: np.ndarray
    per_class_runs: np.ndarray

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "class_names", tuple(str(n) for n in self.class_names))
        set_(self, "per_class_accuracy_mean", _readonly(self.per_class_accuracy_mean, np.float64))
        set_(self, "per_class_accuracy_std", _readonly(self.per_class_accuracy_std, np.float64))
        set_(self, "per_class_runs", _readonly(self.per_class_runs, np.int64))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Aggregate):
            return NotImplemented
        return _fields_equal(self, other)

    def format(self, field: str, *, digits: int = 2) -> str:
        """Formats ``field`` as percentages, e.g. ``"97.31 ± 0.42"``.

        Args:
            field: ``"oa"``, ``"aa"``, ``"kappa"`` (Kappa × 100) or a class name.
            digits: Decimals after the point.

        Returns:
            ``"mean ± std"`` in percent; ``"n/a"`` when undefined (class never present).

        Raises:
            UnknownNameError: for any other field, with close matches.
        """
        if field in ("oa", "aa", "kappa"):
            mean, std = getattr(self, f"{field}_mean"), getattr(self, f"{field}_std")
        elif field in self.class_names:
            i = self.class_names.index(field)
            mean, std = self.per_class_accuracy_mean[i], self.per_class_accuracy_std[i]
        else:
            valid = ["oa", "aa", "kappa", *self.class_names]
            close = difflib.get_close_matches(field, valid, n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(
                f"unknown metric field {field!r}.{hint} Valid fields: {', '.join(valid)}."
            )
        if math.isnan(mean):
            return "n/a"
        return f"{100 * mean:.{digits}f} ± {100 * std:.{digits}f}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes ``None``)."""
        return {
            "n": self.n,
            "class_names": list(self.class_names),
            "oa": {"mean": self.oa_mean, "std": self.oa_std},
            "aa": {"mean": self.aa_mean, "std": self.aa_std},
            "kappa": {"mean": self.kappa_mean, "std": self.kappa_std},
            "per_class_accuracy": {
                "mean": _json_floats(self.per_class_accuracy_mean),
                "std": _json_floats(self.per_class_accuracy_std),
                "runs": self.per_class_runs.tolist(),
            },
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Aggregate:
        """Inverse of :meth:`to_dict`."""
        try:
            pca = d["per_class_accuracy"]
            return cls(
                n=int(d["n"]),
                class_names=tuple(d["class_names"]),
                oa_mean=_from_json_float(d["oa"]["mean"]),
                oa_std=_from_json_float(d["oa"]["std"]),
                aa_mean=_from_json_float(d["aa"]["mean"]),
                aa_std=_from_json_float(d["aa"]["std"]),
                kappa_mean=_from_json_float(d["kappa"]["mean"]),
                kappa_std=_from_json_float(d["kappa"]["std"]),
                per_class_accuracy_mean=_from_json_floats(pca["mean"]),
                per_class_accuracy_std=_from_json_floats(pca["std"]),
                per_class_runs=np.asarray(pca["runs"], dtype=np.int64),
            )
        except KeyError as exc:
            raise DataFormatError(
                f"aggregate record lacks the key {exc.args[0]!r}; it was not written by "
                "Aggregate.to_dict"
            ) from None


def aggregate(runs: Sequence[Metrics]) -> Aggregate:
    """Mean ± std of OA, AA, Kappa and per-class accuracy over runs (e.g. seeds).

    ``std`` is the sample standard deviation (``ddof=1``) for two or more runs and 0.0
    for one run. Per-class accuracy ignores runs where the class is absent (NaN).

    Raises:
        DataFormatError: if ``runs`` is empty or the runs disagree on the class names.
    """
    runs = list(runs)
    if not runs:
        raise DataFormatError("cannot aggregate zero runs; pass at least one Metrics")
    names = runs[0].class_names
    for i, run in enumerate(runs[1:], start=1):
        if run.class_names != names:
            raise DataFormatError(
                f"run {i} has classes {list(run.class_names)} but run 0 has {list(names)}; "
                "aggregate only runs on the same scene"
            )
    oa = _mean_std(np.array([r.oa for r in runs]))
    aa = _mean_std(np.array([r.aa for r in runs]))
    kappa = _mean_std(np.array([r.kappa for r in runs]))
    per_class = np.stack([r.per_class_accuracy for r in runs])  # (n, C)
    pc = [_mean_std(per_class[:, c]) for c in range(len(names))]
    return Aggregate(
        n=len(runs),
        class_names=names,
        oa_mean=oa[0],
        oa_std=oa[1],
        aa_mean=aa[0],
        aa_std=aa[1],
        kappa_mean=kappa[0],
        kappa_std=kappa[1],
        per_class_accuracy_mean=np.array([m for m, _ in pc]),
        per_class_accuracy_std=np.array([s for _, s in pc]),
        per_class_runs=(~np.isnan(per_class)).sum(axis=0),
    )
