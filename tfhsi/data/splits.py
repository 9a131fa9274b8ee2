"""Train / val / test splits of a labelled scene, reproducible from a seed.

Spec grammar (the string is saved with the run):

* ``random:F`` -- per class, ``round(F * n)`` pixels (at least 1, at most ``n - 1``) to train,
  ``0 < F < 1``.
* ``random:N`` -- per class, ``N`` pixels (integer >= 1) to train.
* ``disjoint:F[:tile=T][:guard=test|train]`` -- whole ``T x T`` tiles (default 12) to train /
  val / test, stratified as well as tiles allow, then a guard band of ``patch_size // 2`` pixels
  so that no training patch covers a test pixel (leakage 0). The band is taken from the test
  pixels by default (``guard=train`` takes it from train and val instead, which costs most of
  the training pixels on small scenes). See :mod:`tfhsi.data._split_disjoint`.
* ``mask:TRAIN[,TEST[,VAL]]`` -- user label maps (``.npy`` or ``.mat``, same ``H x W``,
  0 = unused; the form published fixed training sets come in); without ``TEST`` every other
  labelled pixel is test. Relative paths are taken from the current directory; paths may not
  contain commas.

Validation pixels never come from test pixels:

* ``random``: ``val_fraction`` of each class's labelled pixels, drawn from the pixels not in
  train; the rest is test.
* ``disjoint``: whole tiles for ``val_fraction`` of each class, outside the train tiles; the
  guard band also separates them from test.
* ``mask``: the ``VAL`` map when given; otherwise ``val_fraction`` of each class's *training*
  pixels, drawn with the seed (a class whose share rounds to 0 keeps all its pixels in
  training). The split's notes say how many pixels and which seed.

With ``val_fraction=0`` (and no ``VAL`` map) there is no validation set:
:meth:`Split.selection_subset` is None and training keeps its last epoch.

Pixel-random splits leak: a test pixel's patch overlaps training patches, so test accuracy is
optimistic. :func:`leakage` measures it for every split; it is 0 for ``disjoint``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfhsi.atomic import atomic_path
from tfhsi.data._split_disjoint import DEFAULT_TILE, GUARDS, dilate, disjoint_masks
from tfhsi.data._split_masks import mask_masks
from tfhsi.errors import ConfigError, DataFormatError, SplitError

__all__ = ["Split", "SplitSpec", "leakage", "make_split", "parse_split_spec", "subsample_test"]

GRAMMAR = (
    "random:F (0<F<1, e.g. random:0.1), random:N (integer >= 1 pixels per class, e.g. "
    "random:50), disjoint:F[:tile=T][:guard=test|train] (e.g. disjoint:0.1:tile=16), "
    "mask:TRAIN[,TEST[,VAL]] (.npy or .mat label maps, e.g. mask:train.npy,test.npy; "
    "validation is carved from TRAIN unless VAL is given)"
)
SUBSETS = ("train", "val", "test")
_FORMAT = "tfhsi-split-v1"


@dataclass(frozen=True)
class SplitSpec:
    """A parsed split spec; exactly the fields of its ``kind`` are set."""

    kind: str  # "random" | "disjoint" | "mask"
    fraction: float | None = None
    count: int | None = None
    tile: int | None = None
    guard: str | None = None
    train_path: Path | None = None
    test_path: Path | None = None
    val_path: Path | None = None


def _bad(spec: str, why: str) -> ConfigError:
    return ConfigError(f"split spec {spec!r} is invalid ({why}); accepted forms: {GRAMMAR}")


def _fraction(spec: str, text: str) -> float:
    try:
        f = float(text)
    except ValueError:
        raise _bad(spec, f"{text!r} is not a number") from None
    if not 0.0 < f < 1.0:
        raise _bad(spec, f"fraction {text} is not strictly between 0 and 1")
    return f


def parse_split_spec(spec: str) -> SplitSpec:
    """Parses a split spec string (grammar in the module docstring).

    Raises:
        ConfigError: malformed spec; the message lists the accepted forms.
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise _bad(str(spec), "expected KIND:ARGS")
    kind, _, arg = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind == "random":
        a = arg.strip()
        if a.isascii() and a.isdigit():  # not "²": isdigit() accepts it, int() does not
            n = int(a)
            if n < 1:
                raise _bad(spec, "the per-class count must be >= 1")
            return SplitSpec("random", count=n)
        return SplitSpec("random", fraction=_fraction(spec, a))
    if kind == "disjoint":
        head, *opts = arg.split(":")
        tile, guard = DEFAULT_TILE, GUARDS[0]
        for opt in opts:
            key, _, val = (p.strip() for p in opt.partition("="))
            if key == "tile" and val.isascii() and val.isdigit() and int(val) >= 2:
                tile = int(val)
            elif key == "guard" and val in GUARDS:
                guard = val
            else:
                raise _bad(
                    spec, f"bad option {opt!r}; options are tile=T (T >= 2), guard=test|train"
                )
        return SplitSpec("disjoint", fraction=_fraction(spec, head.strip()), tile=tile, guard=guard)
    if kind == "mask":
        parts = [p.strip() for p in arg.split(",")]
        if not 1 <= len(parts) <= 3 or not all(parts):
            raise _bad(spec, "expected one to three comma-separated file paths TRAIN,TEST,VAL")
        test = Path(parts[1]) if len(parts) >= 2 else None
        val_map = Path(parts[2]) if len(parts) == 3 else None
        return SplitSpec("mask", train_path=Path(parts[0]), test_path=test, val_path=val_map)
    raise _bad(spec, f"unknown kind {kind!r}")


