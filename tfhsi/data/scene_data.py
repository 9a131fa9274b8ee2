"""The in-memory form of a loaded scene, real or synthetic."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SceneData:
    """A hyperspectral cube with its ground truth.

    Attributes:
        name: Registry name of the scene, or ``synthetic:...`` for generated scenes.
        cube: ``(H, W, B)`` array in the file's dtype (C-contiguous).
        labels: ``(H, W)`` int32; 0 = unlabelled, 1..C = classes in ``class_names`` order.
        class_names: One name per class (index ``i`` is label ``i + 1``).
        rgb_bands: Zero-based band indices for a false-colour composite.
        synthetic: True for generated scenes; shown wherever results appear.
        sources: File name -> sha256 of every file the scene was read from.
    """

    name: str
    cube: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    rgb_bands: tuple[int, int, int]
    synthetic: bool = False
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        h, w, b = self.cube.shape
        return int(h), int(w), int(b)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_bands(self) -> int:
        return int(self.cube.shape[-1])

    @property
    def display_name(self) -> str:
        return f"{self.name} (SYNTHETIC)" if self.synthetic else self.name

    def class_counts(self) -> np.ndarray:
        """Labelled pixels per class, shape ``(C,)``."""
        return class_counts(self.labels, self.n_classes)


def class_counts(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts pixels of labels 1..n_classes (label 0 is unlabelled)."""
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=n_classes + 1)
    return counts[1 : n_classes + 1]
