"""Tests of tfhsi.data.transforms (fit on training pixels, PCA, save/load)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfhsi.data import transforms
from tfhsi.data.transforms import SpectralTransform
from tfhsi.errors import ConfigError, DataFormatError


def _cube(seed: int = 0, shape: tuple[int, int, int] = (9, 8, 6)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=shape) * rng.uniform(0.5, 20, size=shape[-1])
    return base + rng.uniform(-100, 100, size=shape[-1])


def _mask(seed: int, shape: tuple[int, int], fraction: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < fraction
    mask.flat[0] = True
    return mask


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    fraction=st.floats(0.05, 0.95),
    offset=st.floats(-1e4, 1e4, allow_nan=False),
    pca=st.sampled_from([None, 1, 3]),
)
def test_fitted_parameters_ignore_non_training_pixels(seed, fraction, offset, pca):
    cube = _cube(seed)
    mask = _mask(seed, cube.shape[:2], fraction)
    perturbed = cube.copy()
    rng = np.random.default_rng(seed + 1)
    perturbed[~mask] = rng.normal(offset, 50.0, size=perturbed[~mask].shape)

    a = SpectralTransform.fit(cube, mask, pca_components=pca)
    b = SpectralTransform.fit(perturbed, mask, pca_components=pca)

    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.scale, b.scale)
    np.testing.assert_array_equal(a.zero_variance_bands, b.zero_variance_bands)
    if pca is not None:
        np.testing.assert_array_equal(a.pca_components, b.pca_components)
        np.testing.assert_array_equal(a.explained_variance_ratio, b.explained_variance_ratio)


def test_training_pixels_are_standardised_to_zero_mean_unit_std():
    cube = _cube(1)
    mask = _mask(1, cube.shape[:2])
    out = SpectralTransform.fit(cube, mask).apply(cube)
    train = out[mask].astype(np.float64)
    np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train.std(axis=0), 1.0, atol=1e-5)


def test_apply_returns_c_contiguous_float32_of_the_input_shape():
    cube = _cube(2).astype(np.uint16)
    out = SpectralTransform.fit(cube, _mask(2, cube.shape[:2])).apply(cube)
    assert out.dtype == np.float32
    assert out.flags.c_contiguous
    assert out.shape == cube.shape


def test_zero_variance_band_is_recorded_and_gives_finite_zero_output():
    cube = _cube(3)
    mask = _mask(3, cube.shape[:2])
    cube[..., 2] = 7.0
    cube[~mask, 2] = 9.0  # varies outside the training pixels only
    t = SpectralTransform.fit(cube, mask)
    out = t.apply(cube)
    assert t.zero_variance_bands.tolist() == [2]
    assert t.scale[2] == 1.0
    assert np.isfinite(out).all()
    assert np.all(out[..., 2] == 0.0)


def test_zero_variance_band_with_pca_gives_finite_output():
    cube = _cube(4)
    cube[..., 0] = 3.0
    t = SpectralTransform.fit(cube, np.ones(cube.shape[:2], bool), pca_components=4)
    assert np.isfinite(t.apply(cube)).all()
    assert np.isfinite(t.explained_variance_ratio).all()


def test_pca_output_has_k_bands_and_descending_explained_variance():
    cube = _cube(5, (10, 10, 8))
    mask = _mask(5, cube.shape[:2], 0.7)
    t = SpectralTransform.fit(cube, mask, pca_components=3)
    out = t.apply(cube)
    ratio = t.explained_variance_ratio
    assert out.shape == (10, 10, 3)
    assert t.out_bands == 3
    assert ratio.shape == (3,)
    assert np.all(np.diff(ratio) <= 0)
    assert 0 < ratio.sum() <= 1 + 1e-9
    np.testing.assert_allclose(t.pca_components.T @ t.pca_components, np.eye(3), atol=1e-10)
    # Projected training pixels: variance per component descends like the ratios.
    variances = out[mask].astype(np.float64).var(axis=0)
    assert np.all(np.diff(variances) <= 1e-6)


def test_pca_signs_are_deterministic_with_largest_loading_positive():
    cube = _cube(6)
    mask = _mask(6, cube.shape[:2])
    a = SpectralTransform.fit(cube, mask, pca_components=4)
    b = SpectralTransform.fit(cube.copy(), mask.copy(), pca_components=4)
    np.testing.assert_array_equal(a.pca_components, b.pca_components)
    comps = a.pca_components
    pivots = np.argmax(np.abs(comps), axis=0)
    assert np.all(comps[pivots, np.arange(4)] > 0)


@pytest.mark.parametrize("pca", [None, 2])
def test_save_load_round_trip_gives_identical_apply_output(tmp_path, pca):
    cube = _cube(7).astype(np.float32)
    cube[..., 1] = 0.5
    t = SpectralTransform.fit(cube, _mask(7, cube.shape[:2]), pca_components=pca)
    path = t.save(tmp_path / "sub" / "transform.npz")
    loaded = SpectralTransform.load(path)
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["transform.npz"]
    np.testing.assert_array_equal(loaded.apply(cube), t.apply(cube))
    assert loaded.describe() == t.describe()


def test_apply_rejects_a_cube_with_another_band_count():
    cube = _cube(8)
    t = SpectralTransform.fit(cube, _mask(8, cube.shape[:2]))
    with pytest.raises(DataFormatError, match="fitted on 6 bands"):
        t.apply(cube[..., :5])


def test_chunked_apply_equals_single_chunk(monkeypatch):
    cube = _cube(9, (12, 11, 5))
    t = SpectralTransform.fit(cube, _mask(9, cube.shape[:2]), pca_components=3)
    whole = t.apply(cube)
    monkeypatch.setattr(transforms, "_CHUNK_ELEMENTS", 7)
    np.testing.assert_array_equal(t.apply(cube), whole)


def test_fit_rejects_an_empty_training_mask():
    cube = _cube(10)
    with pytest.raises(DataFormatError, match="no pixel"):
        SpectralTransform.fit(cube, np.zeros(cube.shape[:2], bool))


def test_fit_rejects_a_mask_of_the_wrong_shape():
    cube = _cube(10)
    with pytest.raises(DataFormatError, match="train_mask"):
        SpectralTransform.fit(cube, np.ones((3, 3), bool))


def test_fit_rejects_non_finite_training_pixels():
    cube = _cube(10)
    cube[0, 0, 4] = np.nan
    with pytest.raises(DataFormatError, match=r"bands \[4\]"):
        SpectralTransform.fit(cube, np.ones(cube.shape[:2], bool))


@pytest.mark.parametrize("k", [0, 7])
def test_fit_rejects_pca_components_outside_band_count(k):
    cube = _cube(11)
    with pytest.raises(ConfigError, match=f"pca_components={k}"):
        SpectralTransform.fit(cube, np.ones(cube.shape[:2], bool), pca_components=k)


def test_load_rejects_an_npz_that_is_not_a_transform(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.ones(3))
    with pytest.raises(DataFormatError, match="not a saved SpectralTransform"):
        SpectralTransform.load(path)


def test_load_rejects_a_non_npz_file(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("hello")
    with pytest.raises(DataFormatError, match="cannot read it"):
        SpectralTransform.load(path)


def test_load_reports_a_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match="no transform file"):
        SpectralTransform.load(tmp_path / "missing.npz")
