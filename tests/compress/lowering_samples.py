"""Helpers shared by the lowering tests (import this, not a test module)."""

from __future__ import annotations

import numpy as np

from tfhsi._keras import keras


def randomize_batch_norms(model: keras.Model, rng: np.random.Generator) -> None:
    """Non-trivial BN statistics, so that folding them is actually tested."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 2.0, gamma.shape).astype("float32"),
                    rng.normal(0, 0.5, beta.shape).astype("float32"),
                    rng.normal(0, 0.5, mean.shape).astype("float32"),
                    rng.uniform(0.3, 3.0, var.shape).astype("float32"),
                ]
            )
