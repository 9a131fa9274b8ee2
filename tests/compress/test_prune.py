"""Magnitude pruning: measured sparsity after strip, schedules, per-layer control, 2:4, sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tfhsi._keras import keras, tf, tfmot
from tfhsi.compress.prune import (
    PruningConfig,
    finalize_pruning,
    load_pruned,
    plan_pruning,
    prepare_pruning,
    pruning_callbacks,
    pruning_steps,
    pruning_wrappers,
    save_pruned,
)
from tfhsi.compress.sparsity import measure_sparsity, model_sizes
from tfhsi.errors import ConfigError, SetupError, UnsupportedError

SAMPLE = (6, 6, 8)
BATCH = 16
N = 64  # 4 steps per epoch: TF-MOT's default frequency of 100 never fires
EPOCHS = 5


def _model(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(SAMPLE, name="patch")
    x = keras.layers.Conv2D(16, 3, name="conv")(inputs)
    x = keras.layers.ReLU(name="conv_relu")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(32, activation="relu", name="fc")(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="logits")(x), name="tiny")


def _model3d(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((5, 5, 12, 1), name="patch")
    x = keras.layers.Conv3D(8, (3, 3, 5), name="conv3d", activation="relu")(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="logits")(x), name="tiny3d")


def _data(model: keras.Model, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, *model.input_shape[1:])).astype(np.float32)
    return x, rng.integers(0, 4, size=n)


def _train(wrapped: keras.Model, *, epochs: int = EPOCHS, n: int = N) -> None:
    x, y = _data(wrapped, n)
    wrapped.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    wrapped.fit(x, y, batch_size=BATCH, epochs=epochs, callbacks=pruning_callbacks(), verbose=0)


def _prune(model: keras.Model, config: PruningConfig, *, epochs: int = EPOCHS) -> keras.Model:
    wrapped = prepare_pruning(model, config, steps_per_epoch=N // BATCH, epochs=epochs)
    _train(wrapped, epochs=epochs)
    return wrapped


@pytest.fixture(scope="module")
def polynomial() -> tuple[keras.Model, keras.Model, keras.Model]:
    """(original, wrapped after training, stripped) for 80 % polynomial pruning."""
    model = _model()
    wrapped = _prune(model, PruningConfig(target_sparsity=0.8))
    return model, wrapped, finalize_pruning(wrapped)


def test_polynomial_pruning_reaches_measured_target_after_strip(polynomial) -> None:
    model, _, stripped = polynomial
    report = measure_sparsity(stripped, layers=plan_pruning(model, PruningConfig()))
    assert report.sparsity == pytest.approx(0.80, abs=0.01)
    for name in ("conv", "fc", "logits"):
        assert report.layer(name) == pytest.approx(0.80, abs=0.01)


def test_frequency_from_steps_per_epoch_prunes_where_tfmot_default_prunes_nothing() -> None:
    steps = pruning_steps(PruningConfig(), steps_per_epoch=N // BATCH, epochs=EPOCHS)
    assert steps.frequency == N // BATCH  # one mask update per epoch
    assert steps.end == 4 * (N // BATCH)  # ceil(0.7 · 5) epochs, on a mask update
    tfmot_default = _prune(_model(), PruningConfig(target_sparsity=0.8, frequency_steps=100))
    assert measure_sparsity(finalize_pruning(tfmot_default)).sparsity < 0.01


def test_original_model_is_not_modified_by_pruning(polynomial) -> None:
    model, _, _ = polynomial
    fresh = _model()
    for a, b in zip(model.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert measure_sparsity(model).sparsity == 0.0


def test_stripped_model_has_no_wrappers_and_same_outputs(polynomial) -> None:
    _, wrapped, stripped = polynomial
    assert pruning_wrappers(wrapped) and not pruning_wrappers(stripped)
    assert [layer.name for layer in stripped.layers] == [layer.name for layer in _model().layers]
    x, _ = _data(stripped, 8)
    np.testing.assert_allclose(
        stripped(x, training=False), wrapped(x, training=False), rtol=1e-5, atol=1e-6
    )


def test_constant_schedule_reaches_its_target() -> None:
    config = PruningConfig(target_sparsity=0.5, schedule="constant")
    stripped = finalize_pruning(_prune(_model(), config))
    assert measure_sparsity(stripped).sparsity == pytest.approx(0.5, abs=0.01)


def test_layer_target_and_skip_pattern_control_each_layer() -> None:
    config = PruningConfig(target_sparsity=0.8, layer_targets={"c*": 0.5}, skip=("log*",))
    model = _model()
    assert plan_pruning(model, config) == {"conv": 0.5, "fc": 0.8}
    wrapped = _prune(model, config)
    assert {w.layer.name for w in pruning_wrappers(wrapped)} == {"conv", "fc"}
    report = measure_sparsity(finalize_pruning(wrapped))
    assert report.layer("conv") == pytest.approx(0.5, abs=0.01)
    assert report.layer("fc") == pytest.approx(0.8, abs=0.01)
    assert report.layer("logits") == 0.0


def test_pattern_matching_no_layer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"'conv9'.*prunable layers: conv, fc, logits"):
        plan_pruning(_model(), PruningConfig(skip=("conv9",)))


def test_pruning_nothing_or_twice_is_an_error(polynomial) -> None:
    with pytest.raises(ConfigError, match="every layer"):
        plan_pruning(_model(), PruningConfig(skip=("*",)))
    with pytest.raises(UnsupportedError, match="already wrapped"):
        plan_pruning(polynomial[1], PruningConfig())


def test_conv3d_layer_is_pruned() -> None:
    model = _model3d()
    stripped = finalize_pruning(_prune(model, PruningConfig(target_sparsity=0.8)))
    assert measure_sparsity(stripped).layer("conv3d") == pytest.approx(0.8, abs=0.01)


def test_2_by_4_leaves_exactly_two_zeros_in_every_four_input_channels(tmp_path: Path) -> None:
    wrapped = _prune(_model(), PruningConfig(block="2:4"), epochs=2)
    # TF-MOT does not save the 2:4 setting: a reloaded model must keep its masks frozen.
    reloaded = load_pruned(save_pruned(wrapped, tmp_path / "pruned.keras"))
    _train(reloaded, epochs=1)
    stripped = finalize_pruning(reloaded)
    conv = stripped.get_layer("conv").kernel.numpy()  # (3, 3, 8 in, 16 out)
    fc = stripped.get_layer("fc").kernel.numpy()  # (256 in, 32 out)
    groups = [
        np.moveaxis(conv, 2, -1).reshape(-1, 4),  # consecutive input channels
        fc.T.reshape(-1, 4),
    ]
    for g in groups:
        assert np.all((g == 0).sum(axis=1) == 2)


def test_2_by_4_on_conv3d_is_rejected_naming_the_layer() -> None:
    with pytest.raises(UnsupportedError, match=r"conv3d \(Conv3D\).*skip=\('conv3d',\)"):
        prepare_pruning(_model3d(), PruningConfig(block="2:4"), steps_per_epoch=4, epochs=2)


def _tflite_fp32(model: keras.Model) -> bytes:
    spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32)
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    return tf.lite.TFLiteConverter.from_concrete_functions([fn], model).convert()


def test_gzip_of_pruned_fp32_tflite_is_much_smaller(polynomial) -> None:
    model, _, stripped = polynomial
    dense, pruned = model_sizes(_tflite_fp32(model)), model_sizes(_tflite_fp32(stripped))
    assert pruned["raw"] == pytest.approx(dense["raw"], rel=0.05)  # fp32 stores the zeros
    assert dense["gzip"] / pruned["gzip"] >= 2.5


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_save_load_round_trip_keeps_masks_and_outputs(polynomial, tmp_path: Path, suffix) -> None:
    _, wrapped, _ = polynomial
    path = save_pruned(wrapped, tmp_path / f"pruned{suffix}")
    loaded = load_pruned(path)
    assert len(pruning_wrappers(loaded)) == 3
    x, _ = _data(wrapped, 8)
    np.testing.assert_allclose(loaded(x, training=False), wrapped(x, training=False), rtol=1e-6)
    masks = [m.numpy() for w in pruning_wrappers(loaded) for _, m, _ in w.pruning_vars]
    assert np.mean([1 - m.mean() for m in masks]) == pytest.approx(0.8, abs=0.01)


def test_save_with_unknown_suffix_is_a_config_error(polynomial, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.keras or \.h5"):
        save_pruned(polynomial[1], tmp_path / "pruned.tflite")


def test_keras3_model_is_rejected_with_a_clear_error() -> None:
    keras3 = pytest.importorskip("keras")
    if not keras3.__version__.startswith("3"):
        pytest.skip("Keras 3 is not installed")
    model = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(2)])
    with pytest.raises(UnsupportedError, match=r"Keras 3.*from tfhsi import keras"):
        prepare_pruning(model, PruningConfig(), steps_per_epoch=4, epochs=2)


def test_subclassed_model_is_rejected_with_a_clear_error() -> None:
    class Net(keras.Model):
        def __init__(self) -> None:
            super().__init__(name="net")
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    with pytest.raises(UnsupportedError, match="subclassed"):
        prepare_pruning(Net(), PruningConfig(), steps_per_epoch=4, epochs=2)


def test_epochs_outside_training_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="do not fit"):
        pruning_steps(PruningConfig(end_epoch=8), steps_per_epoch=4, epochs=5)


def test_pruning_summaries_without_tensorboard_is_a_setup_error(monkeypatch, tmp_path) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name)
    )
    with pytest.raises(SetupError, match="pip install tensorboard"):
        pruning_callbacks(log_dir=tmp_path)


# ---------------------------------------------------------------- custom layers


class _Project(keras.layers.Layer, tfmot.sparsity.keras.PrunableLayer):
    """A user's layer that tells TF-MOT which weight to prune."""

    def __init__(self, units: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape) -> None:
        self.kernel = self.add_weight("kernel", (int(input_shape[-1]), self.units))

    def call(self, x):
        return tf.matmul(x, self.kernel)

    def get_prunable_weights(self) -> list:
        return [self.kernel]

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}


