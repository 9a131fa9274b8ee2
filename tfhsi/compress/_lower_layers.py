"""Keras builders that re-express one 3-D layer (other than Conv3D) on folded rank-4 tensors.

See :mod:`tfhsi.compress.lower` for the folded layout and the maths. Every builder
takes a :class:`Folded` tensor and returns one, using only stock ``tf_keras`` layers
(Conv2D, Reshape, Cropping2D, ZeroPadding2D, MaxPooling2D, AveragePooling2D,
Concatenate, BatchNormalization, GlobalAverage/MaxPooling2D), so the lowered model
saves, loads and converts like any other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfhsi._keras import keras
from tfhsi.compress._lower_convs import conv3d
from tfhsi.compress._lower_tensors import (
    MAX_CONCAT_INPUTS,
    Folded,
    LayerLowering,
    concat,
    exact,
    reshape,
    spectral_view,
    unfold_from_spectral,
)
from tfhsi.errors import UnsupportedError

__all__ = [
    "MAX_CONCAT_INPUTS",
    "Folded",
    "LayerLowering",
    "batch_norm",
    "concat",
    "conv3d",
    "cropping3d",
    "exact",
    "global_pooling3d",
    "is_channel_batch_norm",
    "pooling3d",
    "reshape",
    "zero_padding3d",
]

layers = keras.layers


def is_channel_batch_norm(layer: Any, rank: int) -> bool:
    """A BatchNormalization normalising the last axis of a rank-``rank`` tensor."""
    if not isinstance(layer, layers.BatchNormalization):
        return False
    axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    return [a % rank for a in axis] == [rank - 1]


def batch_norm(layer: Any, x: Folded) -> tuple[Folded, LayerLowering]:
    """Channel BatchNormalization on a folded tensor: the same BN, its vectors tiled ``d`` times."""
    if not is_channel_batch_norm(layer, 5):
        raise UnsupportedError(
            f"BatchNormalization layer {layer.name!r} normalises axis {layer.axis} of a 5-D "
            "tensor; only the channel axis (-1) can be lowered."
        )
    config = layer.get_config()
    config.update(axis=-1, name=layer.name)
    config.pop("renorm", None)
    new = layers.BatchNormalization.from_config(config)
    y = new(x.tensor)
    new.set_weights([np.tile(w, x.d) for w in layer.get_weights()])
    count = sum(int(np.prod(v.shape)) for v in layer.weights)
    report = LayerLowering(layer.name, "BatchNormalization", "reshape", 0, count, count * x.d, 0, 0)
    return Folded(y, x.h, x.w, x.d, x.c), report


def pooling3d(layer: Any, x: Folded) -> tuple[Folded, LayerLowering]:
    """Max/average 3-D pooling as a spatial 2-D pool, then a spectral 2-D pool on the (h*w, d) view.

    Both separate exactly: a max over a box is the max of the maxima, and TF's average
    pooling counts only real (unpadded) cells, a product set, so the mean of means is
    the mean.
    """
    name = layer.name
    if layer.data_format != "channels_last":
        raise UnsupportedError(
            f"{type(layer).__name__} layer {name!r} uses data_format={layer.data_format!r}; "
            "only 'channels_last' is supported."
        )
    pool2d = (
        layers.MaxPooling2D if isinstance(layer, layers.MaxPooling3D) else layers.AveragePooling2D
    )
    (ph, pw, pd), (sh, sw, sd) = layer.pool_size, layer.strides
    t, h, w = x.tensor, x.h, x.w
    if (ph, pw, sh, sw) != (1, 1, 1, 1):
        t = pool2d((ph, pw), strides=(sh, sw), padding=layer.padding, name=f"{name}__spatial")(t)
        h, w = int(t.shape[1]), int(t.shape[2])
    out = Folded(t, h, w, x.d, x.c)
    if (pd, sd) != (1, 1):
        view = spectral_view(out, f"{name}__view")
        y = pool2d((1, pd), strides=(1, sd), padding=layer.padding, name=f"{name}__spectral")(view)
        out = unfold_from_spectral(y, h, w, f"{name}__fold")
    report = LayerLowering(name, type(layer).__name__, "reshape", 0, 0, 0, 0, 0)
    return out, report


def global_pooling3d(layer: Any, x: Folded) -> tuple[Any, LayerLowering]:
    """GlobalAverage/MaxPooling3D as the 2-D global pool of the ``(h*w, d, c)`` view."""
    if layer.data_format != "channels_last":
        raise UnsupportedError(
            f"{type(layer).__name__} layer {layer.name!r} uses data_format="
            f"{layer.data_format!r}; only 'channels_last' is supported."
        )
    cls = (
        layers.GlobalMaxPooling2D
        if isinstance(layer, layers.GlobalMaxPooling3D)
        else layers.GlobalAveragePooling2D
    )
    view = spectral_view(x, f"{layer.name}__view")
    y = cls(keepdims=layer.keepdims, name=layer.name)(view)
    report = LayerLowering(layer.name, type(layer).__name__, "reshape", 0, 0, 0, 0, 0)
    if layer.keepdims:
        return Folded(y, 1, 1, 1, x.c), report
    return y, report


def zero_padding3d(layer: Any, x: Folded) -> Folded:
    """ZeroPadding3D: spatial padding, then the spectral one as channel padding (d*c axis)."""
    if layer.data_format != "channels_last":
        raise UnsupportedError(f"ZeroPadding3D layer {layer.name!r} must be channels_last.")
    (top, bottom), (left, right), (front, back) = layer.padding
    t = x.tensor
    if top or bottom or left or right:
        t = layers.ZeroPadding2D(((top, bottom), (left, right)), name=f"{layer.name}__spatial")(t)
    if front or back:
        # channels_first 2-D padding pads the last two axes: (w, d*c); w is left alone.
        t = layers.ZeroPadding2D(
            ((0, 0), (front * x.c, back * x.c)),
            data_format="channels_first",
            name=f"{layer.name}__spectral",
        )(t)
    return Folded(t, x.h + top + bottom, x.w + left + right, x.d + front + back, x.c)


def cropping3d(layer: Any, x: Folded) -> Folded:
    """Cropping3D: spatial crop, then the spectral one as a channel crop (d*c axis)."""
    if layer.data_format != "channels_last":
        raise UnsupportedError(f"Cropping3D layer {layer.name!r} must be channels_last.")
    (top, bottom), (left, right), (front, back) = layer.cropping
    t = x.tensor
    if top or bottom or left or right:
        t = layers.Cropping2D(((top, bottom), (left, right)), name=f"{layer.name}__spatial")(t)
    if front or back:
        t = layers.Cropping2D(
            ((0, 0), (front * x.c, back * x.c)),
            data_format="channels_first",
            name=f"{layer.name}__spectral",
        )(t)
    return Folded(t, x.h - top - bottom, x.w - left - right, x.d - front - back, x.c)
