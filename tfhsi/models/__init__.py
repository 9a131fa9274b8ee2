"""The model zoo: functional ``tf_keras`` builders registered with their metadata.

Every model outputs logits (no softmax) from a Dense layer named "logits", has a
static per-sample input shape and deterministic layer names, and uses only standard
layers, so TF-MOT, the TFLite converter and the Conv3D lowering can work on it.

Importing this package does not import TensorFlow; building a model does.

Example:
    >>> from tfhsi.models import MODELS, build_model
    >>> model = build_model("hybridsn", bands=30, n_classes=16)  # doctest: +SKIP
"""

from __future__ import annotations

from tfhsi.models import cnn1d, cnn2d, hamida, hybridsn, students  # noqa: F401  (register)
from tfhsi.models._registry import (
    MODELS,
    ModelSpec,
    build_model,
    input_shape,
    register_model,
)
from tfhsi.models._stats import count_macs

__all__ = ["MODELS", "ModelSpec", "build_model", "count_macs", "input_shape", "register_model"]
