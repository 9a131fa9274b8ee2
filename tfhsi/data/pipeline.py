"""Streaming patches with tf.data: gathered per batch from a padded cube, never materialised.

The cube is padded once and held as one ``(Hp * Wp, B)`` float32 CPU variable. The dataset
carries only centre indices (and labels); each batch of centres becomes a
``(n, k, k)`` grid of flat pixel indices and one ``tf.gather`` builds the batch.
Augmentation permutes that index grid (the 8 flips/rotations of the square), so
it costs nothing extra and moves only the spatial axes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from tfhsi._keras import tf
from tfhsi.data.patches import (
    Layout,
    check_centers,
    check_layout,
    check_padding,
    check_patch_size,
    pad_cube,
    to_layout,
)
from tfhsi.errors import ConfigError, DataFormatError

__all__ = [
    "AUGMENTATIONS",
    "Layout",
    "augmented_patches",
    "patch_dataset",
    "representative_dataset",
]

AUGMENTATIONS = 8
"""The flips/rotations of a square patch; augmentation code ``a`` in ``0..7`` (0: as is)."""


def _as_float_cube(cube: np.ndarray) -> np.ndarray:
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise DataFormatError(f"expected an (H, W, B) cube; got shape {cube.shape}.")
    if not np.issubdtype(cube.dtype, np.floating):
        raise DataFormatError(
            f"the pipeline takes the transformed float cube but got dtype {cube.dtype}; "
            "pass SpectralTransform.apply(scene.cube)."
        )
    cube = np.ascontiguousarray(cube, dtype=np.float32)
    if not np.isfinite(cube).all():
        raise DataFormatError("the cube contains NaN or inf; clean it before streaming patches.")
    return cube


UNLABELLED = -1
"""Label of a pixel without a class (e.g. distillation's transfer pixels): no hard-label loss."""


def _check_labels(labels: np.ndarray, n: int, *, unlabelled_ok: bool = False) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.shape != (n,):
        raise DataFormatError(f"labels must have shape ({n},) like the centres; got {arr.shape}.")
    if n and not np.issubdtype(arr.dtype, np.integer):
        raise DataFormatError(f"labels must be integer class indices; got dtype {arr.dtype}.")
    if n and arr.min() < (UNLABELLED if unlabelled_ok else 0):
        i = int(np.argmin(arr))
        raise DataFormatError(
            f"label {arr[i]} at position {i}: labels are class indices 0..C-1; pass "
            "labels[r, c] - 1 for labelled pixels only (0 in the label map is unlabelled)."
        )
    return arr.astype(np.int32)


def patch_dataset(
    cube: np.ndarray,
    centers: np.ndarray,
    labels: np.ndarray | None,
    *,
    patch_size: int,
    layout: Layout,
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 0,
    augment: bool = False,
    padding: str = "reflect",
    repeat: bool = False,
    drop_remainder: bool = False,
    unlabelled_ok: bool = False,
    keys: bool = False,
) -> tf.data.Dataset:
    """Streams batches of patches around ``centers``.

    Args:
        cube: Transformed ``(H, W, B)`` float cube (cast to float32).
        centers: ``(N, 2)`` int (row, col) centre pixels in the unpadded cube.
        labels: ``(N,)`` class indices 0..C-1, or None to yield inputs only.
        patch_size: Odd side ``k`` of the square patch.
        layout: ``"3d"`` -> ``(k, k, B, 1)``, ``"2d"`` -> ``(k, k, B)``, ``"1d"`` ->
            ``(B, 1)`` (centre pixel only; ``patch_size`` is still validated).
        batch_size: Patches per batch.
        shuffle: Reshuffle the centres every iteration (seeded).
        seed: Seed of the shuffle and of the augmentation.
        augment: Random flips and 90-degree rotations of the spatial axes (seeded,
            different every iteration, reproducible).
        padding: ``"reflect"`` or ``"constant"`` (zeros) at the scene borders.
        repeat: Repeat forever.
        drop_remainder: Drop the last incomplete batch.
        unlabelled_ok: Accept :data:`UNLABELLED` (-1) labels (pixels without a class).
        keys: Also yield each patch's key: ``i * AUGMENTATIONS + a`` with augmentation
            (``i`` its position in ``centers``, ``a`` its augmentation code), ``i`` without
            (and for ``"1d"``): its row in a table of per-patch values, e.g. a teacher's
            logits over :func:`augmented_patches` with the same ``augment`` and ``layout``.
            Batches, order and augmentation are the same as without keys.

    Returns:
        A dataset of ``(x, y)`` float32/int32 batches, or ``x`` when ``labels`` is None;
        with ``keys``, ``((key, x), y)`` or ``(key, x)``.

    Raises:
        ConfigError: Bad layout, padding, batch size, or a patch size that is even or
            larger than the scene.
        DataFormatError: Bad cube, centres or labels.
    """
    check_layout(layout)
    check_padding(padding)
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise ConfigError(f"batch_size must be a positive integer; got {batch_size!r}.")
    cube = _as_float_cube(cube)
    h, w, _ = cube.shape
    radius = check_patch_size(patch_size, h, w)
    centers = check_centers(centers, h, w)
    n = centers.shape[0]
    if n == 0:
        raise DataFormatError("no centre pixels given; the split selected no pixel.")
    y = None if labels is None else _check_labels(labels, n, unlabelled_ok=unlabelled_ok)

    gather = _gatherer(cube, radius, int(patch_size), layout, padding)

    use_rand = augment and layout != "1d"
    index = np.arange(n, dtype=np.int32)
    ds = tf.data.Dataset.from_tensor_slices(
        (centers.astype(np.int32), index) if y is None else (centers.astype(np.int32), index, y)
    )
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if use_rand:
        rand = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, rand)).map(lambda e, r: (*e, r))
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)

    def to_batch(*elems: tf.Tensor) -> Any:
        rand = elems[-1] if use_rand else None
        x = gather(elems[0], rand)
        if keys:
            key = elems[1] if rand is None else elems[1] * AUGMENTATIONS + _code(rand)
            x = (key, x)
        return x if y is None else (x, elems[2])

    ds = ds.map(to_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _code(rand: tf.Tensor) -> tf.Tensor:
    """The augmentation code (0..7) drawn from a random int64."""
    return tf.cast(tf.bitwise.bitwise_and(rand, AUGMENTATIONS - 1), tf.int32)


def _gatherer(
    cube: np.ndarray, radius: int, patch_size: int, layout: Layout, padding: str
) -> Callable[[tf.Tensor, tf.Tensor | None], tf.Tensor]:
    """``gather(centres, rand)``: a batch of patches, flipped/rotated by ``rand``'s code."""
    h, w, bands = cube.shape
    if layout == "1d":
        source, row_stride, k = cube.reshape(h * w, bands), w, 1
        radius = 0
    else:
        source = pad_cube(cube, radius, mode=padding)
        row_stride, k = source.shape[1], patch_size
        source = source.reshape(-1, bands)
    # A CPU variable, not a constant: a captured constant is copied into the dataset graph
    # and serialised on every iterator creation (seconds and 2-3 extra copies on big cubes).
    with tf.init_scope(), tf.device("/CPU:0"):
        pixels = tf.Variable(source, trainable=False, name="padded_cube")
    del source
    base = np.arange(k, dtype=np.int32) - radius
    di = tf.constant(np.repeat(base[:, None], k, axis=1))  # row offset of patch cell (i, j)
    dj = tf.constant(np.repeat(base[None, :], k, axis=0))  # column offset

    def gather(c: tf.Tensor, rand: tf.Tensor | None) -> tf.Tensor:
        c = tf.cast(c, tf.int32)
        oi, oj = di[None], dj[None]
        if rand is not None:
            bits = _code(rand)
            swap = tf.equal(bits % 2, 1)[:, None, None]
            sign_r = (1 - 2 * ((bits // 2) % 2))[:, None, None]
            sign_c = (1 - 2 * ((bits // 4) % 2))[:, None, None]
            oi, oj = (
                tf.where(swap, dj[None], di[None]) * sign_r,
                tf.where(swap, di[None], dj[None]) * sign_c,
            )
        rows = c[:, 0, None, None] + radius + oi
        cols = c[:, 1, None, None] + radius + oj
        x = tf.gather(pixels, rows * row_stride + cols)  # (n, k, k, B)
        if layout == "3d":
            return x[..., None]
        if layout == "1d":
            return x[:, 0, 0, :, None]
        return x

    return gather


def augmented_patches(
    cube: np.ndarray,
    centers: np.ndarray,
    *,
    patch_size: int,
    layout: Layout,
    augment: bool = True,
    batch_size: int = 256,
    padding: str = "reflect",
) -> tf.data.Dataset:
    """Every patch of ``centers`` (under every augmentation with ``augment``), in key order.

    Batch ``b`` holds the patches of keys ``b * batch_size ...`` (the keys of
    :func:`patch_dataset` with ``keys=True`` and the same ``augment`` and ``layout``), so
    running a model over it gives the table those keys index. ``"1d"`` patches have no
    augmentation: one per centre.
    """
    check_layout(layout)
    check_padding(padding)
    cube = _as_float_cube(cube)
    h, w, _ = cube.shape
    radius = check_patch_size(patch_size, h, w)
    centers = check_centers(centers, h, w)
    gather = _gatherer(cube, radius, int(patch_size), layout, padding)
    per = AUGMENTATIONS if augment and layout != "1d" else 1
    codes = np.tile(np.arange(per, dtype=np.int64), len(centers))
    repeated = np.repeat(centers.astype(np.int32), per, axis=0)
    ds = tf.data.Dataset.from_tensor_slices((repeated, codes)).batch(int(batch_size))
    ds = ds.map(lambda c, a: gather(c, a if per > 1 else None), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def representative_dataset(
    cube: np.ndarray,
    centers: np.ndarray,
    *,
    patch_size: int,
    layout: Layout,
    num_samples: int = 200,
    seed: int = 0,
    padding: str = "reflect",
) -> Callable[[], Iterator[list[np.ndarray]]]:
    """A TFLite calibration generator drawn from the given (training) centres only.

    Picks ``min(num_samples, N)`` distinct centres with a seeded generator; each call
    of the returned function yields the same ``[x]`` sequence, ``x`` of shape
    ``(1, *layout_shape)`` float32.
    """
    check_layout(layout)
    check_padding(padding)
    if isinstance(num_samples, bool) or int(num_samples) < 1:
        raise ConfigError(f"num_samples must be a positive integer; got {num_samples!r}.")
    cube = _as_float_cube(cube)
    h, w, _ = cube.shape
    radius = check_patch_size(patch_size, h, w)
    centers = check_centers(centers, h, w)
    if centers.shape[0] == 0:
        raise DataFormatError("no training centres given for the representative dataset.")
    rng = np.random.default_rng(seed)
    chosen = centers[rng.permutation(centers.shape[0])[: int(num_samples)]]
    padded = pad_cube(cube, radius, mode=padding)

    def generate() -> Iterator[list[np.ndarray]]:
        for r, c in chosen:
            patch = padded[r : r + patch_size, c : c + patch_size][None]
            yield [np.ascontiguousarray(to_layout(patch, layout), dtype=np.float32)]

    return generate
