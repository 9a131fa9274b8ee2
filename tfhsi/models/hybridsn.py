"""HybridSN after Roy et al. (IEEE GRSL 2019): three Conv3D, one Conv2D, two dense layers.

The paper feeds 25x25 patches of 30 PCA components (Indian Pines; 15 for Pavia U
and Salinas):

=========  =====================  =======================================
layer      filters / units        kernel (row, col, band), all "valid"
=========  =====================  =======================================
conv3d_1   8                      (3, 3, 7)
conv3d_2   16                     (3, 3, 5)
conv3d_3   32                     (3, 3, 3)
reshape    bands x filters become the channels of a 2-D map
conv2d     64                     (3, 3)
fc1, fc2   256, 128 (+ dropout 0.4 after each)
logits     classes
=========  =====================  =======================================

ReLU after every layer but the logits, no batch norm, as in the paper: 5,122,176
parameters for Indian Pines (the paper's count) and 0.25 G multiply-accumulates per
25x25x30 patch. The costliest model here on a CPU: measured ~56 patches/s training
(batch 64) and ~180 patches/s inference on the 2-core reference machine, so one epoch
of a 10 % Indian Pines split takes ~20 s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tfhsi.models._common import Seeds, scaled
from tfhsi.models._registry import register_model

if TYPE_CHECKING:
    from tfhsi._keras import keras


@register_model(
    "hybridsn",
    kind="3d",
    layout="3d",
    default_patch=25,
    default_bands=30,
    paper="Roy et al., IEEE GRSL 2019",
    description="HybridSN: 3 Conv3D -> Conv2D -> 2 dense + dropout 0.4; PCA bands (15 for Pavia U)",
    role="teacher",
    min_bands=13,
    min_patch=9,
)
def hybridsn(
    *, bands: int, n_classes: int, patch_size: int, width: float, seed: int | None
) -> keras.Model:
    """Builds HybridSN for (patch_size, patch_size, bands, 1) inputs."""
    from tfhsi._keras import keras

    layers = keras.layers
    seeds = Seeds(seed)
    inputs = keras.Input(shape=(patch_size, patch_size, bands, 1), name="patch")
    x = inputs
    for i, (filters, depth) in enumerate(((8, 7), (16, 5), (32, 3)), start=1):
        x = layers.Conv3D(
            scaled(filters, width),
            (3, 3, depth),
            kernel_initializer=seeds.init("glorot_uniform"),
            name=f"conv3d_{i}",
        )(x)
        x = layers.ReLU(name=f"conv3d_{i}_relu")(x)
    k, _, b, c = (int(d) for d in x.shape[1:])
    x = layers.Reshape((k, k, b * c), name="to_2d")(x)
    x = layers.Conv2D(
        scaled(64, width), (3, 3), kernel_initializer=seeds.init("glorot_uniform"), name="conv2d"
    )(x)
    x = layers.ReLU(name="conv2d_relu")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate((256, 128), start=1):
        x = layers.Dense(
            scaled(units, width), kernel_initializer=seeds.init("glorot_uniform"), name=f"fc{i}"
        )(x)
        x = layers.ReLU(name=f"fc{i}_relu")(x)
        x = layers.Dropout(0.4, seed=seeds.next(), name=f"fc{i}_dropout")(x)
    outputs = layers.Dense(
        n_classes, kernel_initializer=seeds.init("glorot_uniform"), name="logits"
    )(x)
    return keras.Model(inputs, outputs, name="hybridsn")
