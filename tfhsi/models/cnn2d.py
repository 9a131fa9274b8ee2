"""2-D CNN on PCA bands: the spectral-spatial baseline without 3-D convolutions.

Follows the recipe of Makantasis et al. (IGARSS 2015) - PCA-reduced patches into a
2-D CNN - with a present-day body: two valid 3x3 Conv2D+BN+ReLU (64, 128), one
"same" 3x3 Conv2D+BN+ReLU (128), global average pooling, dropout 0.4, logits.
Only Conv2D/BN/ReLU, so TF-MOT quantises and prunes it without custom configs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tfhsi.models._common import Seeds, scaled
from tfhsi.models._registry import register_model

if TYPE_CHECKING:
    from tfhsi._keras import keras


@register_model(
    "cnn2d",
    kind="2d",
    layout="2d",
    default_patch=11,
    default_bands=30,
    paper="after Makantasis et al., IGARSS 2015",
    description="2-D CNN on PCA bands: 3x Conv2D+BN+ReLU (64,128,128), GAP, dropout 0.4",
    role="baseline",
    min_bands=1,
    min_patch=5,
)
def cnn2d(
    *, bands: int, n_classes: int, patch_size: int, width: float, seed: int | None
) -> keras.Model:
    """Builds the 2-D CNN for (patch_size, patch_size, bands) inputs."""
    from tfhsi._keras import keras

    layers = keras.layers
    seeds = Seeds(seed)
    inputs = keras.Input(shape=(patch_size, patch_size, bands), name="patch")
    x = inputs
    for i, (filters, padding) in enumerate(((64, "valid"), (128, "valid"), (128, "same")), start=1):
        x = layers.Conv2D(
            scaled(filters, width),
            (3, 3),
            padding=padding,
            use_bias=False,
            kernel_initializer=seeds.init("he_normal"),
            name=f"conv{i}",
        )(x)
        x = layers.BatchNormalization(name=f"conv{i}_bn")(x)
        x = layers.ReLU(name=f"conv{i}_relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.4, seed=seeds.next(), name="dropout")(x)
    outputs = layers.Dense(
        n_classes, kernel_initializer=seeds.init("glorot_uniform"), name="logits"
    )(x)
    return keras.Model(inputs, outputs, name="cnn2d")