class _NoConfig(_Project):
    """The same layer whose get_config forgets ``units``."""

    def get_config(self) -> dict:
        return keras.layers.Layer.get_config(self)


def _custom_model(layer_class: type = _Project) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12,), name="x")
    x = layer_class(32, name="project")(inputs)
    return keras.Model(inputs, keras.layers.Dense(4, name="logits")(x), name="custom")


def test_custom_prunable_layer_is_pruned_to_the_target() -> None:
    model = _custom_model()
    config = PruningConfig(target_sparsity=0.75, schedule="constant", skip=("logits",))
    assert plan_pruning(model, config) == {"project": 0.75}

    pruned = prepare_pruning(model, config, steps_per_epoch=2, epochs=2)
    pruned.compile("sgd", "mse")
    x, y = np.ones((8, 12), np.float32), np.zeros((8, 4), np.float32)
    pruned.fit(x, y, batch_size=4, epochs=2, callbacks=pruning_callbacks(), verbose=0)
    stripped = finalize_pruning(pruned)

    assert type(stripped.get_layer("project")) is _Project
    assert measure_sparsity(stripped, layers=["project"]).sparsity == pytest.approx(0.75)
    assert measure_sparsity(stripped, layers=["logits"]).sparsity == 0.0


def test_custom_layer_whose_config_cannot_rebuild_it_is_named() -> None:
    with pytest.raises(UnsupportedError, match=r"'project' \(_NoConfig: rebuilt.*get_config\(\)"):
        prepare_pruning(_custom_model(_NoConfig), PruningConfig(), steps_per_epoch=2, epochs=2)
