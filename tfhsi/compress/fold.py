"""Folding a per-pixel linear preprocessing into a model as its first layer.

A spectral transform fitted on training pixels (per-band standardisation, PCA) is an affine
map of each pixel's bands, ``x @ W + b`` (:meth:`tfhsi.data.transforms.SpectralTransform.affine`).
:func:`fold_input_map` puts that map in front of a model, so the model takes the bands the
map takes (e.g. all the scene's bands instead of 30 PCA scores) and an app developer
applies nothing outside the file but what its metadata says. The map is one 1×1 CONV_2D
(a DEPTHWISE_CONV_2D when ``W`` is diagonal), which has int8 kernels in LiteRT, XNNPACK and
TFLite Micro.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tfhsi.errors import ConfigError

if TYPE_CHECKING:
    from tfhsi._keras import keras

FOLDED_LAYER = "spectral_transform"
"""Name of the folded first layer."""


def fold_input_map(
    model: keras.Model, weights: np.ndarray, bias: np.ndarray, *, name: str | None = None
) -> keras.Model:
    """``model`` preceded by the per-pixel map ``x @ weights + bias`` on its band axis.

    Args:
        model: A functional ``tf_keras`` model taking ``(k, k, C)``, ``(k, k, C, 1)`` or
            ``(C, 1)`` inputs (see :mod:`tfhsi.layouts`).
        weights: ``(B, C)``: the new input has ``B`` bands on the same axis.
        bias: ``(C,)``.
        name: The new model's name (default: the model's).

    Returns:
        A new model with the same layout and patch, ``B`` bands in, the same outputs; the
        original model is a nested layer with its trained weights.

    Raises:
        ConfigError: ``weights``/``bias`` do not match the model's band count.
    """
    from tfhsi._keras import keras
    from tfhsi.layouts import infer_layout

    weights = np.asarray(weights, np.float64)
    bias = np.asarray(bias, np.float64).ravel()
    found = infer_layout(tuple(model.input_shape[1:]))
    if found is None:
        raise ConfigError(
            f"model {model.name!r} takes inputs of shape {model.input_shape[1:]}; folding a "
            "spectral map needs a (k, k, C), (k, k, C, 1) or (C, 1) input."
        )
    layout, patch, bands = found
    if weights.ndim != 2 or weights.shape[1] != bands or bias.shape != (bands,):
        raise ConfigError(
            f"the spectral map is {weights.shape} + {bias.shape} but model {model.name!r} "
            f"takes {bands} bands; fold the transform the model was trained on."
        )
    in_bands = weights.shape[0]
    grid = (1, 1) if layout == "1d" else (patch, patch)
    inputs = keras.Input(
        shape=(in_bands, 1)
        if layout == "1d"
        else (*grid, in_bands) + ((1,) if layout == "3d" else ()),
        name="bands",
    )
    x = inputs if layout == "2d" else keras.layers.Reshape((*grid, in_bands))(inputs)
    diagonal = in_bands == bands and np.array_equal(weights, np.diag(np.diag(weights)))
    if diagonal:
        layer = keras.layers.DepthwiseConv2D(1, name=FOLDED_LAYER)
        x = layer(x)
        layer.set_weights([np.diag(weights).reshape(1, 1, bands, 1), bias])
    else:
        layer = keras.layers.Conv2D(bands, 1, name=FOLDED_LAYER)
        x = layer(x)
        layer.set_weights([weights.reshape(1, 1, in_bands, bands), bias])
    if layout == "3d":
        x = keras.layers.Reshape((*grid, bands, 1))(x)
    elif layout == "1d":
        x = keras.layers.Reshape((bands, 1))(x)
    return keras.Model(inputs, model(x), name=name or model.name)
