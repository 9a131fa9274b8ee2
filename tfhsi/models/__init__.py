"""The model zoo: functional ``tf_keras`` builders registered with their metadata.

Every model outputs logits (no softmax) from a Dense layer named "logits", has a
static per-sample input shape and deterministic layer names, and uses only standard
layers, so TF-MOT, the TFLite converter and the Conv3D lowering can work on it.

Importing this package does not import TensorFlow; building a model does.

Models from the user's code or files (``file.py:function``, ``package.module:function``,
``.keras`` / ``.h5``) go through :func:`resolve_model` (see :mod:`tfhsi.models.references`).

Example:
    >>> from tfhsi.models import MODELS, build_model, resolve_model
    >>> model = build_model("hybridsn", bands=30, n_classes=16)  # doctest: +SKIP
    >>> net = resolve_model("my_nets.py:build").build(bands=30, n_classes=16, patch_size=7)  # doctest: +SKIP
"""

from __future__ import annotations

from tfhsi.keras_checks import require_functional
from tfhsi.models import cnn1d, cnn2d, hamida, hybridsn, students  # noqa: F401  (register)
from tfhsi.models._registry import (
    MODELS,
    XLA_MIN_EPOCHS,
    ModelSpec,
    build_model,
    input_shape,
    register_model,
    trains_with_xla,
)
from tfhsi.models._stats import count_macs
from tfhsi.models.references import ModelSource, check_model_ref, resolve_model

__all__ = [
    "MODELS",
    "XLA_MIN_EPOCHS",
    "ModelSource",
    "ModelSpec",
    "build_model",
    "check_model_ref",
    "count_macs",
    "input_shape",
    "register_model",
    "require_functional",
    "resolve_model",
    "trains_with_xla",
]
