"""Tests of tfhsi.data.pipeline (streamed patches equal the materialised ones)."""

from __future__ import annotations

import numpy as np
import pytest

from tfhsi.data.patches import extract_patches, to_layout
from tfhsi.data.pipeline import (
    AUGMENTATIONS,
    augmented_patches,
    patch_dataset,
    representative_dataset,
)
from tfhsi.errors import ConfigError, DataFormatError

H, W, B = 7, 6, 4


def _cube(seed: int = 0) -> np.ndarray:
    # Distinct values everywhere, so a patch identifies its centre and orientation.
    return np.random.default_rng(seed).normal(size=(H, W, B)).astype(np.float32)


def _centers() -> np.ndarray:
    return np.argwhere(np.ones((H, W), bool))


def _labels(n: int) -> np.ndarray:
    return (np.arange(n) % 3).astype(np.int64)


def _collect(ds):
    xs, ys = [], []
    for batch in ds.as_numpy_iterator():
        x, y = batch
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def _dihedral(patch: np.ndarray) -> list[np.ndarray]:
    """The 8 flips/rotations of a (k, k, B) patch over its spatial axes."""
    out = []
    for p in (patch, patch.transpose(1, 0, 2)):
        out += [p, p[::-1], p[:, ::-1], p[::-1, ::-1]]
    return out


@pytest.mark.parametrize("layout", ["3d", "2d", "1d"])
@pytest.mark.parametrize("padding", ["reflect", "constant"])
def test_streamed_patches_equal_extract_patches_at_every_pixel(layout, padding):
    cube, centers = _cube(), _centers()
    ds = patch_dataset(
        cube, centers, _labels(len(centers)), patch_size=5, layout=layout, batch_size=8,
        padding=padding,
    )  # fmt: skip
    x, y = _collect(ds)
    expected = to_layout(extract_patches(cube, centers, 5, mode=padding), layout)
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(y, _labels(len(centers)))


def test_batches_have_the_layout_shapes_and_dtypes():
    centers = _centers()[:10]
    ds = patch_dataset(_cube(), centers, _labels(10), patch_size=3, layout="3d", batch_size=4)
    batches = list(ds.as_numpy_iterator())
    assert [b[0].shape for b in batches] == [(4, 3, 3, B, 1)] * 2 + [(2, 3, 3, B, 1)]
    assert all(b[0].dtype == np.float32 and b[1].dtype == np.int32 for b in batches)
    assert ds.element_spec[0].shape.as_list() == [None, 3, 3, B, 1]


def test_drop_remainder_gives_full_batches_with_a_static_batch_dim():
    ds = patch_dataset(
        _cube(), _centers()[:10], None, patch_size=3, layout="2d", batch_size=4,
        drop_remainder=True,
    )  # fmt: skip
    assert [x.shape for x in ds.as_numpy_iterator()] == [(4, 3, 3, B)] * 2
    assert ds.element_spec.shape.as_list() == [4, 3, 3, B]


def test_without_labels_the_dataset_yields_inputs_only():
    ds = patch_dataset(_cube(), _centers()[:3], None, patch_size=3, layout="1d", batch_size=8)
    (x,) = list(ds.as_numpy_iterator())
    assert isinstance(x, np.ndarray) and x.shape == (3, B, 1)


def test_float64_cube_is_streamed_as_float32():
    cube = _cube().astype(np.float64)
    ds = patch_dataset(cube, _centers()[:2], None, patch_size=3, layout="2d")
    (x,) = list(ds.as_numpy_iterator())
    assert x.dtype == np.float32


def test_repeat_streams_past_one_epoch():
    ds = patch_dataset(_cube(), _centers()[:5], _labels(5), patch_size=3, layout="2d",
                       batch_size=4, repeat=True)  # fmt: skip
    batches = list(ds.take(4).as_numpy_iterator())
    assert sum(len(b[1]) for b in batches) == 16


