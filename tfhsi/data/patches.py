"""Padding, patch validation and materialised patch extraction (NumPy, no TensorFlow).

The training pipeline streams patches (:mod:`tfhsi.data.pipeline`); the functions
here define what a patch *is*, so the streaming and the materialised paths agree.
``extract_patches`` builds the whole ``(N, k, k, B)`` array and is meant for small
sets of centres (tests, calibration, the benchmark's baseline).
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from tfhsi.errors import ConfigError, DataFormatError
from tfhsi.layouts import LAYOUTS, Layout, check_layout, layout_shape  # noqa: F401 - re-exported

Padding = Literal["reflect", "constant"]
PADDINGS: tuple[str, ...] = get_args(Padding)


def check_padding(mode: str) -> None:
    """Raises ConfigError unless ``mode`` is a supported padding mode."""
    if mode not in PADDINGS:
        raise ConfigError(f"padding={mode!r} is not supported; use one of {list(PADDINGS)}.")


def check_patch_size(patch_size: int, height: int, width: int) -> int:
    """Validates an odd patch size that fits the scene; returns its radius.

    Raises:
        ConfigError: The size is not a positive odd integer, or larger than the scene.
    """
    if isinstance(patch_size, bool) or not isinstance(patch_size, (int, np.integer)):
        raise ConfigError(f"patch_size must be an odd integer; got {patch_size!r}.")
    k = int(patch_size)
    if k < 1 or k % 2 == 0:
        raise ConfigError(
            f"patch_size={k} must be a positive odd number so the patch has a centre pixel; "
            f"use {k + 1 if k > 0 else 1}."
        )
    if k > min(height, width):
        largest = min(height, width) - (1 - min(height, width) % 2)
        raise ConfigError(
            f"patch {k} is larger than the scene {height}x{width}; use an odd patch of at "
            f"most {largest}."
        )
    return k // 2


def check_centers(centers: np.ndarray, height: int, width: int) -> np.ndarray:
    """Returns ``centers`` as a C-contiguous ``(N, 2)`` int64 (row, col) array inside the scene.

    Raises:
        DataFormatError: Wrong shape or dtype, or a centre outside the scene.
    """
    arr = np.asarray(centers)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise DataFormatError(f"centers must have shape (N, 2) as (row, col); got {arr.shape}.")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise DataFormatError(f"centers must be integers (row, col); got dtype {arr.dtype}.")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    outside = (arr[:, 0] < 0) | (arr[:, 0] >= height) | (arr[:, 1] < 0) | (arr[:, 1] >= width)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise DataFormatError(
            f"centre {i} at (row {arr[i, 0]}, col {arr[i, 1]}) is outside the scene "
            f"{height}x{width}; centres index the unpadded cube."
        )
    return arr


def pad_cube(cube: np.ndarray, radius: int, *, mode: str = "reflect") -> np.ndarray:
    """Pads the two spatial axes of an ``(H, W, B)`` cube by ``radius`` pixels.

    Args:
        cube: ``(H, W, B)`` array.
        radius: Pixels added on every side.
        mode: ``"reflect"`` (mirror without repeating the edge pixel) or ``"constant"`` (zeros).

    Raises:
        ConfigError: Unknown mode, negative radius, or reflection wider than the scene.
    """
    check_padding(mode)
    if cube.ndim != 3:
        raise DataFormatError(f"pad_cube expects an (H, W, B) cube; got shape {cube.shape}.")
    if radius < 0:
        raise ConfigError(f"radius must be >= 0; got {radius}.")
    h, w = cube.shape[:2]
    if mode == "reflect" and radius > min(h, w) - 1:
        raise ConfigError(
            f"reflect padding of {radius} pixels needs a scene of at least "
            f"{radius + 1}x{radius + 1}; the scene is {h}x{w}. Use a smaller patch."
        )
    widths = ((radius, radius), (radius, radius), (0, 0))
    if mode == "constant":
        return np.pad(cube, widths, mode="constant", constant_values=0)
    return np.pad(cube, widths, mode="reflect")


def extract_patches(
    cube: np.ndarray, centers: np.ndarray, patch_size: int, *, mode: str = "reflect"
) -> np.ndarray:
    """Materialises the ``(N, k, k, B)`` patches around ``centers``.

    Patch ``n`` covers rows ``r - k//2 .. r + k//2`` and columns ``c - k//2 .. c + k//2``
    of the cube padded with ``mode``; the centre pixel is ``patch[n, k//2, k//2]``.
    Memory is ``N * k * k * B`` values: use the streaming pipeline for training.
    """
    if cube.ndim != 3:
        raise DataFormatError(f"expected an (H, W, B) cube; got shape {cube.shape}.")
    h, w = cube.shape[:2]
    radius = check_patch_size(patch_size, h, w)
    centers = check_centers(centers, h, w)
    padded = pad_cube(cube, radius, mode=mode)
    offsets = np.arange(patch_size)
    rows = centers[:, 0, None] + offsets  # (N, k) in padded coordinates
    cols = centers[:, 1, None] + offsets
    return padded[rows[:, :, None], cols[:, None, :]]


def to_layout(patches: np.ndarray, layout: str) -> np.ndarray:
    """Reshapes ``(N, k, k, B)`` patches to a model layout.

    ``"3d"`` -> ``(N, k, k, B, 1)``, ``"2d"`` -> ``(N, k, k, B)``,
    ``"1d"`` -> ``(N, B, 1)`` (the centre pixel's spectrum).
    """
    check_layout(layout)
    if layout == "3d":
        return patches[..., None]
    if layout == "1d":
        r = patches.shape[1] // 2
        return patches[:, r, r, :, None]
    return patches
