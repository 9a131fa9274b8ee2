"""Tests of tfhsi.data.patches (padding and the materialised reference path)."""

from __future__ import annotations

import numpy as np
import pytest

from tfhsi.data.patches import (
    check_centers,
    check_patch_size,
    extract_patches,
    layout_shape,
    pad_cube,
    to_layout,
)
from tfhsi.errors import ConfigError, DataFormatError


def _cube(h: int = 7, w: int = 6, b: int = 3) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(h, w, b)).astype(np.float32)


def _all_centers(h: int, w: int) -> np.ndarray:
    return np.argwhere(np.ones((h, w), bool))


def _naive_patch(cube: np.ndarray, r: int, c: int, k: int, mode: str) -> np.ndarray:
    """Double loop with explicit reflection (edge pixel not repeated) or zeros."""
    h, w, b = cube.shape
    out = np.zeros((k, k, b), cube.dtype)
    radius = k // 2
    for i in range(k):
        for j in range(k):
            y, x = r + i - radius, c + j - radius
            inside = 0 <= y < h and 0 <= x < w
            if mode == "constant" and not inside:
                continue
            y = -y if y < 0 else (2 * (h - 1) - y if y >= h else y)
            x = -x if x < 0 else (2 * (w - 1) - x if x >= w else x)
            out[i, j] = cube[y, x]
    return out


@pytest.mark.parametrize("mode", ["reflect", "constant"])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_extract_patches_equals_naive_double_loop_at_every_pixel(mode, k):
    cube = _cube()
    centers = _all_centers(*cube.shape[:2])
    patches = extract_patches(cube, centers, k, mode=mode)
    expected = np.stack([_naive_patch(cube, r, c, k, mode) for r, c in centers])
    assert patches.shape == (len(centers), k, k, 3)
    np.testing.assert_array_equal(patches, expected)


def test_extract_patches_puts_the_centre_pixel_at_the_centre():
    cube = _cube()
    centers = np.array([[0, 0], [3, 2], [6, 5]])
    patches = extract_patches(cube, centers, 5)
    np.testing.assert_array_equal(patches[:, 2, 2], cube[centers[:, 0], centers[:, 1]])


def test_pad_cube_reflect_mirrors_without_repeating_the_edge():
    cube = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    padded = pad_cube(cube, 2, mode="reflect")
    assert padded.shape == (7, 8, 1)
    np.testing.assert_array_equal(padded[2, :, 0], [2, 1, 0, 1, 2, 3, 2, 1])


def test_pad_cube_constant_pads_with_zeros():
    cube = np.ones((3, 4, 2), np.float32)
    padded = pad_cube(cube, 1, mode="constant")
    assert padded.shape == (5, 6, 2)
    assert padded.sum() == cube.sum()
    assert np.all(padded[0] == 0) and np.all(padded[:, -1] == 0)


def test_pad_cube_rejects_reflection_wider_than_the_scene():
    with pytest.raises(ConfigError, match="scene is 3x4"):
        pad_cube(np.ones((3, 4, 1)), 3, mode="reflect")


def test_pad_cube_rejects_an_unknown_mode():
    with pytest.raises(ConfigError, match="'wrap'"):
        pad_cube(np.ones((3, 4, 1)), 1, mode="wrap")


@pytest.mark.parametrize("k", [0, 2, 4, -3])
def test_even_or_non_positive_patch_size_is_rejected(k):
    with pytest.raises(ConfigError, match="odd"):
        check_patch_size(k, 20, 20)


def test_patch_larger_than_scene_is_rejected_with_the_sizes():
    with pytest.raises(ConfigError, match=r"patch 31 is larger than the scene 20x20.*19"):
        extract_patches(np.ones((20, 20, 2)), np.array([[1, 1]]), 31)


def test_patch_as_large_as_an_odd_scene_is_accepted():
    cube = _cube(5, 7)
    patches = extract_patches(cube, np.array([[0, 0]]), 5, mode="reflect")
    assert patches.shape == (1, 5, 5, 3)


def test_centre_outside_the_scene_is_rejected():
    with pytest.raises(DataFormatError, match=r"centre 1 at \(row 7, col 0\)"):
        check_centers(np.array([[0, 0], [7, 0]]), 7, 6)


def test_float_centres_are_rejected():
    with pytest.raises(DataFormatError, match="integers"):
        check_centers(np.array([[0.0, 1.0]]), 7, 6)


def test_layouts_reshape_patches_as_documented():
    patches = extract_patches(_cube(), np.array([[1, 1], [4, 3]]), 3)
    assert to_layout(patches, "3d").shape == (2, 3, 3, 3, 1)
    assert to_layout(patches, "2d").shape == (2, 3, 3, 3)
    np.testing.assert_array_equal(to_layout(patches, "1d")[..., 0], patches[:, 1, 1])
    assert layout_shape("3d", patch_size=3, bands=3) == (3, 3, 3, 1)
    assert layout_shape("2d", patch_size=3, bands=3) == (3, 3, 3)
    assert layout_shape("1d", patch_size=3, bands=3) == (3, 1)


def test_unknown_layout_is_rejected():
    with pytest.raises(ConfigError, match="'4d'"):
        layout_shape("4d", patch_size=3, bands=3)
