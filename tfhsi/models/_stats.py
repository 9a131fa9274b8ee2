"""Multiply-accumulate counts of a built model, read from its layers' shapes."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tfhsi._keras import keras


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates for one sample through the weighted layers.

    Counts Conv1D/2D/3D, DepthwiseConv2D and Dense (one MAC per weight per output
    position); batch norm, activations and pooling are ignored (BN folds into the
    convolution on export).
    """
    from tfhsi._keras import keras

    layers = keras.layers
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv2D):  # subclass of Conv2D: test first
            out_positions = math.prod(layer.output.shape[1:-1])
            total += out_positions * math.prod(layer.depthwise_kernel.shape)
        elif isinstance(layer, (layers.Conv1D, layers.Conv2D, layers.Conv3D)):
            out_positions = math.prod(layer.output.shape[1:-1])
            total += out_positions * math.prod(layer.kernel.shape)
        elif isinstance(layer, layers.Dense):
            total += math.prod(layer.kernel.shape)
    return int(total)
