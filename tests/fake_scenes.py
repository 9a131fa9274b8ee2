"""Seeded generators of tiny fake scene files with the real file names, keys and label ids.

Like torchgeo's ``tests/data/<ds>/data.py``: the loader runs on files that look like
the published ones (MAT v5 by default, v7.3/HDF5 on request) but are a few KB.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import scipy.io

from tfhsi.data.scenes import get_scene

FAKE_SHAPE = (12, 10, 8)


def fake_arrays(name: str, *, seed: int = 0, shape: tuple[int, int, int] = FAKE_SHAPE):
    scene = get_scene(name)
    rng = np.random.default_rng(seed)
    cube = rng.integers(0, 8000, size=shape, dtype=np.uint16)
    ids = np.array((0, *scene.raw_class_ids()))
    labels = ids[rng.integers(0, len(ids), size=shape[:2])].astype(np.uint8)
    labels.ravel()[: len(ids)] = ids  # every class present
    return cube, labels


def write_mat(path: Path, key: str, array: np.ndarray, *, v73: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if v73:
        with h5py.File(path, "w", userblock_size=512) as f:
            f.create_dataset(key, data=np.asarray(array).T)  # MATLAB stores column-major
        with open(path, "r+b") as f:
            f.write(b"MATLAB 7.3 MAT-file, fake for tests".ljust(116, b" "))
    else:
        scipy.io.savemat(path, {key: array})
    return path


def write_fake_scene(
    name: str, root: Path, *, v73: bool = False, seed: int = 0
) -> tuple[Path, Path]:
    scene = get_scene(name)
    cube, labels = fake_arrays(name, seed=seed)
    folder = root / scene.folder
    return (
        write_mat(folder / scene.cube.filename, scene.cube.key, cube, v73=v73),
        write_mat(folder / scene.labels.filename, scene.labels.key, labels, v73=v73),
    )
