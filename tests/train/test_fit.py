"""Training: best checkpoint, early stopping, and resume after an interruption."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tfhsi._keras import keras, tf
from tfhsi.errors import ConfigError
from tfhsi.train.fit import TrainConfig, balanced_class_weights, train_model


def _data(seed: int = 0) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(96, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int32)
    train = tf.data.Dataset.from_tensor_slices((x[:64], y[:64])).batch(16)
    val = tf.data.Dataset.from_tensor_slices((x[64:], y[64:])).batch(16)
    return train, val


def _model() -> keras.Model:
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(hidden))


class _InterruptAt(keras.callbacks.Callback):
    """Raises KeyboardInterrupt (what SIGINT does) mid-way through an epoch."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch
        self.current = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == 1:
            raise KeyboardInterrupt


def _no_partial_files(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".part" in p.name]


def test_training_keeps_best_epoch_weights(tmp_path: Path) -> None:
    train, val = _data()
    model = _model()
    result = train_model(
        model, train, val, config=TrainConfig(epochs=5, patience=None), out_dir=tmp_path
    )
    assert result.epochs_run == 5 and result.completed
    assert result.best_value == max(result.history["val_accuracy"])
    best = _model()
    best.load_weights(str(result.best_weights))
    for a, b in zip(model.get_weights(), best.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_interrupted_training_resumes_to_the_same_epoch_count(tmp_path: Path) -> None:
    train, val = _data()
    config = TrainConfig(epochs=6, patience=None, seed=1)
    with pytest.raises(KeyboardInterrupt):
        train_model(
            _model(), train, val, config=config, out_dir=tmp_path, callbacks=[_InterruptAt(3)]
        )
    interrupted = json.loads((tmp_path / "history.json").read_text())
    assert len(interrupted["epochs"]) == 3 and not interrupted["completed"]
    assert _no_partial_files(tmp_path) == []

    with pytest.raises(ConfigError, match="Pass --resume"):
        train_model(_model(), train, val, config=config, out_dir=tmp_path)

    result = train_model(_model(), train, val, config=config, out_dir=tmp_path, resume=True)
    assert result.epochs_run == 6
    assert len(result.history["loss"]) == 6
    assert _no_partial_files(tmp_path) == []
    assert not (tmp_path / "backup").exists()  # Keras removes its backup after a finished fit
    fresh = _model()
    fresh.load_weights(str(result.best_weights))  # the best checkpoint is valid


def test_finished_run_is_not_trained_again(tmp_path: Path) -> None:
    train, val = _data()
    config = TrainConfig(epochs=2, patience=None)
    first = train_model(_model(), train, val, config=config, out_dir=tmp_path)
    again = train_model(_model(), train, val, config=config, out_dir=tmp_path, resume=True)
    assert again.history == first.history


def test_early_stopping_counts_epochs_since_best(tmp_path: Path) -> None:
    train, val = _data()
    config = TrainConfig(
        epochs=50, patience=2, learning_rate=1e-9, schedule="constant", monitor="val_loss"
    )
    result = train_model(_model(), train, val, config=config, out_dir=tmp_path)
    assert result.stopped_early
    assert result.epochs_run - result.best_epoch == 2


def test_best_epoch_is_only_picked_after_best_after(tmp_path: Path) -> None:
    train, val = _data()
    config = TrainConfig(epochs=6, patience=None, best_after=4)
    result = train_model(_model(), train, val, config=config, out_dir=tmp_path)
    assert result.best_epoch in (5, 6)
    assert result.epochs_run == 6


def test_balanced_class_weights_inverse_to_frequency() -> None:
    weights = balanced_class_weights(np.array([0, 0, 0, 1]), 3)
    assert weights == {0: pytest.approx(4 / 6), 1: pytest.approx(2.0)}


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ConfigError, match="epochs must be ≥ 1"):
        TrainConfig(epochs=0)


class _LastWeights(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.weights = self.model.get_weights()


def test_without_validation_all_epochs_run_and_the_last_one_is_kept(tmp_path: Path) -> None:
    train, _ = _data()
    model, last, lines = _model(), _LastWeights(), []
    config = TrainConfig(epochs=4, patience=1, learning_rate=1e-9, schedule="constant")
    result = train_model(
        model, train, None, config=config, out_dir=tmp_path, callbacks=[last], report=lines.append
    )
    assert (result.epochs_run, result.best_epoch, result.stopped_early) == (4, 4, False)
    assert result.monitor is None and result.best_value is None
    assert not any(k.startswith("val_") for k in result.history)
    assert any("no validation set" in line and "last one is kept" in line for line in lines)
    for a, b in zip(model.get_weights(), last.weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_resume_refuses_to_switch_between_with_and_without_validation(tmp_path: Path) -> None:
    train, val = _data()
    config = TrainConfig(epochs=2, patience=None)
    train_model(_model(), train, val, config=config, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="trained with a validation set, but this call has none"):
        train_model(_model(), train, None, config=config, out_dir=tmp_path, resume=True)


def test_interrupted_run_without_validation_resumes_and_keeps_the_last_epoch(
    tmp_path: Path,
) -> None:
    train, _ = _data()
    config = TrainConfig(epochs=4, patience=None, seed=1)
    with pytest.raises(KeyboardInterrupt):
        train_model(
            _model(), train, None, config=config, out_dir=tmp_path, callbacks=[_InterruptAt(2)]
        )
    model, last = _model(), _LastWeights()
    result = train_model(
        model, train, None, config=config, out_dir=tmp_path, resume=True, callbacks=[last]
    )
    assert (result.epochs_run, result.best_epoch) == (4, 4)
    for a, b in zip(model.get_weights(), last.weights, strict=True):
        np.testing.assert_array_equal(a, b)
