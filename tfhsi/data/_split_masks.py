"""Reading user label maps (``.npy`` / ``.mat``) for ``mask:TRAIN[,TEST]`` splits; not public."""

from __future__ import annotations

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


def _draw_val(
    labels: np.ndarray, pool: np.ndarray, val_fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Per class, ``round(val_fraction * n)`` pixels of ``pool`` (capped by what it holds)."""
    flat, in_pool = labels.ravel(), pool.ravel()
    val = np.zeros(flat.size, bool)
    for c in range(1, int(flat.max(initial=0)) + 1):
        in_c = flat == c
        idx = np.flatnonzero(in_c & in_pool)
        v = min(round(val_fraction * int(in_c.sum())), idx.size)
        val[rng.permutation(idx)[:v]] = True
    return val.reshape(labels.shape)


def mask_masks(
    labels: np.ndarray,
    train_path: Path | None,
    test_path: Path | None,
    val_fraction: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Returns ``(train, val, test, notes)`` for ``mask:TRAIN[,TEST]``.

    Unlabelled pixels in the maps are ignored (with a note). Val is drawn per class from the
    labelled pixels in neither map (from all non-train ones when TEST is omitted).
    """
    assert train_path is not None
    labelled = labels > 0
    notes: list[str] = []
    train = read_mask(train_path, labels.shape)
    test = read_mask(test_path, labels.shape) if test_path is not None else None
    if test is not None and (overlap := int((train & test).sum())):
        raise SplitError(
            f"split masks {train_path} and {test_path} overlap on {overlap} pixels; "
            f"a pixel may be in train or test, not both"
        )
    for path, m in ((train_path, train), (test_path, test)):
        if m is not None and (off := int((m & ~labelled).sum())):
            notes.append(f"{off} pixels of {path} are unlabelled in the ground truth; ignored")
    train &= labelled
    if not train.any():
        raise SplitError(f"split mask {train_path} selects no labelled pixel; check the file")
    # val comes from the labelled pixels in neither map (all non-train ones without TEST)
    pool = labelled & ~train if test is None else labelled & ~train & ~test
    val = _draw_val(labels, pool, val_fraction, rng)
    test = labelled & ~train & ~val if test is None else test & labelled
    if not test.any():
        where = train_path if test_path is None else f"{train_path} and {test_path}"
        raise SplitError(f"split mask {where} leaves no labelled test pixel; check the maps")
    return train, val, test, notes
