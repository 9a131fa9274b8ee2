"""Tests of tfhsi.data.synthetic (seeded, labelled-as-synthetic, learnable scenes)."""

from __future__ import annotations

import numpy as np
import pytest

from tfhsi.data.synthetic import synthetic_scene
from tfhsi.errors import ConfigError


def test_same_seed_gives_identical_scene_and_other_seed_differs():
    a, b, c = synthetic_scene(seed=3), synthetic_scene(seed=3), synthetic_scene(seed=4)
    np.testing.assert_array_equal(a.cube, b.cube)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.cube, c.cube)
    assert not np.array_equal(a.labels, c.labels)


def test_shape_dtype_and_sensor_like_counts():
    scene = synthetic_scene(height=20, width=12, bands=10)
    assert scene.cube.shape == (20, 12, 10)
    assert scene.cube.dtype == np.uint16
    assert scene.cube.flags.c_contiguous
    assert scene.labels.shape == (20, 12) and scene.labels.dtype == np.int32
    assert 100 < scene.cube.mean() < 10_000  # reflectance x 10000


def test_float_dtype_gives_reflectance():
    scene = synthetic_scene(dtype=np.float32)
    assert scene.cube.dtype == np.float32
    assert 0.0 < scene.cube.mean() < 1.0


def test_scene_is_labelled_as_synthetic_everywhere():
    scene = synthetic_scene(height=16, width=8, bands=5, n_classes=3)
    assert scene.synthetic is True
    assert scene.name == "synthetic:16x8x5"
    assert "SYNTHETIC" in scene.display_name
    assert scene.class_names == tuple(f"class {i} (synthetic)" for i in (1, 2, 3))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("h", "w", "c"), [(32, 32, 4), (12, 9, 7), (6, 5, 5), (40, 30, 12)])
def test_every_class_has_labelled_pixels_and_unlabelled_pixels_exist(seed, h, w, c):
    scene = synthetic_scene(height=h, width=w, n_classes=c, seed=seed, bands=4)
    assert set(np.unique(scene.labels).tolist()) == set(range(c + 1))
    assert np.all(scene.class_counts() > 0)


def test_unlabelled_fraction_is_respected():
    labels = synthetic_scene(height=64, width=64, unlabelled_fraction=0.6).labels
    assert abs((labels == 0).mean() - 0.6) < 0.05
    assert np.all(synthetic_scene(unlabelled_fraction=0.0).labels > 0)


def test_rgb_bands_are_distinct_and_inside_the_cube():
    scene = synthetic_scene(bands=30)
    assert len(set(scene.rgb_bands)) == 3
    assert all(0 <= b < 30 for b in scene.rgb_bands)


def test_classes_are_spectrally_separable_by_nearest_centroid():
    scene = synthetic_scene(height=48, width=48, bands=24, n_classes=6, seed=1)
    rows, cols = np.nonzero(scene.labels)
    x = scene.cube[rows, cols].astype(np.float64)
    y = scene.labels[rows, cols]
    train = np.arange(len(y)) % 2 == 0
    centroids = np.stack([x[train & (y == c)].mean(axis=0) for c in range(1, 7)])
    dist = ((x[~train, None, :] - centroids[None]) ** 2).sum(axis=-1)
    accuracy = np.mean(np.argmin(dist, axis=1) + 1 == y[~train])
    assert accuracy > 0.85


@pytest.mark.parametrize(
    "kwargs",
    [
        {"height": 1},
        {"bands": 0},
        {"n_classes": 1},
        {"unlabelled_fraction": 1.0},
        {"noise": -0.1},
        {"height": 3, "width": 3, "n_classes": 8},
    ],
)
def test_invalid_arguments_are_rejected(kwargs):
    with pytest.raises(ConfigError):
        synthetic_scene(**kwargs)
