"""Seeded synthetic scenes for fast tests and benchmarks (NumPy, no TensorFlow).

A synthetic scene is never a stand-in for a real one: its name starts with
``synthetic:``, ``synthetic=True`` and every class name says "(synthetic)".

Construction: one smooth random field per class (coarse Gaussian noise,
bilinearly upsampled); the class map is their argmax, and the per-pixel
abundances are a sharp softmax of the same fields, so region interiors are pure
and boundaries mixed. Pixels mix smooth per-class endmember spectra, get a smooth
illumination factor and Gaussian noise, and are scaled like sensor counts
(reflectance x 10000) for integer dtypes. Unlabelled pixels (label 0) are smooth
blobs, as in real ground truth.
"""

from __future__ import annotations

import numpy as np

from tfhsi.data.scene_data import SceneData
from tfhsi.errors import ConfigError

_SENSOR_SCALE = 10_000.0  # reflectance 1.0 -> 10000 counts, as many sensors store it
_SHARPNESS = 6.0  # softmax sharpness of the abundances (higher = purer regions)


def _interp_matrix(n: int, cell: float) -> np.ndarray:
    """``(n, g)`` bilinear weights from a coarse grid with spacing ``cell`` to ``n`` pixels."""
    pos = np.arange(n) / cell
    g = int(np.floor(pos[-1])) + 2
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    m = np.zeros((n, g))
    m[np.arange(n), lo] = 1.0 - frac
    m[np.arange(n), lo + 1] = frac
    return m


def _smooth_fields(
    rng: np.random.Generator, count: int, height: int, width: int, cell: float
) -> np.ndarray:
    """``count`` smooth unit-variance random fields of shape ``(height, width)``."""
    ry, rx = _interp_matrix(height, cell), _interp_matrix(width, cell)
    coarse = rng.standard_normal((count, ry.shape[1], rx.shape[1]))
    fields = np.einsum("hg,cgk,wk->chw", ry, coarse, rx, optimize=True)
    fields -= fields.mean(axis=(1, 2), keepdims=True)
    fields /= fields.std(axis=(1, 2), keepdims=True) + 1e-12
    return fields


def _endmembers(rng: np.random.Generator, n_classes: int, bands: int) -> np.ndarray:
    """``(C, B)`` smooth reflectance curves in [0.05, 0.95], each with its own peak."""
    x = np.linspace(0.0, 1.0, bands)
    spectra = np.empty((n_classes, bands))
    for c in range(n_classes):
        curve = rng.uniform(0.15, 0.35) + rng.uniform(-0.15, 0.15) * x
        # A class-specific peak spreads the classes over the spectrum (separability).
        centre = (c + rng.uniform(0.25, 0.75)) / n_classes
        curve += rng.uniform(0.25, 0.45) * np.exp(-0.5 * ((x - centre) / 0.08) ** 2)
        for _ in range(3):  # a few broad random bumps and dips
            mu, sd = rng.uniform(0, 1), rng.uniform(0.05, 0.25)
            curve += rng.uniform(-0.1, 0.15) * np.exp(-0.5 * ((x - mu) / sd) ** 2)
        spectra[c] = curve
    return np.clip(spectra, 0.05, 0.95)


