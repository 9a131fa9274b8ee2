"""Reading scenes from MAT files (v5 via scipy, v7.3/HDF5 via h5py) with checks.

Every failure is a :class:`~tfhsi.errors.TfhsiError` naming the file and the fix:
missing files, corrupt or truncated files, wrong keys, cube/label shape mismatch,
non-numeric data, NaN/Inf values and label values outside the class list.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tfhsi.data.download import (
    mismatch_message,
    require_file,
    resolve_data_dir,
    sha256_file,
)
from tfhsi.data.scene_data import SceneData
from tfhsi.data.scenes import Scene, SceneFile, get_scene
from tfhsi.errors import ChecksumError, DataFormatError, storage_error


def read_mat_array(
    path: Path, key: str, *, ndim: int, scene: str = "SCENE", fix: str | None = None
) -> np.ndarray:
    """Reads one array from a MAT file (v5 or v7.3) as a C-contiguous numpy array.

    ``key`` is matched exactly, then case-insensitively; failing both (or when it is
    empty), the file's only numeric array with ``ndim`` dimensions is taken. v7.3 files
    store MATLAB's column-major arrays with reversed axes, which are transposed back.
    ``scene`` names the scene in the fix of an error message; ``fix`` replaces that fix
    (for files that are not a registered scene's).
    """
    redownload = (
        fix or f"Re-download it with `tfhsi data download {scene} --force` or check the file."
    )
    published = (
        fix or f"Use the file published for this scene (`tfhsi data download {scene} --force`)."
    )
    import h5py
    from scipy.io.matlab import MatReadError

    path = Path(path)
    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                names = [k for k in f if isinstance(f[k], h5py.Dataset)]
                name = _pick_key(path, key, {k: f[k].ndim for k in names}, ndim, fix=fix)
                array = np.asarray(f[name][()]).T
        else:
            import scipy.io

            variables = scipy.io.loadmat(path)
            arrays = {
                k: v
                for k, v in variables.items()
                if isinstance(v, np.ndarray) and not k.startswith("__")
            }
            name = _pick_key(path, key, {k: v.ndim for k, v in arrays.items()}, ndim, fix=fix)
            array = arrays[name]
    except DataFormatError:
        raise
    except PermissionError as exc:
        raise storage_error(exc, path, writing=False) or exc from None
    except (
        OSError,
        ValueError,
        TypeError,
        NotImplementedError,
        KeyError,
        EOFError,
        MatReadError,  # e.g. an empty file
    ) as exc:
        raise DataFormatError(
            f"cannot read {path}: not a valid MAT file or truncated ({type(exc).__name__}: {exc}). "
            + redownload
        ) from exc
    if array.ndim != ndim:
        raise DataFormatError(
            f"{path}: variable {name!r} has {array.ndim} dimensions, expected {ndim} "
            f"({'H×W×B cube' if ndim == 3 else 'H×W label map'}). " + published
        )
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise DataFormatError(
            f"{path}: variable {name!r} has dtype {array.dtype}; expected real numbers. "
            + published
        )
    return np.ascontiguousarray(array)


def _pick_key(
    path: Path, key: str, ndims: dict[str, int], ndim: int, *, fix: str | None = None
) -> str:
    if key and key in ndims:
        return key
    folded = {k.lower(): k for k in ndims}
    if key and key.lower() in folded:
        return folded[key.lower()]
    candidates = [k for k, d in ndims.items() if d == ndim]
    if len(candidates) == 1:
        return candidates[0]
    found = ", ".join(f"{k} ({d}-D)" for k, d in ndims.items()) or "none"
    what = f"no variable {key!r}" if key else f"no single {ndim}-D variable"
    raise DataFormatError(
        f"{path}: {what} (variables found: {found}). "
        + (
            fix
            or "Use the file published for this scene, or rename the variable to the expected key."
        )
    )


def check_cube(cube: np.ndarray, path: Path) -> None:
    """Rejects cubes with NaN or Inf values, naming the affected bands."""
    if np.issubdtype(cube.dtype, np.floating):
        bad = ~np.isfinite(cube).all(axis=(0, 1))
        if bad.any():
            bands = np.flatnonzero(bad)
            shown = ", ".join(str(b) for b in bands[:10]) + (" …" if bands.size > 10 else "")
            raise DataFormatError(
                f"{path}: cube has NaN/Inf values in {bands.size} band(s) (0-based: {shown}). "
                "Remove those bands or fill the values before using the scene."
            )


def map_labels(
    raw: np.ndarray, scene_name: str, class_ids: tuple[int, ...], path: Path
) -> np.ndarray:
    """Maps raw label values to 0 (unlabelled) and 1..C, rejecting unknown values."""
    if np.issubdtype(raw.dtype, np.floating) and (
        not np.isfinite(raw).all() or not np.array_equal(raw, np.round(raw))
    ):
        raise DataFormatError(
            f"{path}: labels must be whole numbers (found fractions or NaN); use the scene's own "
            "ground-truth file (0 = unlabelled, classes 1..C)."
        )
    raw = raw.astype(np.int64)
    lookup_size = max(int(raw.max(initial=0)), max(class_ids)) + 1
    if raw.min(initial=0) < 0:
        raise DataFormatError(
            f"{path}: labels contain negative values; 0 = unlabelled, classes ≥ 1."
        )
    lookup = np.full(lookup_size, -1, dtype=np.int64)
    lookup[0] = 0
    for index, class_id in enumerate(class_ids, start=1):
        lookup[class_id] = index
    labels = lookup[raw]
    if (labels < 0).any():
        unknown = sorted(set(np.unique(raw[labels < 0]).tolist()))
        raise DataFormatError(
            f"{path}: label values {unknown[:10]} are not classes of {scene_name} "
            f"(expected 0 and {list(class_ids)}). Use the scene's own ground-truth file."
        )
    return labels.astype(np.int32)


def _verified_path(scene: Scene, file: SceneFile, data_dir: Path, verify: bool) -> tuple[Path, str]:
    path = require_file(scene, file, data_dir)
    digest = sha256_file(path)
    if verify and file.sha256 is not None and digest != file.sha256:
        raise ChecksumError(mismatch_message(scene, file, path, digest))
    return path, digest


def load_labels(
    name: str, *, data_dir: str | os.PathLike[str] | None = None, verify: bool = True
) -> tuple[np.ndarray, Path, str]:
    """Loads a scene's ground truth only: (labels 0..C, path, sha256)."""
    scene = get_scene(name)
    root = resolve_data_dir(data_dir)
    path, digest = _verified_path(scene, scene.labels, root, verify)
    raw = read_mat_array(path, scene.labels.key, ndim=2, scene=scene.name)
    return map_labels(raw, scene.name, scene.raw_class_ids(), path), path, digest


def load_scene(
    name: str, *, data_dir: str | os.PathLike[str] | None = None, verify: bool = True
) -> SceneData:
    """Loads a registered scene's cube and labels from the data directory.

    Args:
        name: Scene registry name (``indian_pines``).
        data_dir: Data directory; default ``$TFHSI_DATA_DIR`` or the user cache.
        verify: Compare sha256 with the published checksum where one is known.

    Raises:
        DatasetNotFoundError, ChecksumError, DataFormatError: with the fix in the message.
    """
    scene = get_scene(name)
    root = resolve_data_dir(data_dir)
    cube_path, cube_sha = _verified_path(scene, scene.cube, root, verify)
    labels, labels_path, labels_sha = load_labels(name, data_dir=root, verify=verify)
    cube = read_mat_array(cube_path, scene.cube.key, ndim=3, scene=scene.name)
    if cube.shape[:2] != labels.shape:
        raise DataFormatError(
            f"{scene.name}: cube {cube_path.name} is {'×'.join(map(str, cube.shape))} but labels "
            f"{labels_path.name} are {'×'.join(map(str, labels.shape))}; they must share H×W. "
            "Check that both files belong to the same scene."
        )
    check_cube(cube, cube_path)
    return SceneData(
        name=scene.name,
        cube=cube,
        labels=labels,
        class_names=scene.class_names,
        rgb_bands=scene.rgb_bands,
        synthetic=False,
        sources={cube_path.name: cube_sha, labels_path.name: labels_sha},
    )
