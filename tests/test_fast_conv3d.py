"""Conv3D on Conv2D kernels (tfhsi.fast_conv3d): the same function, gradients and
variables as the Conv3D it replaces."""

from __future__ import annotations

import numpy as np
import pytest

from tfhsi._keras import keras, tf
from tfhsi.fast_conv3d import Conv3DAsConv2D, conv3d_as_conv2d

layers = keras.layers

CASES = [  # kernel, strides, padding, dilation, bias, activation
    ((3, 3, 3), (1, 1, 1), "valid", (1, 1, 1), True, None),
    ((3, 3, 7), (1, 1, 2), "valid", (1, 1, 1), False, None),
    ((2, 3, 4), (2, 1, 3), "same", (1, 1, 1), True, "relu"),
    ((3, 3, 3), (1, 1, 1), "same", (2, 1, 1), True, None),
    ((1, 1, 3), (1, 1, 2), "same", (1, 1, 1), True, None),
    ((1, 1, 3), (1, 1, 1), "valid", (1, 1, 1), True, "tanh"),
]


def _model(kernel, strides, padding, dilation, bias, activation) -> keras.Model:
    inputs = keras.Input((9, 8, 13, 2))
    x = layers.Conv3D(
        5,
        kernel,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        use_bias=bias,
        activation=activation,
        bias_initializer="glorot_uniform",
        name="conv",
    )(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(3, name="logits")(x))


@pytest.mark.parametrize("case", CASES, ids=[str(c[:4]) for c in CASES])
def test_the_substitute_computes_the_conv3d_and_its_gradients(case) -> None:
    keras.utils.set_random_seed(0)
    model = _model(*case)
    fast = conv3d_as_conv2d(model)
    assert any(isinstance(layer, Conv3DAsConv2D) for layer in fast.layers)
    assert {id(v) for v in fast.weights} == {id(v) for v in model.weights}
    x = np.random.default_rng(1).normal(size=(4, 9, 8, 13, 2)).astype("float32")
    outs, grads = [], []
    for net in (model, fast):
        with tf.GradientTape() as tape:
            y = net(x, training=True)
            loss = tf.reduce_sum(y * tf.range(1.0, 4.0))
        outs.append(y.numpy())
        grads.append([g.numpy() for g in tape.gradient(loss, model.trainable_weights)])
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-5)
    for g_fast, g_plain in zip(grads[1], grads[0], strict=True):
        np.testing.assert_allclose(g_fast, g_plain, rtol=1e-4, atol=1e-4)


def test_training_the_substitute_trains_the_given_model() -> None:
    keras.utils.set_random_seed(0)
    model = _model(*CASES[1])
    before = [w.copy() for w in model.get_weights()]
    fast = conv3d_as_conv2d(model)
    fast.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    x = np.random.default_rng(2).normal(size=(16, 9, 8, 13, 2)).astype("float32")
    fast.fit(x, np.arange(16) % 3, epochs=1, verbose=0)
    assert not np.allclose(model.get_layer("conv").get_weights()[0], before[0])
    np.testing.assert_allclose(model.predict(x, verbose=0), fast.predict(x, verbose=0), atol=1e-5)
    assert fast.name == model.name


def test_models_it_cannot_speed_up_come_back_unchanged() -> None:
    flat = keras.Sequential([keras.Input((4,)), layers.Dense(2)])
    assert conv3d_as_conv2d(flat) is flat  # no Conv3D
    inputs = keras.Input((5, 5, 9, 1))
    dilated = keras.Model(inputs, layers.Conv3D(4, 3, dilation_rate=(1, 1, 2))(inputs))
    assert conv3d_as_conv2d(dilated) is dilated
    dynamic = keras.Model(*(lambda i: (i, layers.Conv3D(2, 3)(i)))(keras.Input((None, None, 9, 1))))
    assert conv3d_as_conv2d(dynamic) is dynamic