def _ensure_all_classes(classes: np.ndarray, fields: np.ndarray) -> None:
    """Makes every class present by painting it where its field comes closest to winning."""
    n_classes, height, width = fields.shape
    radius = max(1, min(height, width) // 16)
    for _ in range(n_classes):
        missing = np.setdiff1d(np.arange(n_classes), np.unique(classes))
        if missing.size == 0:
            return
        c = int(missing[0])
        others = np.delete(fields, c, axis=0).max(axis=0)
        r, q = np.unravel_index(int(np.argmax(fields[c] - others)), (height, width))
        classes[max(0, r - radius) : r + radius + 1, max(0, q - radius) : q + radius + 1] = c
    # Pathological tiny scenes: one pixel per still-missing class, on distinct pixels.
    missing = np.setdiff1d(np.arange(n_classes), np.unique(classes))
    counts = np.bincount(classes.ravel(), minlength=n_classes)
    for c in missing:
        donor = np.flatnonzero(classes.ravel() == int(np.argmax(counts)))[0]
        classes.flat[donor] = c
        counts = np.bincount(classes.ravel(), minlength=n_classes)


def synthetic_scene(
    *,
    height: int = 32,
    width: int = 32,
    bands: int = 24,
    n_classes: int = 4,
    seed: int = 0,
    unlabelled_fraction: float = 0.2,
    noise: float = 0.02,
    dtype: type | np.dtype = np.uint16,
) -> SceneData:
    """Generates a seeded, learnable synthetic scene.

    Args:
        height: Rows.
        width: Columns.
        bands: Spectral bands.
        n_classes: Classes (labels 1..C); every class is present and labelled.
        seed: Same seed, same scene.
        unlabelled_fraction: Approximate share of label-0 pixels, in [0, 1).
        noise: Gaussian noise standard deviation in reflectance units.
        dtype: Integer dtypes get sensor counts (reflectance x 10000, clipped);
            float dtypes get reflectance.

    Returns:
        A :class:`SceneData` named ``synthetic:{height}x{width}x{bands}`` with ``synthetic=True``.

    Raises:
        ConfigError: A size, fraction or noise level is out of range.
    """
    if min(height, width) < 2 or bands < 1:
        raise ConfigError(
            f"synthetic scene {height}x{width}x{bands} is too small; need at least 2x2x1."
        )
    if n_classes < 2:
        raise ConfigError(f"n_classes={n_classes} must be at least 2.")
    if not 0.0 <= unlabelled_fraction < 1.0:
        raise ConfigError(f"unlabelled_fraction={unlabelled_fraction} must be in [0, 1).")
    if noise < 0:
        raise ConfigError(f"noise={noise} must be >= 0.")
    if height * width * (1.0 - unlabelled_fraction) < 2 * n_classes:
        raise ConfigError(
            f"a {height}x{width} scene with unlabelled_fraction={unlabelled_fraction} leaves too "
            f"few labelled pixels for {n_classes} classes; enlarge it or label more pixels."
        )
    out_dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    cell = max(4.0, min(height, width) / 6.0)

    fields = _smooth_fields(rng, n_classes, height, width, cell)
    classes = np.argmax(fields, axis=0)
    _ensure_all_classes(classes, fields)

    # Abundances: sharp softmax of the fields, with the painted class forced to dominate.
    logits = _SHARPNESS * fields
    onehot = np.eye(n_classes, dtype=bool)[classes].transpose(2, 0, 1)
    logits = np.where(onehot, logits.max(axis=0, keepdims=True) + 1.0, logits)
    logits -= logits.max(axis=0, keepdims=True)
    abundances = np.exp(logits)
    abundances /= abundances.sum(axis=0, keepdims=True)

    # The (H, W, B) arrays are float32 and updated in place: a Pavia-sized scene stays small.
    spectra = _endmembers(rng, n_classes, bands).astype(np.float32)
    illumination = 1.0 + 0.08 * _smooth_fields(rng, 1, height, width, cell)[0]
    weights = (abundances * illumination).astype(np.float32).reshape(n_classes, -1)
    reflectance = (weights.T @ spectra).reshape(height, width, bands)
    if noise > 0:
        reflectance += np.float32(noise) * rng.standard_normal(reflectance.shape, np.float32)

    labels = (classes + 1).astype(np.int32)
    if unlabelled_fraction > 0:
        background = _smooth_fields(rng, 1, height, width, cell)[0]
        unlabelled = background < np.quantile(background, unlabelled_fraction)
        labels[unlabelled] = 0
        for c in range(n_classes):  # every class keeps some labelled pixels
            members = np.flatnonzero(classes.ravel() == c)
            labelled = int(np.count_nonzero(labels.ravel()[members]))
            keep = max(1, round(members.size * (1.0 - unlabelled_fraction)))
            if labelled == 0:
                order = members[np.argsort(background.ravel()[members])[::-1]]
                labels.flat[order[:keep]] = c + 1

    if np.issubdtype(out_dtype, np.integer):
        info = np.iinfo(out_dtype)
        reflectance *= np.float32(_SENSOR_SCALE)
        np.rint(reflectance, out=reflectance)
        np.clip(reflectance, max(info.min, 0), info.max, out=reflectance)
        cube = reflectance.astype(out_dtype)
    else:
        cube = reflectance.astype(out_dtype)
    rgb = tuple(round(f * (bands - 1)) for f in (0.75, 0.45, 0.15))
    return SceneData(
        name=f"synthetic:{height}x{width}x{bands}",
        cube=np.ascontiguousarray(cube),
        labels=labels,
        class_names=tuple(f"class {i + 1} (synthetic)" for i in range(n_classes)),
        rgb_bands=(rgb[0], rgb[1], rgb[2]),
        synthetic=True,
        sources={},
    )
