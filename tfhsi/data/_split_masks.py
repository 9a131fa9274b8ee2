"""User label maps (``.npy`` / ``.mat``) for ``mask:TRAIN[,TEST[,VAL]]`` splits; not public.

Validation never comes from test pixels: it is the VAL map when one is given, else a seeded
share of each class's *training* pixels (:func:`carve_val`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfhsi.errors import ConfigError, DataFormatError, SplitError

_NUMERIC = "biuf"


def _mat_arrays(path: Path) -> dict[str, np.ndarray]:
    """All 2-D numeric variables of a MAT file (v5 via scipy, v7.3 via h5py)."""
    import scipy.io

    try:
        raw = scipy.io.loadmat(path)
    except NotImplementedError:  # MAT v7.3 is HDF5; its arrays are stored transposed
        import h5py

        with h5py.File(path, "r") as f:
            return {
                k: np.asarray(v).T
                for k, v in f.items()
                if isinstance(v, h5py.Dataset) and v.ndim == 2 and v.dtype.kind in _NUMERIC
            }
    except Exception as e:
        raise DataFormatError(
            f"cannot read split mask {path} as a MAT file ({e}); save it with "
            f"scipy.io.savemat or MATLAB's save, or as .npy"
        ) from e
    return {
        k: v
        for k, v in raw.items()
        if not k.startswith("__")
        and isinstance(v, np.ndarray)
        and v.ndim == 2
        and v.dtype.kind in _NUMERIC
    }


def read_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """Reads a label map and returns ``map != 0`` as a bool ``(H, W)`` array.

    A ``.mat`` file must hold one 2-D numeric variable, or several of which exactly one has
    shape ``shape``.

    Raises:
        ConfigError: the file is missing or has another extension.
        DataFormatError: unreadable file, no / ambiguous variable, wrong shape, NaN values.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"split mask file {path} does not exist; check the path in mask:...")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as e:
            raise DataFormatError(
                f"cannot read split mask {path} as .npy ({e}); save it with numpy.save"
            ) from e
        if arr.dtype.kind not in _NUMERIC:
            raise DataFormatError(
                f"split mask {path} has dtype {arr.dtype}; save an integer or bool array"
            )
    elif suffix == ".mat":
        found = _mat_arrays(path)
        if len(found) > 1:
            same = {k: v for k, v in found.items() if v.shape == tuple(shape)}
            found = same if len(same) == 1 else found
        if not found:
            raise DataFormatError(
                f"split mask {path} holds no 2-D numeric variable; save the label map as one "
                f"(H, W) integer array"
            )
        if len(found) > 1:
            raise DataFormatError(
                f"split mask {path} holds several 2-D variables ({', '.join(sorted(found))}) "
                f"and none is singled out by shape {tuple(shape)}; save only the label map"
            )
        arr = next(iter(found.values()))
    else:
        raise ConfigError(
            f"split mask {path} has extension {path.suffix!r}; use a .npy or .mat label map"
        )
    if arr.shape != tuple(shape):
        raise DataFormatError(
            f"split mask {path} has shape {arr.shape} but the scene labels have shape "
            f"{tuple(shape)}; the mask must be an (H, W) map of the same scene"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DataFormatError(f"split mask {path} contains NaN or inf; use 0 for unused pixels")
    return np.ascontiguousarray(arr != 0)


def _class(c: int, n: int, names: Sequence[str] | None) -> str:
    if names is not None:
        return f"'{names[c - 1]}' (label {c}, {n} training pixels)"
    return f"label {c} ({n} training pixels)"


def carve_val(
    labels: np.ndarray,
    train: np.ndarray,
    val_fraction: float,
    rng: np.random.Generator,
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Per class, ``round(val_fraction * n_train)`` of its training pixels (at most ``n - 1``).

    Returns the validation mask (a subset of ``train``) and the classes that keep all their
    training pixels because their share rounds to 0 (or they have a single one).
    """
    flat, in_train = labels.ravel(), train.ravel()
    val = np.zeros(flat.size, bool)
    short: list[str] = []
    for c in range(1, int(flat.max(initial=0)) + 1):
        idx = np.flatnonzero(in_train & (flat == c))
        if idx.size == 0:
            continue
        v = min(round(val_fraction * idx.size), idx.size - 1)
        if v <= 0:
            short.append(_class(c, idx.size, names))
            continue
        val[rng.permutation(idx)[:v]] = True
    return val.reshape(labels.shape), short


def _check_disjoint(maps: list[tuple[Path, np.ndarray]]) -> None:
    for i, (path_a, a) in enumerate(maps):
        for path_b, b in maps[i + 1 :]:
            if overlap := int((a & b).sum()):
                raise SplitError(
                    f"split masks {path_a} and {path_b} overlap on {overlap} pixels; a pixel "
                    f"may be in one of train, test and val only"
                )


def mask_masks(
    labels: np.ndarray,
    train_path: Path | None,
    test_path: Path | None,
    val_path: Path | None,
    *,
    val_fraction: float,
    seed: int,
    rng: np.random.Generator,
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Returns ``(train, val, test, notes)`` for ``mask:TRAIN[,TEST[,VAL]]``.

    Unlabelled pixels in the maps are ignored (with a note). Without ``TEST`` every labelled
    pixel outside ``TRAIN`` (and ``VAL``) is test. Without ``VAL``, validation is carved from
    the training pixels (:func:`carve_val`, ``val_fraction`` per class, drawn with ``rng``),
    never from test; the notes say how many pixels and which seed.
    """
    assert train_path is not None
    labelled = labels > 0
    notes: list[str] = []
    given = [(train_path, read_mask(train_path, labels.shape))]
    for path in (test_path, val_path):
        if path is not None:
            given.append((path, read_mask(path, labels.shape)))
    _check_disjoint(given)
    for path, m in given:
        if off := int((m & ~labelled).sum()):
            notes.append(f"{off} pixels of {path} are unlabelled in the ground truth; ignored")
    maps = {path: m & labelled for path, m in given}
    train = maps[train_path]
    if not train.any():
        raise SplitError(f"split mask {train_path} selects no labelled pixel; check the file")
    if val_path is not None:
        val = maps[val_path]
        if not val.any():
            raise SplitError(
                f"split mask {val_path} (VAL) selects no labelled pixel; check the file, or "
                f"drop it to carve validation from the training pixels"
            )
        notes.append(
            f"validation: the pixels of {val_path} ({int(val.sum())} pixels); none taken from "
            f"the training or test pixels"
        )
    elif val_fraction > 0:
        val, short = carve_val(labels, train, val_fraction, rng, names)
        train = train & ~val
        notes.append(
            f"validation: {100 * val_fraction:g} % of the training pixels of each class "
            f"({int(val.sum())} pixels, from {train_path}), drawn with seed {seed}; no test "
            f"pixel is used to pick the model"
        )
        if short:
            which = (
                f"classes {', '.join(short)} have" if len(short) > 1 else f"class {short[0]} has"
            )
            notes.append(
                f"{which} too few training pixels to give one to validation; all of them stay "
                f"in training"
            )
    else:
        val = np.zeros_like(train)
        notes.append(
            "validation: none (val_fraction is 0 and no VAL map); no epoch is picked on "
            "held-out pixels, training keeps its last epoch"
        )
    # without TEST: every labelled pixel outside the TRAIN map (carved val included) and VAL
    test = maps[test_path] if test_path is not None else labelled & ~maps[train_path] & ~val
    if not test.any():
        where = ", ".join(str(p) for p, _ in given)
        raise SplitError(f"split mask {where} leaves no labelled test pixel; check the maps")
    return train, val, test, notes
