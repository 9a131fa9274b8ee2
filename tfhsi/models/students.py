"""Compact students for microcontrollers (distilled from the teachers).

Both take all the scene's bands on a small patch (7-9), so they read the same
pixels as ``hamida3d`` and need no PCA on the device. Widths scale with ``width``.

``student3d`` - three strided Conv3D+BN+ReLU (8, 16, 16 filters; spectral kernels
7, 5, 3, spectral stride 2 each), the last one's spatial kernel spanning what is
left of the patch so the output is 1x1 whatever the patch; flatten, dropout, logits.
~19 k parameters and ~3.8 M MACs for a 7x7x200 patch.

``student2d`` - a 1x1 Conv2D mixes the B bands into 32 features (a learned PCA),
then two depthwise-separable blocks (DepthwiseConv2D 3x3 valid + BN + ReLU, 1x1
Conv2D + BN + ReLU, 32 then 64 channels), global average pooling, dropout, logits.
DepthwiseConv2D followed by a 1x1 Conv2D (not SeparableConv2D) keeps every layer one
that TF-MOT quantises and prunes directly. ~12 k parameters, ~0.65 M MACs at 9x9x200.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tfhsi.models._common import Seeds, scaled
from tfhsi.models._registry import register_model

if TYPE_CHECKING:
    from tfhsi._keras import keras


@register_model(
    "student3d",
    kind="3d",
    layout="3d",
    default_patch=7,
    default_bands=None,
    paper="after Ben Hamida et al., 2018",
    description="MCU 3-D student (this project): 3 strided Conv3D+BN+ReLU (8,16,16), 1x1 output, logits",
    role="student",
    min_bands=23,
    min_patch=5,
    jit_compile=True,  # 1.3x on top of Conv3D-as-Conv2D steps on CPU (docs/PERFORMANCE.md)
)
def student3d(
    *, bands: int, n_classes: int, patch_size: int, width: float, seed: int | None
) -> keras.Model:
    """Builds the compact 3-D student for (patch_size, patch_size, bands, 1) inputs."""
    from tfhsi._keras import keras

    layers = keras.layers
    seeds = Seeds(seed)
    inputs = keras.Input(shape=(patch_size, patch_size, bands, 1), name="patch")
    x = inputs
    last_spatial = patch_size - 4  # after two valid 3x3 spatial kernels
    blocks = ((8, 3, 7), (16, 3, 5), (16, last_spatial, 3))
    for i, (filters, spatial, depth) in enumerate(blocks, start=1):
        x = layers.Conv3D(
            scaled(filters, width),
            (spatial, spatial, depth),
            strides=(1, 1, 2),
            use_bias=False,
            kernel_initializer=seeds.init("he_normal"),
            name=f"conv{i}",
        )(x)
        x = layers.BatchNormalization(name=f"conv{i}_bn")(x)
        x = layers.ReLU(name=f"conv{i}_relu")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.2, seed=seeds.next(), name="dropout")(x)
    outputs = layers.Dense(
        n_classes, kernel_initializer=seeds.init("glorot_uniform"), name="logits"
    )(x)
    return keras.Model(inputs, outputs, name="student3d")


@register_model(
    "student2d",
    kind="2d",
    layout="2d",
    default_patch=9,
    default_bands=None,
    paper="after Howard et al., arXiv 2017",
    description="MCU 2-D student (this project, MobileNets-style): 1x1 band mixing (32), 2 depthwise-separable blocks (32,64), GAP",
    role="student",
    min_bands=1,
    min_patch=5,
)
def student2d(
    *, bands: int, n_classes: int, patch_size: int, width: float, seed: int | None
) -> keras.Model:
    """Builds the depthwise-separable 2-D student for (patch_size, patch_size, bands) inputs."""
    from tfhsi._keras import keras

    layers = keras.layers
    seeds = Seeds(seed)

    def bn_relu(x, name):  # type: ignore[no-untyped-def]
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x)

    def pointwise(x, filters, name):  # type: ignore[no-untyped-def]
        x = layers.Conv2D(
            scaled(filters, width),
            (1, 1),
            use_bias=False,
            kernel_initializer=seeds.init("he_normal"),
            name=name,
        )(x)
        return bn_relu(x, name)

    inputs = keras.Input(shape=(patch_size, patch_size, bands), name="patch")
    x = pointwise(inputs, 32, "mix")
    for i, filters in enumerate((32, 64), start=1):
        x = layers.DepthwiseConv2D(
            (3, 3), use_bias=False, depthwise_initializer=seeds.init("he_normal"), name=f"dw{i}"
        )(x)
        x = bn_relu(x, f"dw{i}")
        x = pointwise(x, filters, f"pw{i}")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.2, seed=seeds.next(), name="dropout")(x)
    outputs = layers.Dense(
        n_classes, kernel_initializer=seeds.init("glorot_uniform"), name="logits"
    )(x)
    return keras.Model(inputs, outputs, name="student2d")
