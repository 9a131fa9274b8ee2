"""Filter pruning: exact weight slicing on every zoo model, smaller models that still train."""

from __future__ import annotations

import numpy as np
import pytest

from tfhsi._keras import keras
from tfhsi.compress.filter_prune import filter_prune
from tfhsi.errors import ConfigError, UnsupportedError
from tfhsi.models import MODELS, build_model, count_macs

# Sizes where every Flatten sees more than one position (so row order matters).
TINY = {
    "hamida3d": {"bands": 20, "patch_size": 5},
    "hybridsn": {"bands": 14, "patch_size": 11},
    "cnn2d": {"bands": 6, "patch_size": 5},
    "cnn1d": {"bands": 20},
    "student3d": {"bands": 24, "patch_size": 5},
    "student2d": {"bands": 6, "patch_size": 5},
}
N_CLASSES = 4


def _zoo(name: str) -> keras.Model:
    return build_model(name, n_classes=N_CLASSES, width=0.5, seed=0, **TINY[name])


def _x(model: keras.Model, n: int = 4) -> np.ndarray:
    shape = model.input_shape[1:]
    return np.random.default_rng(1).normal(size=(n, *shape)).astype(np.float32)


def _randomise_batch_norm(model: keras.Model) -> None:
    """Distinct per-channel BN scales (so mis-sliced BN shows) mapping 0 to 0."""
    rng = np.random.default_rng(2)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 2.0, gamma.shape),
                    np.zeros_like(beta),
                    np.zeros_like(mean),
                    rng.uniform(0.5, 2.0, var.shape),
                ]
            )


def _zero_dropped_filters(model: keras.Model, report) -> None:
    for entry in report.layers:
        layer = model.get_layer(entry.name)
        dropped = np.setdiff1d(np.arange(entry.total), entry.kept)
        weights = layer.get_weights()
        weights[0][..., dropped] = 0.0
        if len(weights) > 1:
            weights[1][dropped] = 0.0
        layer.set_weights(weights)


def test_the_zoo_is_covered() -> None:
    assert set(TINY) == set(MODELS.names())


@pytest.mark.parametrize("name", sorted(TINY))
def test_pruned_model_equals_original_whose_dropped_filters_are_zero(name: str) -> None:
    model = _zoo(name)
    _randomise_batch_norm(model)
    _, first = filter_prune(model, ratio=0.5)
    _zero_dropped_filters(model, first)
    pruned, report = filter_prune(model, ratio=0.5)
    assert [e.kept for e in report.layers] == [e.kept for e in first.layers]
    assert any(e.status == "pruned" for e in report.layers)
    assert report.layer("logits").status == "output"
    assert len(report.layer("logits").kept) == N_CLASSES
    x = _x(model)
    np.testing.assert_allclose(pruned(x, training=False), model(x, training=False), atol=1e-5)


@pytest.mark.parametrize("name", sorted(TINY))
def test_half_the_filters_gives_a_smaller_model_that_trains(name: str) -> None:
    model = _zoo(name)
    pruned, report = filter_prune(model, ratio=0.5)
    for entry in report.layers:
        if entry.status == "pruned":
            assert len(entry.kept) == max(1, round(entry.total / 2 + 1e-9))
    # Halving the filters of consecutive layers quarters the weights between them.
    assert report.params_after == pruned.count_params()
    assert 0.2 < report.param_fraction < 0.5
    assert count_macs(pruned) < 0.5 * count_macs(model)
    pruned.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = _x(pruned, 8), np.arange(8) % N_CLASSES
    before = [w.copy() for w in pruned.get_weights()]
    loss = pruned.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, pruned.get_weights(), strict=True))


@pytest.mark.parametrize("name", ["hamida3d", "hybridsn", "student2d"])
def test_by_params_removes_about_that_fraction_of_parameters(name: str) -> None:
    _, report = filter_prune(_zoo(name), ratio=0.5, by="params")
    assert report.param_fraction == pytest.approx(0.5, abs=0.07)


