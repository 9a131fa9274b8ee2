"""1-D spectral CNN after Hu et al. (Journal of Sensors 2015): one pixel's spectrum in.

The paper's five layers, sized from the band count B:

- convolution: 20 filters of length k1 = ceil(B / 9), valid;
- max pooling of size k2 = ceil(k1 / 5);
- tanh, fully connected 100 units, tanh;
- output layer (logits here; the paper's softmax is in the loss).

The (B, 1) spectrum is reshaped to (B, 1, 1) and convolved with a (k1, 1) Conv2D and
pooled with a (k2, 1) MaxPooling2D: the same arithmetic as Conv1D/MaxPooling1D, but
layers TF-MOT quantises and TFLite Micro runs without extra reshapes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tfhsi.models._common import Seeds, scaled
from tfhsi.models._registry import register_model

if TYPE_CHECKING:
    from tfhsi._keras import keras


@register_model(
    "cnn1d",
    kind="1d",
    layout="1d",
    default_patch=1,
    default_bands=None,
    paper="Hu et al., J. Sensors 2015",
    description="1-D spectral CNN: conv 20@ceil(B/9), maxpool, tanh, FC 100 tanh (centre pixel)",
    role="baseline",
)
def cnn1d(
    *, bands: int, n_classes: int, patch_size: int, width: float, seed: int | None
) -> keras.Model:
    """Builds the Hu et al. 1-D CNN for (bands, 1) inputs; ``patch_size`` is ignored."""
    from tfhsi._keras import keras

    del patch_size  # one pixel
    layers = keras.layers
    seeds = Seeds(seed)
    k1 = math.ceil(bands / 9)
    k2 = math.ceil(k1 / 5)
    inputs = keras.Input(shape=(bands, 1), name="spectrum")
    x = layers.Reshape((bands, 1, 1), name="to_2d")(inputs)
    # Hu et al. initialise uniformly in [-0.05, 0.05].
    x = layers.Conv2D(
        scaled(20, width),
        (k1, 1),
        kernel_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=seeds.next()),
        name="conv",
    )(x)
    x = layers.MaxPooling2D((k2, 1), name="pool")(x)
    x = layers.Activation("tanh", name="pool_tanh")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(
        scaled(100, width),
        kernel_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=seeds.next()),
        name="fc",
    )(x)
    x = layers.Activation("tanh", name="fc_tanh")(x)
    outputs = layers.Dense(
        n_classes,
        kernel_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=seeds.next()),
        name="logits",
    )(x)
    return keras.Model(inputs, outputs, name="cnn1d")
