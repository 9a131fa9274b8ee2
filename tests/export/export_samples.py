"""Shapes and calibration data shared by the export tests (import this, not conftest)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BANDS_2D, PATCH, CLASSES = 8, 5, 4
BANDS_3D = 24


def random_representative(shape: tuple[int, ...], n: int = 16, seed: int = 0):
    """A calibration function yielding ``n`` batch-1 float32 samples of ``shape``."""

    def generate() -> Iterator[list[np.ndarray]]:
        rng = np.random.default_rng(seed)
        for _ in range(n):
            yield [rng.normal(size=(1, *shape)).astype(np.float32)]

    return generate
