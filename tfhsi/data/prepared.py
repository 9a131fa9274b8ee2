"""A scene made ready for a model: split, transform fitted on training pixels, patch streams.

:func:`prepare` is the one place where the data-layer pieces meet, so every command and
recipe gets the same leakage-safe order: split first, fit the spectral transform on the
training pixels only, apply it to the whole cube, then stream patches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tfhsi.data.patches import Layout
from tfhsi.data.scene_data import SceneData
from tfhsi.data.splits import Split
from tfhsi.data.transforms import SpectralTransform
from tfhsi.errors import SplitError
from tfhsi.layouts import INPUT_STAGES, InputStage

if TYPE_CHECKING:
    from tfhsi._keras import tf

CALIBRATION_QUANTILES = (1e-3, 1.0 - 1e-3)
"""Calibration patches are clipped to these quantiles of the training pixels' values (see
:meth:`PreparedScene.calibration_range`)."""

SPLIT_FILE = "split.npz"
TRANSFORM_FILE = "transform.npz"


@dataclass(frozen=True)
class PreparedScene:
    """A scene with its split, its fitted transform and the transformed float32 cube."""

    scene: SceneData
    split: Split
    transform: SpectralTransform
    cube: np.ndarray

    @property
    def bands(self) -> int:
        return int(self.cube.shape[-1])

    def cube_at(self, stage: InputStage = "transformed") -> np.ndarray:
        """The float32 cube a model with input ``stage`` takes (see
        :data:`tfhsi.layouts.InputStage`): :attr:`cube`, the standardised bands, or the raw
        bands."""
        if stage == "transformed":
            return self.cube
        if stage == "standardised":
            return self.cube if self.transform.pca_components is None else self._standardised
        if stage == "raw":
            return self._raw
        raise ValueError(f"stage must be one of {INPUT_STAGES}; got {stage!r}")

    def bands_at(self, stage: InputStage = "transformed") -> int:
        """Bands of :meth:`cube_at` ``(stage)``."""
        return self.bands if stage == "transformed" else self.transform.in_bands

    @cached_property
    def _standardised(self) -> np.ndarray:
        return self.transform.standardise(self.scene.cube)

    @cached_property
    def _raw(self) -> np.ndarray:
        return np.asarray(self.scene.cube, np.float32)

    def selection_subset(self) -> str | None:
        """The subset that picks the best epoch: ``"val"``, or None (keep the last epoch).

        The one rule for every trainer: never ``"test"``. With None, pass ``val_data=None`` to
        :func:`tfhsi.train.fit.train_model`. See :meth:`tfhsi.data.splits.Split.selection_subset`.
        """
        return self.split.selection_subset()

    def centers(self, subset: str) -> np.ndarray:
        """``(N, 2)`` row/col of the pixels of ``subset`` (train, val or test)."""
        return self.split.centers(subset)

    def targets(self, subset: str) -> np.ndarray:
        """0-based class indices of the pixels of ``subset``, in :meth:`centers` order."""
        rows, cols = self.centers(subset).T
        return (self.scene.labels[rows, cols] - 1).astype(np.int32)

    def dataset(
        self,
        subset: str,
        *,
        patch_size: int,
        layout: Layout,
        batch_size: int = 64,
        shuffle: bool = False,
        seed: int = 0,
        augment: bool = False,
        unlabelled: np.ndarray | None = None,
        stage: InputStage = "transformed",
    ) -> tf.data.Dataset:
        """Batched ``(patches, class index)`` of ``subset``, streamed from the padded cube.

        ``unlabelled`` centres (see :meth:`unlabelled_centers`) join the subset with the label
        :data:`~tfhsi.data.pipeline.UNLABELLED`. ``stage``: the values the model takes
        (:meth:`cube_at`).
        """
        from tfhsi.data.pipeline import UNLABELLED, patch_dataset

        centers, targets = self.centers(subset), self.targets(subset)
        if len(centers) == 0:
            raise SplitError(
                f"the {subset} set of split {self.split.spec!r} on {self.scene.display_name} is empty; "
                "choose a larger fraction or another split."
            )
        if unlabelled is not None and len(unlabelled):
            centers = np.concatenate([centers, np.asarray(unlabelled, np.int32)])
            targets = np.concatenate([targets, np.full(len(unlabelled), UNLABELLED, np.int32)])
        return patch_dataset(
            self.cube_at(stage),
            centers,
            targets,
            patch_size=patch_size,
            layout=layout,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            augment=augment,
            unlabelled_ok=unlabelled is not None,
        )

    def unlabelled_centers(self, margin: int) -> np.ndarray:
        """``(N, 2)`` pixels without a class whose ``(2·margin+1)²`` window holds no test or
        validation pixel: a transfer set that adds no overlap with held-out pixels."""
        from scipy.ndimage import maximum_filter

        held_out = (self.split.test | self.split.val).astype(np.uint8)
        near = maximum_filter(held_out, size=2 * margin + 1, mode="constant") > 0
        return np.argwhere((self.scene.labels == 0) & ~near).astype(np.int32)

    def representative(
        self,
        *,
        patch_size: int,
        layout: Layout,
        num_samples: int = 200,
        seed: int = 0,
        stage: InputStage = "transformed",
    ) -> Callable[[], Iterator[list[np.ndarray]]]:
        """Calibration patches for int8 conversion, drawn from training pixels only, their
        values clipped to :meth:`calibration_range`."""
        from tfhsi.data.pipeline import representative_dataset

        patches = representative_dataset(
            self.cube_at(stage),
            self.centers("train"),
            patch_size=patch_size,
            layout=layout,
            num_samples=num_samples,
            seed=seed,
        )
        low, high = self.calibration_range(stage)

        def clipped() -> Iterator[list[np.ndarray]]:
            for sample in patches():
                yield [np.clip(x, low, high) for x in sample]

        return clipped

    def calibration_range(self, stage: InputStage = "transformed") -> tuple[float, float]:
        """The values an integer file's input is calibrated for: the 0.1 % and 99.9 %
        quantiles (:data:`CALIBRATION_QUANTILES`) of :meth:`cube_at` ``(stage)`` over the
        training pixels. A few corrupt pixels (Salinas-A has two about 840 standard deviations
        out in three bands) would otherwise set the int8 input scale, and every ordinary value
        would round to a handful of steps; with this range they saturate instead."""
        low, high = np.quantile(self._training_values(stage), CALIBRATION_QUANTILES)
        return float(low), float(high)

    def _training_values(self, stage: InputStage) -> np.ndarray:
        """``(N_train, bands)`` values of :meth:`cube_at` ``(stage)`` at the training pixels."""
        return self.cube_at(stage)[self.split.train]

    def value_range(self, stage: InputStage = "transformed") -> tuple[np.ndarray, np.ndarray]:
        """Per-band ``(min, max)`` of :meth:`cube_at` ``(stage)`` over the training pixels."""
        pixels = self._training_values(stage)
        return pixels.min(axis=0), pixels.max(axis=0)

    def save(self, folder: str | Path) -> dict[str, Any]:
        """Writes the split and the fitted transform to ``folder``; returns what was written."""
        folder = Path(folder)
        return {
            "split": str(self.split.save(folder / SPLIT_FILE).name),
            "transform": str(self.transform.save(folder / TRANSFORM_FILE).name),
        }


def prepare(scene: SceneData, split: Split, *, pca_components: int | None = None) -> PreparedScene:
    """Fits the spectral transform on ``split.train`` pixels only and applies it to the cube."""
    if split.train.shape != scene.labels.shape:
        raise SplitError(
            f"split masks are {split.train.shape[0]}×{split.train.shape[1]} but "
            f"{scene.display_name} is {scene.labels.shape[0]}×{scene.labels.shape[1]}; "
            "make the split on this scene's labels."
        )
    transform = SpectralTransform.fit(scene.cube, split.train, pca_components=pca_components)
    return PreparedScene(scene, split, transform, transform.apply(scene.cube))


def load_prepared(scene: SceneData, folder: str | Path) -> PreparedScene:
    """Rebuilds a :class:`PreparedScene` from the split and transform saved in ``folder``."""
    folder = Path(folder)
    split = Split.load(folder / SPLIT_FILE)
    transform = SpectralTransform.load(folder / TRANSFORM_FILE)
    return PreparedScene(scene, split, transform, transform.apply(scene.cube))