def _order(seed: int, epochs: int = 1) -> list[np.ndarray]:
    centers = _centers()
    ds = patch_dataset(_cube(), centers, np.arange(len(centers)), patch_size=3, layout="2d",
                       batch_size=5, shuffle=True, seed=seed)  # fmt: skip
    return [_collect(ds)[1] for _ in range(epochs)]


def test_seeded_shuffle_is_reproducible_and_reshuffles_each_epoch():
    first, second = _order(3, epochs=2)
    again = _order(3)[0]
    n = H * W
    np.testing.assert_array_equal(first, again)
    assert sorted(first.tolist()) == list(range(n))
    assert first.tolist() != list(range(n))
    assert first.tolist() != second.tolist()
    assert _order(4)[0].tolist() != first.tolist()


def test_shuffled_patches_still_match_their_labels():
    cube, centers = _cube(), _centers()
    ds = patch_dataset(cube, centers, np.arange(len(centers)), patch_size=3, layout="2d",
                       batch_size=5, shuffle=True, seed=1)  # fmt: skip
    x, idx = _collect(ds)
    np.testing.assert_array_equal(x, extract_patches(cube, centers[idx], 3))


def _augmented(seed: int, epochs: int = 1) -> list[np.ndarray]:
    cube, centers = _cube(), _centers()
    ds = patch_dataset(cube, centers, _labels(len(centers)), patch_size=5, layout="2d",
                       batch_size=8, augment=True, seed=seed)  # fmt: skip
    return [_collect(ds)[0] for _ in range(epochs)]


def test_augmentation_is_a_flip_or_rotation_that_keeps_the_centre_spectrum():
    cube, centers = _cube(), _centers()
    reference = np.concatenate([extract_patches(cube, centers, 5)] * 4)
    x = np.concatenate(_augmented(seed=0, epochs=4))
    used = set()
    for got, ref in zip(x, reference, strict=True):
        np.testing.assert_array_equal(got[2, 2], ref[2, 2])
        np.testing.assert_array_equal(np.sort(got, axis=None), np.sort(ref, axis=None))
        matches = [i for i, cand in enumerate(_dihedral(ref)) if np.array_equal(got, cand)]
        assert matches, "augmented patch is not a flip/rotation of the original"
        if len(matches) == 1:  # border patches can be symmetric under reflect padding
            used.add(matches[0])
    assert len(used) == 8  # all eight symmetries occur over 4 epochs of 42 patches


def test_augmentation_is_seeded_and_differs_between_epochs():
    first, second = _augmented(seed=5, epochs=2)
    np.testing.assert_array_equal(first, _augmented(seed=5)[0])
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, _augmented(seed=6)[0])


def test_3d_layout_augmentation_moves_only_spatial_axes():
    cube, centers = _cube(), _centers()
    ds = patch_dataset(cube, centers, None, patch_size=3, layout="3d", augment=True)
    x = np.concatenate(list(ds.as_numpy_iterator()))
    ref = extract_patches(cube, centers, 3)
    np.testing.assert_array_equal(x[:, 1, 1, :, 0], ref[:, 1, 1])
    # Every spatial position holds a whole pixel spectrum of the original patch.
    for got, r in zip(x[..., 0], ref, strict=True):
        assert {tuple(v) for v in got.reshape(-1, B)} == {tuple(v) for v in r.reshape(-1, B)}


@pytest.mark.parametrize("k", [4, 0])
def test_even_patch_size_is_rejected(k):
    with pytest.raises(ConfigError, match="odd"):
        patch_dataset(_cube(), _centers(), None, patch_size=k, layout="2d")


def test_patch_larger_than_the_scene_is_rejected():
    with pytest.raises(ConfigError, match="patch 9 is larger than the scene 7x6"):
        patch_dataset(_cube(), _centers(), None, patch_size=9, layout="2d")


