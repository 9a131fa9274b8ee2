"""3-D CNN after Ben Hamida et al. (IEEE TGRS 2018), as configured in DeepHyperX.

Layers (kernel and stride given as (row, col, band)); Conv3D kernels see the
(k, k, B, 1) patch, so the spectral axis is the last spatial one:

=========  ==========  ==========  =========  ======================================
layer      filters     kernel      stride     padding
=========  ==========  ==========  =========  ======================================
conv1      20          (3, 3, 3)   (1, 1, 1)  valid
pool1      20          (1, 1, 3)   (1, 1, 2)  same   (a strided conv "pooling")
conv2      35          (3, 3, 3)   (1, 1, 1)  valid
pool2      35          (1, 1, 3)   (1, 1, 2)  same
conv3      35          (1, 1, 3)   (1, 1, 1)  same
conv4      35          (1, 1, 2)   (1, 1, 2)  same
logits     classes     Dense on the flattened features
=========  ==========  ==========  =========  ======================================

ReLU follows conv1-4 (not the pooling convs), no batch norm and no dropout, as in
DeepHyperX. Deviation: DeepHyperX pads conv2 by one band on each side of the
spectral axis only; Keras cannot pad one axis inside Conv3D (and TF-MOT does not
handle ZeroPadding3D), so conv2 is "valid" and drops two bands. The two spatial
valid convolutions need a patch >= 5 (the paper's 5x5 gives a 1x1 output).

The registry keeps the paper's input (5x5 patches, all bands). tfhsi's recipes and benchmark
feed it 11x11 patches of 30 PCA components fitted on the training pixels (``--patch 11 --pca
30``): on Indian Pines (``random:0.1``, 3 seeds) that gives 96.7 ± 0.3 % OA with 113 k
parameters in ~45 s per seed, against 93.9 ± 0.7 % for 9x9 patches of all 200 bands (381 k
parameters, ~9 min).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tfhsi.models._common import Seeds, scaled
from tfhsi.models._registry import register_model

if TYPE_CHECKING:
    from tfhsi._keras import keras


@register_model(
    "hamida3d",
    kind="3d",
    layout="3d",
    default_patch=5,
    default_bands=None,
    paper="Ben Hamida et al., IEEE TGRS 2018",
    description="3-D CNN, strided Conv3D spectral pooling, all bands (DeepHyperX 'hamida')",
    role="teacher",
    min_bands=7,
    min_patch=5,
)
def hamida3d(
    *, bands: int, n_classes: int, patch_size: int, width: float, seed: int | None
) -> keras.Model:
    """Builds the Hamida et al. 3-D CNN for (patch_size, patch_size, bands, 1) inputs."""
    from tfhsi._keras import keras

    layers = keras.layers
    seeds = Seeds(seed)
    c20, c35 = scaled(20, width), scaled(35, width)

    def conv(x, filters, kernel, strides, padding, name, relu):  # type: ignore[no-untyped-def]
        x = layers.Conv3D(
            filters,
            kernel,
            strides=strides,
            padding=padding,
            kernel_initializer=seeds.init("he_normal"),
            name=name,
        )(x)
        return layers.ReLU(name=f"{name}_relu")(x) if relu else x

    inputs = keras.Input(shape=(patch_size, patch_size, bands, 1), name="patch")
    x = conv(inputs, c20, (3, 3, 3), (1, 1, 1), "valid", "conv1", relu=True)
    x = conv(x, c20, (1, 1, 3), (1, 1, 2), "same", "pool1", relu=False)
    x = conv(x, c35, (3, 3, 3), (1, 1, 1), "valid", "conv2", relu=True)
    x = conv(x, c35, (1, 1, 3), (1, 1, 2), "same", "pool2", relu=False)
    x = conv(x, c35, (1, 1, 3), (1, 1, 1), "same", "conv3", relu=True)
    x = conv(x, c35, (1, 1, 2), (1, 1, 2), "same", "conv4", relu=True)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(
        n_classes, kernel_initializer=seeds.init("glorot_uniform"), name="logits"
    )(x)
    return keras.Model(inputs, outputs, name="hamida3d")
