"""Tiny models converted once per session with each preset (TF is slow to start)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from export_samples import BANDS_2D, BANDS_3D, CLASSES, PATCH, random_representative

from tfhsi.export.presets import Preset


def _student2d():
    from tfhsi.models import build_model

    return build_model("student2d", bands=BANDS_2D, n_classes=CLASSES, patch_size=PATCH, seed=0)


def _student3d():
    from tfhsi.models import build_model

    return build_model(
        "student3d", bands=BANDS_3D, n_classes=CLASSES, patch_size=PATCH, width=0.5, seed=0
    )


def _planted_float():
    """A 2-D model whose ELU has no int8 kernel: the int8 preset leaves it in float32."""
    from tfhsi._keras import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((PATCH, PATCH, BANDS_2D), name="patch")
    x = keras.layers.Conv2D(8, 3, name="conv")(inp)
    x = keras.layers.ELU(name="planted_elu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(CLASSES, name="logits")(x)
    return keras.Model(inp, out, name="planted")


MODELS: dict[str, tuple[Callable, tuple[int, ...]]] = {
    "student2d": (_student2d, (PATCH, PATCH, BANDS_2D)),
    "student3d": (_student3d, (PATCH, PATCH, BANDS_3D, 1)),
    "planted": (_planted_float, (PATCH, PATCH, BANDS_2D)),
}


class Converted:
    """Builds each model once and converts it with a preset on first request."""

    def __init__(self) -> None:
        self.models: dict[str, object] = {}
        self.cache: dict[tuple[str, str], bytes] = {}

    def model(self, name: str):
        if name not in self.models:
            self.models[name] = MODELS[name][0]()
        return self.models[name]

    def __call__(self, name: str, preset: str) -> bytes:
        from tfhsi.export import convert

        key = (name, preset)
        if key not in self.cache:
            shape = MODELS[name][1]
            self.cache[key] = convert(
                self.model(name),
                preset,
                representative=random_representative(shape),
                # auto-mixed searches on validation predictions; files that all predict the
                # same keep every layer int4
                validate=_validation() if Preset.parse(preset).needs_validation else None,
            )
        return self.cache[key]


def _same_predictions(data: bytes) -> np.ndarray:
    return np.zeros(4, np.int64)


def _validation():
    from tfhsi.export.aeq import Validation

    return Validation(predict=_same_predictions, labels=np.zeros(4, np.int64))


@pytest.fixture(scope="session")
def converted() -> Converted:
    """``converted(model_name, preset) -> bytes``, cached for the whole session."""
    return Converted()
