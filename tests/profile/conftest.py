"""Tiny .tflite models built and converted inline, shared by the profiling tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from profile_samples import MACS_2D, SAMPLE_2D  # noqa: F401


def _converter(tf, model, sample_shape, *, int8: bool):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(1)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.normal(size=(1, *sample_shape)).astype(np.float32)] for _ in range(16)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter


@pytest.fixture(scope="session")
def convert() -> Callable[..., bytes]:
    """``convert(build, sample_shape, int8=True)``: builds a batch-1 tf_keras model and converts it."""
    import warnings

    from tfhsi._keras import keras, tf

    def run(build: Callable, sample_shape: tuple[int, ...], *, int8: bool = True) -> bytes:
        keras.utils.set_random_seed(0)
        inp = keras.Input(sample_shape, batch_size=1)
        model = keras.Model(inp, build(keras.layers, inp))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _converter(tf, model, sample_shape, int8=int8).convert()

    return run


def _tiny_2d(layers, x):
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.DepthwiseConv2D(3, activation="relu")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return layers.Dense(5)(x)


def _conv3d(layers, x):
    x = layers.Conv3D(4, 3, activation="relu")(x)
    return layers.Dense(3)(layers.Flatten()(x))


def _fat_dense(layers, x):  # 5000 × 256 int8 weights: ~1.3 MB, more than 1 MiB of flash
    return layers.Dense(4)(layers.Dense(256, activation="relu")(x))


@pytest.fixture(scope="session")
def int8_2d(convert) -> bytes:
    return convert(_tiny_2d, SAMPLE_2D)


@pytest.fixture(scope="session")
def float_2d(convert) -> bytes:
    return convert(_tiny_2d, SAMPLE_2D, int8=False)


@pytest.fixture(scope="session")
def int8_conv3d(convert) -> bytes:
    return convert(_conv3d, (7, 7, 8, 1))


@pytest.fixture(scope="session")
def fat_dense(convert) -> bytes:
    return convert(_fat_dense, (5000,))


@pytest.fixture
def int8_2d_path(int8_2d: bytes, tmp_path: Path) -> Path:
    path = tmp_path / "tiny2d_int8.tflite"
    path.write_bytes(int8_2d)
    return path
