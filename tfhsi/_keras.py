"""The only module that imports TensorFlow, tf_keras and TF-MOT.

TF-MOT works with Keras 2 only; TensorFlow 2.16+ defaults to Keras 3. Setting
``TF_USE_LEGACY_KERAS=1`` before TensorFlow is imported makes ``tf.keras`` the
``tf_keras`` package, so TF-MOT's wrappers accept our models. Everything else in
tfhsi imports ``tf``, ``keras`` and ``tfmot`` from here.
"""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # errors still raise as Python exceptions

from tfhsi.errors import SetupError
from tfhsi.native import quiet_native_stderr

with quiet_native_stderr():
    try:
        import tensorflow as tf
        import tf_keras as keras
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SetupError(
            f"cannot import TensorFlow / tf_keras ({exc}). Install them with "
            "`pip install 'tensorflow==2.21.*' 'tf-keras==2.21.*'` (same minor version)."
        ) from exc
    try:
        import tensorflow_model_optimization as tfmot
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SetupError(
            f"cannot import tensorflow_model_optimization ({exc}). "
            "Install it with `pip install 'tensorflow-model-optimization==0.8.*'`."
        ) from exc

tf.get_logger().setLevel("ERROR")
# Random layers (Dropout, …) draw from a seeded tf.random.Generator instead of the legacy
# stateful ops: the same masks for a seed inside XLA-compiled steps too, where the legacy ops
# ignore their seeds (tfhsi.models.trains_with_xla). Set before any layer is built.
keras.backend.experimental.enable_tf_random_generator()

__all__ = ["keras", "tf", "tfmot"]