def leakage(train: np.ndarray, test: np.ndarray, patch_size: int) -> float:
    """Share of test pixels whose centre lies inside at least one training patch.

    A ``patch_size`` patch centred on a training pixel covers every pixel within Chebyshev
    distance ``patch_size // 2``. Returns 0.0 when there are no test pixels.
    """
    train, test = np.asarray(train, bool), np.asarray(test, bool)
    if train.shape != test.shape:
        raise ValueError(f"train {train.shape} and test {test.shape} masks differ in shape")
    n_test = int(test.sum())
    if n_test == 0:
        return 0.0
    covered = dilate(train, int(patch_size) // 2)
    return float((covered & test).sum()) / n_test


@dataclass(frozen=True, eq=False)
class Split:
    """Boolean ``(H, W)`` masks of the train / val / test pixels, with how they were made.

    Attributes:
        train, val, test: Disjoint masks over labelled pixels (``val`` may be all False).
        spec: The spec string the split was made from (``"disjoint:0.1"``).
        seed: Seed of the random generator.
        patch_size: Patch size the guard band and :meth:`leakage` refer to.
        notes: Things the user should know (classes without training pixels, ignored pixels,
            where the validation pixels come from).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    spec: str
    seed: int
    patch_size: int
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        masks = [np.asarray(getattr(self, s), bool) for s in SUBSETS]
        if masks[0].ndim != 2 or any(m.shape != masks[0].shape for m in masks):
            raise ValueError(
                f"split masks must share one (H, W) shape; got {[m.shape for m in masks]}"
            )
        if (
            (masks[0] & masks[1]).any()
            or (masks[0] & masks[2]).any()
            or (masks[1] & masks[2]).any()
        ):
            raise ValueError("split masks overlap; train, val and test must be disjoint")
        for name, m in zip(SUBSETS, masks, strict=True):
            object.__setattr__(self, name, m)

    def mask(self, subset: str) -> np.ndarray:
        """The mask of ``"train"``, ``"val"`` or ``"test"``."""
        if subset not in SUBSETS:
            raise ConfigError(f"unknown split subset {subset!r}; use one of {', '.join(SUBSETS)}")
        return getattr(self, subset)

    def centers(self, subset: str) -> np.ndarray:
        """``(N, 2)`` int32 row/col of the subset's pixels, in row-major order."""
        return np.argwhere(self.mask(subset)).astype(np.int32)

    def selection_subset(self) -> str | None:
        """The subset that picks the best epoch: ``"val"``, or None without validation pixels.

        Never ``"test"``: without validation pixels (``val_fraction=0`` and no ``VAL`` map)
        training keeps its last epoch (:func:`tfhsi.train.fit.train_model` with ``val=None``).
        """
        return "val" if self.val.any() else None

    def val_source(self) -> str:
        """Where the validation pixels come from, from the spec's kind.

        ``"none"`` (no validation pixels), ``"train"`` (carved from the ``mask`` training
        pixels), ``"mask"`` (the ``VAL`` map), ``"rest"`` (``random``: from the non-training
        pixels), ``"tiles"`` (``disjoint``: whole tiles outside train) or ``"unknown"`` (a
        spec that does not parse).
        """
        if not self.val.any():
            return "none"
        try:
            sp = parse_split_spec(self.spec)
        except ConfigError:  # a Split built by hand from masks
            return "unknown"
        if sp.kind == "mask":
            return "mask" if sp.val_path is not None else "train"
        return "rest" if sp.kind == "random" else "tiles"

    def leakage(self) -> float:
        """:func:`leakage` of this split's train and test masks at its ``patch_size``."""
        return leakage(self.train, self.test, self.patch_size)

    def summary(
        self, labels: np.ndarray, class_names: Sequence[str] | None = None
    ) -> list[dict[str, object]]:
        """Per class: label, name, labelled pixels, train/val/test/unused counts, train fraction.

        ``unused`` counts labelled pixels in no subset (the guard band of ``disjoint``, pixels
        outside user masks); ``train_fraction`` is the achieved share ``train / labelled``;
        ``val_from`` is :meth:`val_source` (the same on every row).
        """
        labels = np.asarray(labels)
        n_classes = len(class_names) if class_names is not None else int(labels.max(initial=0))
        rows: list[dict[str, object]] = []
        val_from = self.val_source()
        for c in range(1, n_classes + 1):
            in_c = labels == c
            total = int(in_c.sum())
            counts = {s: int((getattr(self, s) & in_c).sum()) for s in SUBSETS}
            rows.append(
                {
                    "label": c,
                    "name": class_names[c - 1] if class_names is not None else f"class {c}",
                    "labelled": total,
                    **counts,
                    "unused": total - sum(counts.values()),
                    "train_fraction": counts["train"] / total if total else 0.0,
                    "val_from": val_from,
                }
            )
        return rows

    def save(self, path: str | Path) -> Path:
        """Atomically writes the split to an ``.npz`` file (masks, spec, seed, patch size)."""
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                format=np.array(_FORMAT),
                train=self.train,
                val=self.val,
                test=self.test,
                spec=np.array(self.spec),
                seed=np.array(self.seed, dtype=np.int64),
                patch_size=np.array(self.patch_size, dtype=np.int64),
                notes=np.array(self.notes, dtype=str),
            )
        return path

    @classmethod
    def load(cls, path: str | Path) -> Split:
        """Reads a split written by :meth:`save`.

        Raises:
            ConfigError: the file does not exist.
            DataFormatError: the file is not a tfhsi split.
        """
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"split file {path} does not exist; check the path")
        fix = "point to a split.npz written by tfhsi (Split.save)"
        try:
            z = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise DataFormatError(f"cannot read split file {path} ({e}); {fix}") from e
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise DataFormatError(f"{path} holds a single array, not a tfhsi split; {fix}")
        with z:
            if "format" not in z.files or str(z["format"]) != _FORMAT:
                raise DataFormatError(f"{path} is not a tfhsi split ({_FORMAT}); {fix}")
            try:
                return cls(
                    train=z["train"],
                    val=z["val"],
                    test=z["test"],
                    spec=str(z["spec"]),
                    seed=int(z["seed"]),
                    patch_size=int(z["patch_size"]),
                    notes=tuple(str(n) for n in z["notes"]),
                )
            except (KeyError, ValueError, OSError, zipfile.BadZipFile) as e:
                raise DataFormatError(f"split file {path} is damaged ({e}); {fix}") from e


