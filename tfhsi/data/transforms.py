"""Spectral transforms fitted on training pixels only (NumPy, no TensorFlow).

:class:`SpectralTransform` standardises every band with the mean and standard
deviation of the training pixels and optionally projects onto the first ``k``
principal components of the standardised training pixels. The fitted
parameters are saved to a ``.npz`` file so inference applies exactly the same
transform.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tfhsi.atomic import atomic_open
from tfhsi.errors import ConfigError, DataFormatError
from tfhsi.layouts import InputStage

_FORMAT = "tfhsi.SpectralTransform"
_VERSION = 1
_CHUNK_ELEMENTS = 1 << 22  # values per chunk in apply() (about 32 MiB of float64)


@dataclass(frozen=True, eq=False)
class SpectralTransform:
    """Per-band standardisation and optional PCA, fitted on training pixels.

    ``apply`` computes ``z = (x - mean) / scale`` per band, sets the
    zero-variance bands to 0, and, when PCA is fitted, returns
    ``(z - pca_mean) @ pca_components``.

    Attributes:
        mean: ``(B,)`` float64 band means of the training pixels.
        scale: ``(B,)`` float64 band standard deviations (1 for zero-variance bands).
        zero_variance_bands: Sorted int64 indices of bands constant over the training pixels.
        pca_components: ``(B, k)`` float64 principal axes (columns), or None.
        pca_mean: ``(B,)`` float64 mean of the standardised training pixels, or None.
        explained_variance_ratio: ``(k,)`` float64, descending, or None.
    """

    mean: np.ndarray
    scale: np.ndarray
    zero_variance_bands: np.ndarray
    pca_components: np.ndarray | None = None
    pca_mean: np.ndarray | None = None
    explained_variance_ratio: np.ndarray | None = None

    @classmethod
    def fit(
        cls,
        cube: np.ndarray,
        train_mask: np.ndarray,
        *,
        pca_components: int | None = None,
    ) -> SpectralTransform:
        """Fits the transform on the pixels where ``train_mask`` is True.

        Args:
            cube: ``(H, W, B)`` cube of any real dtype.
            train_mask: ``(H, W)`` bool mask of training pixels; no other pixel is read.
            pca_components: Keep this many principal components (1..B); None = no PCA.

        Raises:
            DataFormatError: Shapes disagree, the mask is empty, or training pixels are not finite.
            ConfigError: ``pca_components`` is outside 1..B.
        """
        cube = np.asarray(cube)
        train_mask = np.asarray(train_mask)
        if cube.ndim != 3:
            raise DataFormatError(
                f"SpectralTransform.fit expects an (H, W, B) cube; got shape {cube.shape}."
            )
        if train_mask.shape != cube.shape[:2] or train_mask.dtype != np.bool_:
            raise DataFormatError(
                f"train_mask must be a bool array of shape {cube.shape[:2]} (the cube's H, W); "
                f"got {train_mask.dtype} {train_mask.shape}."
            )
        n_bands = cube.shape[2]
        if pca_components is not None and not 1 <= int(pca_components) <= n_bands:
            raise ConfigError(
                f"pca_components={pca_components} is outside 1..{n_bands} (the cube's band "
                "count); pass a smaller number or None to skip PCA."
            )
        pixels = cube[train_mask].astype(np.float64)
        if pixels.shape[0] == 0:
            raise DataFormatError(
                "train_mask selects no pixel; fit the transform on a split with training pixels."
            )
        if not np.isfinite(pixels).all():
            bad = np.unique(np.nonzero(~np.isfinite(pixels))[1])
            raise DataFormatError(
                f"training pixels contain NaN or inf in bands {bad[:10].tolist()}; "
                "clean the cube (or mask those pixels) before fitting."
            )
        mean = pixels.mean(axis=0)
        std = pixels.std(axis=0)
        constant = pixels.max(axis=0) == pixels.min(axis=0)
        scale = np.where(constant, 1.0, std)
        zero_var = np.flatnonzero(constant).astype(np.int64)
        if pca_components is None:
            return cls(mean=mean, scale=scale, zero_variance_bands=zero_var)

        z = (pixels - mean) / scale
        z[:, zero_var] = 0.0
        pca_mean = z.mean(axis=0)
        z -= pca_mean
        cov = (z.T @ z) / z.shape[0]
        eigvals, eigvecs = np.linalg.eigh(cov)
        order = np.argsort(eigvals)[::-1]
        eigvals = np.clip(eigvals[order], 0.0, None)
        eigvecs = eigvecs[:, order]
        k = int(pca_components)
        components = eigvecs[:, :k]
        # Deterministic signs: the largest-magnitude loading of each axis is positive.
        pivots = np.argmax(np.abs(components), axis=0)
        signs = np.sign(components[pivots, np.arange(k)])
        components = components * np.where(signs == 0, 1.0, signs)
        total = eigvals.sum()
        ratio = eigvals[:k] / total if total > 0 else np.zeros(k)
        return cls(
            mean=mean,
            scale=scale,
            zero_variance_bands=zero_var,
            pca_components=np.ascontiguousarray(components),
            pca_mean=pca_mean,
            explained_variance_ratio=ratio,
        )

    @property
    def in_bands(self) -> int:
        """Number of bands the transform expects."""
        return int(self.mean.shape[0])

    @property
    def out_bands(self) -> int:
        """Number of bands ``apply`` returns (k with PCA, else B)."""
        if self.pca_components is None:
            return self.in_bands
        return int(self.pca_components.shape[1])

    def apply(self, cube: np.ndarray) -> np.ndarray:
        """Transforms a cube (or any ``(..., B)`` array) to float32 ``(..., out_bands)``.

        Works in chunks of pixels, so the float64 temporaries stay small on big cubes.
        The result is C-contiguous.

        Raises:
            DataFormatError: The last axis is not the fitted band count.
        """
        cube = np.asarray(cube)
        if cube.ndim < 1 or cube.shape[-1] != self.in_bands:
            raise DataFormatError(
                f"this transform was fitted on {self.in_bands} bands but the input has shape "
                f"{cube.shape} (last axis = bands); use the transform fitted for this scene."
            )
        flat = cube.reshape(-1, self.in_bands)
        out = np.empty((flat.shape[0], self.out_bands), dtype=np.float32)
        step = max(1, _CHUNK_ELEMENTS // max(self.in_bands, 1))
        for start in range(0, flat.shape[0], step):
            out[start : start + step] = self._apply_pixels(flat[start : start + step])
        return out.reshape(*cube.shape[:-1], self.out_bands)

    def _apply_pixels(self, pixels: np.ndarray) -> np.ndarray:
        z = (pixels.astype(np.float64) - self.mean) / self.scale
        z[:, self.zero_variance_bands] = 0.0
        if self.pca_components is None:
            return z
        assert self.pca_mean is not None
        return (z - self.pca_mean) @ self.pca_components

    def standardise(self, cube: np.ndarray) -> np.ndarray:
        """The per-band standardisation alone (no PCA): float32 ``(..., B)``; zero-variance
        bands are 0. Equals :meth:`apply` when no PCA is fitted."""
        if self.pca_components is None:
            return self.apply(cube)
        return replace(self, pca_components=None, pca_mean=None).apply(cube)

    def affine(self, *, inputs: InputStage) -> tuple[np.ndarray, np.ndarray]:
        """``(W, b)`` with ``apply(x) == x' @ W + b`` per pixel, where ``x'`` is what a model
        whose first layer is that map takes: ``inputs="raw"`` the raw bands (standardisation
        and PCA both in ``W, b``), ``"standardised"`` the standardised bands (PCA only; the
        standardisation stays outside, e.g. in the file's metadata).

        Returns:
            ``W`` ``(B, out_bands)`` and ``b`` ``(out_bands,)``, float64. Without PCA and
            ``inputs="standardised"`` that is the identity.
        """
        bands = self.in_bands
        if inputs == "standardised":
            w, b = np.eye(bands), np.zeros(bands)
        elif inputs == "raw":
            inv = 1.0 / self.scale
            inv[self.zero_variance_bands] = 0.0
            w, b = np.diag(inv), -self.mean * inv
        else:
            raise ConfigError(f"inputs={inputs!r}: fold the transform for 'raw' or 'standardised'.")
        if self.pca_components is None:
            return w, b
        assert self.pca_mean is not None
        p = self.pca_components
        return w @ p, b @ p - self.pca_mean @ p

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for run records."""
        ratio = self.explained_variance_ratio
        return {
            "in_bands": self.in_bands,
            "out_bands": self.out_bands,
            "pca": self.pca_components is not None,
            "zero_variance_bands": self.zero_variance_bands.tolist(),
            "explained_variance_ratio": None if ratio is None else ratio.tolist(),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the fitted parameters to ``path`` (``.npz``) atomically and returns it."""
        path = Path(path)
        has_pca = self.pca_components is not None
        empty = np.zeros(0)
        arrays: dict[str, Any] = {
            "format": np.array(_FORMAT),
            "version": np.array(_VERSION),
            "mean": self.mean,
            "scale": self.scale,
            "zero_variance_bands": self.zero_variance_bands,
            "has_pca": np.array(has_pca),
            "pca_components": empty if self.pca_components is None else self.pca_components,
            "pca_mean": empty if self.pca_mean is None else self.pca_mean,
            "explained_variance_ratio": (
                empty if self.explained_variance_ratio is None else self.explained_variance_ratio
            ),
        }
        with atomic_open(path, "wb") as f:
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SpectralTransform:
        """Reads a transform written by :meth:`save`.

        Raises:
            DataFormatError: The file is missing, not an ``.npz``, or not a saved transform.
        """
        path = Path(path)
        if not path.is_file():
            raise DataFormatError(f"no transform file at {path}; fit one and save() it first.")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except Exception as exc:
            raise DataFormatError(
                f"{path} is not a saved SpectralTransform (cannot read it as .npz: {exc})."
            ) from exc
        if str(arrays.get("format", "")) != _FORMAT:
            raise DataFormatError(
                f"{path} is not a saved SpectralTransform (no '{_FORMAT}' marker); "
                "pass the file written by SpectralTransform.save()."
            )
        version = int(arrays["version"])
        if version != _VERSION:
            raise DataFormatError(
                f"{path} holds transform format version {version}; this tfhsi reads "
                f"version {_VERSION}. Refit the transform."
            )
        has_pca = bool(arrays["has_pca"])
        return cls(
            mean=arrays["mean"],
            scale=arrays["scale"],
            zero_variance_bands=arrays["zero_variance_bands"].astype(np.int64),
            pca_components=arrays["pca_components"] if has_pca else None,
            pca_mean=arrays["pca_mean"] if has_pca else None,
            explained_variance_ratio=arrays["explained_variance_ratio"] if has_pca else None,
        )