def test_kept_filters_are_those_with_the_largest_norm() -> None:
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, name="fc")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(hidden))
    kernel = np.array([[1.0, -5.0, 0.1, 3.0]] * 3, np.float32)
    model.get_layer("fc").set_weights([kernel, np.zeros(4, np.float32)])
    pruned, report = filter_prune(model, ratio=0.5)
    assert report.layer("fc").kept == (1, 3)
    np.testing.assert_array_equal(pruned.get_layer("fc").kernel.numpy(), kernel[:, [1, 3]])
    assert model.get_layer("fc").kernel.shape == (3, 4)  # the original is untouched


def test_skip_keeps_every_filter_of_the_layer() -> None:
    pruned, report = filter_prune(_zoo("cnn2d"), ratio=0.5, skip=("conv1",))
    assert report.layer("conv1").status == "skipped"
    assert pruned.get_layer("conv1").filters == report.layer("conv1").total
    assert pruned.get_layer("conv2").filters < report.layer("conv2").total


def test_concatenate_and_equal_residual_branches_are_sliced_exactly() -> None:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 3))
    a = keras.layers.Conv2D(8, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", name="b")(inputs)
    x = keras.layers.Concatenate(name="cat")([a, b])
    x = keras.layers.Add(name="add")([x, x])
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Permute((2, 1, 3), name="permute")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))
    _, first = filter_prune(model, ratio=0.5)
    _zero_dropped_filters(model, first)
    pruned, _ = filter_prune(model, ratio=0.5)
    assert pruned.get_layer("logits").kernel.shape == (9 * 6, 3)
    x = _x(model)
    np.testing.assert_allclose(pruned(x), model(x), atol=1e-5)


def test_add_of_differently_pruned_branches_is_rejected_naming_the_layer() -> None:
    inputs = keras.Input((6, 6, 3))
    a = keras.layers.Conv2D(8, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(8, 3, padding="same", name="b")(inputs)
    x = keras.layers.Add(name="residual")([a, b])
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))
    with pytest.raises(UnsupportedError, match=r"'residual' \(Add\).*skip="):
        filter_prune(model, ratio=0.5)
    pruned, _ = filter_prune(model, ratio=0.5, skip=("a", "b"))
    assert pruned.count_params() == model.count_params()


def test_reshape_that_splits_channels_is_rejected_naming_the_layer() -> None:
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(8, 1, name="conv")(inputs)
    x = keras.layers.Reshape((4, 4, 2, 4), name="split")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))
    kernel = np.zeros((1, 1, 2, 8), np.float32)
    kernel[..., :4] = 1.0  # keeps channels 0-3: the first half of each split group
    model.get_layer("conv").set_weights([kernel, np.zeros(8, np.float32)])
    with pytest.raises(UnsupportedError, match=r"'split' \(Reshape\)"):
        filter_prune(model, ratio=0.5)


def test_bad_arguments_are_config_errors() -> None:
    model = _zoo("cnn1d")
    with pytest.raises(ConfigError, match=r"ratio must be in \[0, 1\)"):
        filter_prune(model, ratio=1.0)
    with pytest.raises(ConfigError, match=r"'conv9'.*prunable layers: conv, fc, logits"):
        filter_prune(model, skip=("conv9",))


def test_keras3_model_is_rejected_with_a_clear_error() -> None:
    keras3 = pytest.importorskip("keras")
    if not keras3.__version__.startswith("3"):
        pytest.skip("Keras 3 is not installed")
    model = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(2)])
    with pytest.raises(UnsupportedError, match="Keras 3"):
        filter_prune(model)


def test_sequential_model_whose_layers_another_model_also_uses_is_sliced_exactly() -> None:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            keras.layers.Conv2D(8, 3, name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.ReLU(name="relu"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(16, name="fc"),
            keras.layers.Dense(3, name="logits"),
        ]
    )
    other_input = keras.Input((6, 6, 3))
    keras.Model(other_input, model.get_layer("conv")(other_input))  # a second call of "conv"
    _randomise_batch_norm(model)
    _, first = filter_prune(model, ratio=0.5)
    _zero_dropped_filters(model, first)
    pruned, report = filter_prune(model, ratio=0.5)
    assert isinstance(pruned, keras.Sequential)
    assert [len(e.kept) for e in report.layers] == [4, 8, 3]
    x = _x(model)
    np.testing.assert_allclose(pruned(x, training=False), model(x, training=False), atol=1e-5)
