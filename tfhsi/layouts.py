"""Input layouts: the one rule between a model's per-sample input shape and the patches that
feed it. Used by the data pipeline, the model references, evaluation and the Python API.

``"3d"`` takes ``(k, k, B, 1)`` patches, ``"2d"`` ``(k, k, B)``, ``"1d"`` the centre pixel's
spectrum ``(B, 1)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

from tfhsi.errors import ConfigError

Layout = Literal["3d", "2d", "1d"]
LAYOUTS: tuple[str, ...] = get_args(Layout)

InputStage = Literal["transformed", "standardised", "raw"]
"""What a model's input values are: ``"transformed"`` the run's spectral transform applied
(standardised bands, or PCA scores: a Keras model of the run, or a ``.tflite`` without
metadata); ``"standardised"`` all the scene's bands, standardised per band (an exported file
whose metadata carries that normalisation; PCA is its first layer); ``"raw"`` the scene's
bands as stored (a file that standardises inside). :func:`tfhsi.export.metadata.input_stage`
reads it from a file."""
INPUT_STAGES: tuple[str, ...] = get_args(InputStage)


def check_layout(layout: str) -> None:
    """Raises ConfigError unless ``layout`` is '3d', '2d' or '1d'."""
    if layout not in LAYOUTS:
        raise ConfigError(
            f"layout={layout!r} is not supported; use '3d' (k, k, B, 1), '2d' (k, k, B) "
            "or '1d' (B, 1)."
        )


def layout_shape(layout: str, *, patch_size: int, bands: int) -> tuple[int, ...]:
    """Per-sample input shape of a layout (without the batch axis)."""
    check_layout(layout)
    if layout == "3d":
        return (patch_size, patch_size, bands, 1)
    if layout == "1d":
        return (bands, 1)
    return (patch_size, patch_size, bands)


def infer_layout(shape: Sequence[int | None]) -> tuple[Layout, int, int] | None:
    """``(layout, patch, bands)`` of a per-sample input shape (no batch axis), or None when
    the shape is no square patch of bands (or has unknown dimensions)."""
    dims = tuple(shape)
    if any(d is None for d in dims):
        return None
    if len(dims) == 4 and dims[3] == 1 and dims[0] == dims[1]:
        return "3d", int(dims[0]), int(dims[2])  # type: ignore[arg-type]
    if len(dims) == 3 and dims[0] == dims[1]:
        return "2d", int(dims[0]), int(dims[2])  # type: ignore[arg-type]
    if len(dims) == 2 and dims[1] == 1:
        return "1d", 1, int(dims[0])  # type: ignore[arg-type]
    return None