def test_integer_cube_is_rejected_as_untransformed():
    with pytest.raises(DataFormatError, match="SpectralTransform"):
        patch_dataset(_cube().astype(np.uint16), _centers(), None, patch_size=3, layout="2d")


def test_negative_labels_are_rejected_with_a_hint():
    labels = _labels(H * W) - 1
    with pytest.raises(DataFormatError, match=r"labels\[r, c\] - 1"):
        patch_dataset(_cube(), _centers(), labels, patch_size=3, layout="2d")


def test_unknown_layout_and_padding_are_rejected():
    with pytest.raises(ConfigError, match="layout"):
        patch_dataset(_cube(), _centers(), None, patch_size=3, layout="4d")
    with pytest.raises(ConfigError, match="padding"):
        patch_dataset(_cube(), _centers(), None, patch_size=3, layout="2d", padding="edge")


@pytest.mark.parametrize("layout", ["3d", "2d", "1d"])
def test_representative_dataset_draws_only_the_given_centres(layout):
    cube, centers = _cube(), _centers()
    train, other = centers[::3], np.delete(centers, np.s_[::3], axis=0)
    gen = representative_dataset(cube, train, patch_size=3, layout=layout, num_samples=6)
    samples = [s for (s,) in gen()]
    allowed = to_layout(extract_patches(cube, train, 3), layout)
    forbidden = to_layout(extract_patches(cube, other, 3), layout)
    assert len(samples) == 6
    for s in samples:
        assert s.shape == (1, *allowed.shape[1:]) and s.dtype == np.float32
        assert any(np.array_equal(s[0], a) for a in allowed)
        assert not any(np.array_equal(s[0], f) for f in forbidden)


def test_representative_dataset_is_seeded_and_capped_at_the_centre_count():
    cube, centers = _cube(), _centers()[:4]
    gen = representative_dataset(cube, centers, patch_size=3, layout="2d", num_samples=50)
    first, second = [s for (s,) in gen()], [s for (s,) in gen()]
    assert len(first) == 4
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    other = representative_dataset(cube, _centers(), patch_size=3, layout="2d", seed=9)
    again = representative_dataset(cube, _centers(), patch_size=3, layout="2d", seed=9)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(other(), again(), strict=True))


@pytest.mark.parametrize("layout", ["3d", "2d", "1d"])
def test_keys_index_the_augmented_patch_table_and_leave_the_stream_unchanged(layout):
    cube, centers = _cube(), _centers()
    labels = _labels(len(centers))
    options = dict(patch_size=5, layout=layout, batch_size=8, shuffle=True, augment=True, seed=2)
    plain = patch_dataset(cube, centers, labels, **options)
    keyed = patch_dataset(cube, centers, labels, keys=True, **options)
    table = np.concatenate(
        list(augmented_patches(cube, centers, patch_size=5, layout=layout).as_numpy_iterator())
    )
    assert len(table) == (1 if layout == "1d" else AUGMENTATIONS) * len(centers)
    for _ in range(2):  # two epochs: reshuffled and re-augmented alike
        for (x, y), ((key, kx), ky) in zip(plain, keyed, strict=True):
            np.testing.assert_array_equal(x.numpy(), kx.numpy())
            np.testing.assert_array_equal(y.numpy(), ky.numpy())
            np.testing.assert_array_equal(table[key.numpy()], x.numpy())


def test_keys_without_augmentation_are_the_centre_positions():
    cube, centers = _cube(), _centers()
    keyed = patch_dataset(cube, centers, None, patch_size=3, layout="2d", batch_size=8,
                          shuffle=True, seed=1, keys=True)  # fmt: skip
    table = np.concatenate(list(augmented_patches(cube, centers, patch_size=3, layout="2d",
                                                  augment=False).as_numpy_iterator()))  # fmt: skip
    keys = np.concatenate([k.numpy() for k, _ in keyed])
    assert sorted(keys.tolist()) == list(range(len(centers)))
    np.testing.assert_array_equal(table, extract_patches(cube, centers, 3))