def _check_labels(labels: np.ndarray, class_names: Sequence[str] | None) -> tuple[np.ndarray, int]:
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "biu":
        raise DataFormatError(
            f"split labels must be a 2-D integer map, got shape {labels.shape} dtype "
            f"{labels.dtype}; pass SceneData.labels"
        )
    top = int(labels.max(initial=0))
    if labels.dtype.kind == "i" and int(labels.min(initial=0)) < 0:
        raise DataFormatError("split labels contain negative values; use 0 for unlabelled")
    n_classes = len(class_names) if class_names is not None else top
    if top > n_classes:
        raise DataFormatError(
            f"split labels go up to {top} but only {n_classes} class names were given; pass "
            f"the scene's class names"
        )
    return labels.astype(np.int64), n_classes


def _name(c: int, n: int, names: Sequence[str] | None) -> str:
    if names is not None:
        return f"'{names[c - 1]}' (label {c}, {n} labelled pixels)"
    return f"label {c} ({n} labelled pixels)"


def _random_masks(
    labels: np.ndarray,
    n_classes: int,
    sp: SplitSpec,
    val_fraction: float,
    rng: np.random.Generator,
    names: Sequence[str] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class random draws of train, then val from the rest; the remainder is test."""
    flat = labels.ravel()
    train, val, test = (np.zeros(flat.size, bool) for _ in range(3))
    too_small: list[str] = []
    for c in range(1, n_classes + 1):
        idx = np.flatnonzero(flat == c)
        n = idx.size
        if n == 0:
            continue
        if sp.count is not None:
            k = sp.count
            if n < k + 1:
                too_small.append(_name(c, n, names))
                continue
        else:
            if n < 2:
                too_small.append(_name(c, n, names))
                continue
            k = min(max(round(sp.fraction * n), 1), n - 1)  # type: ignore[operator]
        idx = idx[rng.permutation(idx.size)]
        v = min(round(val_fraction * n), n - k - 1)
        train[idx[:k]] = True
        val[idx[k : k + v]] = True
        test[idx[k + v :]] = True
    if too_small:
        need = sp.count + 1 if sp.count is not None else 2
        form = f"random:{sp.count}" if sp.count is not None else f"random:{sp.fraction}"
        raise SplitError(
            f"{form} needs at least {need} labelled pixels per class (training plus at least one "
            f"test pixel), but class {', '.join(too_small)} has fewer; use a smaller N, the "
            f"fraction form (e.g. random:0.1), or drop the class from the labels"
        )
    return train.reshape(labels.shape), val.reshape(labels.shape), test.reshape(labels.shape)


def make_split(
    labels: np.ndarray,
    spec: str,
    *,
    seed: int,
    patch_size: int = 1,
    val_fraction: float = 0.0,
    class_names: Sequence[str] | None = None,
    test_pixels: int | None = None,
) -> Split:
    """Makes a :class:`Split` of the labelled pixels of ``labels`` from a spec string.

    Args:
        labels: ``(H, W)`` integer map, 0 = unlabelled, classes ``1..C``.
        spec: See the module docstring (``"random:0.1"``, ``"disjoint:0.1"``, ``"mask:a.npy"``).
        seed: Seed of the ``numpy.random.Generator``; the same seed gives the same masks.
        patch_size: Side of the model's input patch (guard band of ``disjoint``, leakage).
        val_fraction: Share of each class's pixels for validation: of its labelled pixels
            (``random``, ``disjoint``) or of its training pixels (``mask`` without ``VAL``;
            ignored with ``VAL``).
        class_names: Names of classes ``1..C``, used in messages and to fix ``C``.
        test_pixels: Keep only this many test pixels (:func:`subsample_test`); the rest
            are left unused. None keeps them all.

    Raises:
        ConfigError: malformed spec or options.
        SplitError: a class is too small or the masks conflict.
        DataFormatError: labels or mask files are not usable.
    """
    sp = parse_split_spec(spec)
    if isinstance(patch_size, bool) or not isinstance(patch_size, int | np.integer):
        raise ConfigError(f"patch_size must be an integer >= 1, got {patch_size!r}")
    if patch_size < 1:
        raise ConfigError(f"patch_size must be an integer >= 1, got {patch_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    patch_size, seed = int(patch_size), int(seed)
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if test_pixels is not None and (isinstance(test_pixels, bool) or int(test_pixels) < 1):
        raise ConfigError(f"test_pixels must be an integer >= 1 or None, got {test_pixels!r}")
    if sp.fraction is not None and sp.fraction + val_fraction >= 1.0:
        raise ConfigError(
            f"split {spec!r} with val_fraction {val_fraction} leaves no test pixels; "
            f"make the train fraction plus val_fraction smaller than 1"
        )
    labels, n_classes = _check_labels(labels, class_names)
    if not (labels > 0).any():
        raise SplitError("the label map has no labelled pixel (all 0); check the ground truth")
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    if sp.kind == "random":
        train, val, test = _random_masks(labels, n_classes, sp, val_fraction, rng, class_names)
    elif sp.kind == "disjoint":
        names = [_name(c, int((labels == c).sum()), class_names) for c in range(1, n_classes + 1)]
        train, val, test, notes = disjoint_masks(
            labels,
            n_classes,
            fraction=sp.fraction,  # type: ignore[arg-type]
            val_fraction=val_fraction,
            tile=sp.tile,  # type: ignore[arg-type]
            guard=sp.guard,  # type: ignore[arg-type]
            patch_size=patch_size,
            rng=rng,
            names=names,
        )
    else:
        train, val, test, notes = mask_masks(
            labels,
            sp.train_path,
            sp.test_path,
            sp.val_path,
            val_fraction=val_fraction,
            seed=seed,
            rng=rng,
            names=class_names,
        )
    for subset, mask in (("training", train), ("test", test)):
        if not mask.any():
            raise SplitError(
                f"split {spec!r} leaves no {subset} pixel on this {labels.shape[0]}x"
                f"{labels.shape[1]} label map (patch {patch_size}); use a smaller tile=, a "
                f"smaller patch, or another split form"
            )
    split = Split(train, val, test, spec.strip(), seed, patch_size, tuple(notes))
    return split if test_pixels is None else subsample_test(split, labels, int(test_pixels))


def subsample_test(split: Split, labels: np.ndarray, n: int) -> Split:
    """``split`` with ``n`` of its test pixels, drawn per class in proportion to the class's
    test pixels (largest remainders; each class keeps at least one while ``n`` allows), from
    the split's seed. The others become unused, and a note says so. Quick runs use it: their
    figures rest on fewer pixels, and ``tfhsi evaluate`` with the saved split reproduces them.
    """
    total = int(split.test.sum())
    if n >= total:
        return split
    labels = np.asarray(labels)
    classes = [c for c in np.unique(labels[split.test]) if c > 0]
    counts = np.array([int((split.test & (labels == c)).sum()) for c in classes])
    share = counts * (n / total)
    quota = np.minimum(np.floor(share).astype(int), counts)
    if n >= len(classes):
        quota = np.maximum(quota, 1)
    order = np.argsort(-(share - np.floor(share)), kind="stable")
    for i in order:  # largest remainders first, until the quotas sum to n
        if quota.sum() >= n:
            break
        if quota[i] < counts[i]:
            quota[i] += 1
    while quota.sum() > n:  # minimums pushed it over: take from the largest classes
        quota[int(np.argmax(quota))] -= 1
    rng = np.random.default_rng([split.seed, 7])
    test = np.zeros_like(split.test)
    for c, k in zip(classes, quota, strict=True):
        where = np.flatnonzero((split.test & (labels == c)).ravel())
        test.ravel()[rng.choice(where, size=int(k), replace=False)] = True
    note = (
        f"test: {n:,} of the {total:,} test pixels, drawn per class with seed {split.seed} "
        "(test_pixels); the others are unused"
    )
    return Split(
        split.train, split.val, test, split.spec, split.seed, split.patch_size,
        (*split.notes, note),
    )  # fmt: skip
