"""Model selection: one tie-breaking rule, and test pixels never pick (or train) the model."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from tfhsi._keras import keras
from tfhsi.data._split_disjoint import dilate
from tfhsi.data.prepared import PreparedScene, prepare
from tfhsi.data.scene_data import SceneData
from tfhsi.data.splits import make_split
from tfhsi.data.synthetic import synthetic_scene
from tfhsi.train.config import TrainConfig
from tfhsi.train.fit import (
    BEST_WEIGHTS,
    HISTORY,
    _Bookkeeper,
    best_epoch,
    seed_everything,
    train_model,
)

PATCH = 3


def _logs(*rows: tuple[float, float]) -> list[dict[str, float]]:
    return [{"loss": 1.0, "val_accuracy": acc, "val_loss": loss} for acc, loss in rows]


# ---------------------------------------------------------------- the rule


def test_accuracy_ties_go_to_the_lowest_val_loss_then_the_earliest_epoch() -> None:
    epochs = _logs((0.5, 0.9), (0.75, 0.7), (0.75, 0.4), (0.5, 0.1), (0.75, 0.4))
    assert best_epoch(epochs, "val_accuracy") == (3, 0.75)
    assert best_epoch(epochs, "val_accuracy", after=3) == (5, 0.75)


def test_loss_ties_go_to_the_higher_accuracy_and_nan_is_never_best() -> None:
    epochs = _logs((0.5, 0.3), (0.75, 0.3), (1.0, math.nan), (0.75, 0.3))
    assert best_epoch(epochs, "val_loss") == (2, 0.3)
    assert best_epoch(_logs((0.5, 0.9), (math.nan, 0.1)), "val_accuracy") == (1, 0.5)


def test_without_a_monitor_the_last_epoch_with_a_finite_loss_is_kept() -> None:
    epochs = [{"loss": 0.9}, {"loss": 0.5}, {"loss": 0.7}]
    assert best_epoch(epochs, None) == (3, None)
    assert best_epoch([*epochs, {"loss": math.nan}], None) == (3, None)


def _dense() -> keras.Model:
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def test_checkpoint_and_early_stopping_follow_the_tie_break(tmp_path: Path) -> None:
    """The callback saves the tie-break winner's weights and counts patience from it."""
    model = _dense()
    config = TrainConfig(epochs=10, patience=2)
    state: dict = {"epochs": [], "stopped_early": False}
    keeper = _Bookkeeper(tmp_path, config, state, "val_accuracy")
    keeper.set_model(model)
    weights = []
    rows = [(0.5, 0.9), (0.5, 0.6), (0.5, 0.8), (0.5, 0.7)]  # all tied on accuracy
    for epoch, (acc, loss) in enumerate(rows):
        keeper.on_epoch_begin(epoch)
        model.set_weights([np.full_like(w, epoch) for w in model.get_weights()])
        weights.append(model.get_weights())
        keeper.on_epoch_end(epoch, {"loss": 1.0, "val_accuracy": acc, "val_loss": loss})
        if model.stop_training:
            break
    assert len(state["epochs"]) == 4 and state["stopped_early"]  # best 2, then 2 without gain
    saved = _dense()
    saved.load_weights(str(tmp_path / BEST_WEIGHTS))
    for a, b in zip(saved.get_weights(), weights[1], strict=True):
        np.testing.assert_array_equal(a, b)
    on_disk = json.loads((tmp_path / HISTORY).read_text())["epochs"]
    assert best_epoch(on_disk, "val_accuracy")[0] == 2


def test_training_with_constant_val_accuracy_picks_the_lowest_val_loss(tmp_path: Path) -> None:
    from tfhsi._keras import tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    train = tf.data.Dataset.from_tensor_slices((x[:48], y[:48])).batch(16)
    val = tf.data.Dataset.from_tensor_slices((x[48:52], y[48:52])).batch(4)  # 4 pixels
    seed_everything(0)
    config = TrainConfig(epochs=6, patience=None, learning_rate=3e-3, schedule="constant")
    result = train_model(_dense(), train, val, config=config, out_dir=tmp_path)
    acc, loss = np.array(result.history["val_accuracy"]), np.array(result.history["val_loss"])
    tied = np.flatnonzero(acc == acc.max())
    assert len(tied) > 1, "the setting must produce accuracy ties"
    expected = int(tied[np.argmin(loss[tied])]) + 1
    assert expected != int(tied[0]) + 1, "the earliest-epoch rule would pick the same epoch"
    assert result.best_epoch == expected


# ---------------------------------------------------------------- test pixels pick nothing


def _fixed_split_files(scene: SceneData, folder: Path) -> str:
    """TRAIN (about 35 % of each class) and TEST (all other labelled pixels) maps."""
    rng = np.random.default_rng(1)
    labelled = scene.labels > 0
    train = labelled & (rng.random(scene.labels.shape) < 0.35)
    np.save(folder / "train.npy", np.where(train, scene.labels, 0))
    np.save(folder / "test.npy", np.where(labelled & ~train, scene.labels, 0))
    return f"mask:{folder / 'train.npy'},{folder / 'test.npy'}"


def _with_changed_test_pixels(scene: SceneData, prepared: PreparedScene) -> SceneData:
    """Test labels shifted to another class, and the cube changed at every test pixel that no
    training or validation patch covers."""
    split = prepared.split
    labels = scene.labels.copy()
    labels[split.test] = labels[split.test] % scene.n_classes + 1
    far = split.test & ~dilate(split.train | split.val, PATCH // 2)
    cube = scene.cube.copy()
    cube[far] = cube[far][:, ::-1]  # spectra reversed
    assert far.any()
    return replace(scene, labels=labels, cube=cube)


def _patch_model(bands: int, n_classes: int) -> keras.Model:
    inputs = keras.Input((PATCH, PATCH, bands))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(8, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(n_classes)(x))


def _train(prepared: PreparedScene, out: Path):
    seed_everything(0)  # before the datasets: their shuffle seeds combine with the global one
    kw = {"patch_size": PATCH, "layout": "2d", "batch_size": 16}
    train = prepared.dataset("train", shuffle=True, seed=0, **kw)
    subset = prepared.selection_subset()
    val = prepared.dataset(subset, **kw) if subset else None
    model = _patch_model(prepared.bands, prepared.scene.n_classes)
    config = TrainConfig(epochs=4, patience=2, learning_rate=1e-2)
    result = train_model(model, train, val, config=config, out_dir=out)
    return result, model.get_weights()


@pytest.mark.parametrize("val_fraction", [0.2, 0.0])
def test_test_pixels_influence_neither_training_nor_epoch_selection(
    tmp_path: Path, val_fraction: float
) -> None:
    scene = synthetic_scene(height=14, width=14, bands=6, n_classes=3, seed=0)
    spec = _fixed_split_files(scene, tmp_path)

    def prepared_of(s: SceneData) -> PreparedScene:
        split = make_split(s.labels, spec, seed=0, patch_size=PATCH, val_fraction=val_fraction)
        return prepare(s, split)

    a = prepared_of(scene)
    changed = _with_changed_test_pixels(scene, a)
    b = prepared_of(changed)
    for subset in ("train", "val", "test"):
        assert np.array_equal(a.split.mask(subset), b.split.mask(subset))
    assert not np.array_equal(a.targets("test"), b.targets("test"))  # the change is real
    assert a.selection_subset() == ("val" if val_fraction else None)

    first, weights_a = _train(a, tmp_path / "a")
    second, weights_b = _train(b, tmp_path / "b")

    def epochs(result) -> list[dict]:
        return [{k: v for k, v in e.items() if k != "epoch_time_s"} for e in result]

    history_a = json.loads((tmp_path / "a" / HISTORY).read_text())["epochs"]
    history_b = json.loads((tmp_path / "b" / HISTORY).read_text())["epochs"]
    assert epochs(history_a) == epochs(history_b)
    assert (first.best_epoch, first.epochs_run) == (second.best_epoch, second.epochs_run)
    for wa, wb in zip(weights_a, weights_b, strict=True):
        np.testing.assert_array_equal(wa, wb)
    if not val_fraction:  # no validation: no early stopping, the last epoch is kept
        assert first.monitor is None and first.best_epoch == first.epochs_run == 4
        assert not any(k.startswith("val_") for k in history_a[0])


def _h5_arrays(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda k, v: out.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None
        )
    return out


def test_train_experiment_on_a_fixed_split_without_val_never_looks_at_test(tmp_path: Path) -> None:
    """Two runs whose TEST maps differ train identically (val_fraction 0: no validation)."""
    from tfhsi.experiment import ExperimentSpec, train_experiment

    name = "synthetic:14x14x12x3"
    scene = synthetic_scene(height=14, width=14, bands=12, n_classes=3, seed=0)
    spec_all = _fixed_split_files(scene, tmp_path)
    test_all = np.load(tmp_path / "test.npy")
    half = test_all * (np.arange(14)[None, :] < 7)
    np.save(tmp_path / "test_half.npy", half)
    spec_half = spec_all.replace("test.npy", "test_half.npy")
    runs = {}
    for key, split in (("all", spec_all), ("half", spec_half)):
        spec = ExperimentSpec(
            dataset=name,
            model="cnn1d",
            split=split,
            val_fraction=0.0,
            train=TrainConfig(epochs=3, patience=1, learning_rate=1e-2),
        )
        train_experiment(spec, out_dir=tmp_path / key)
        history = json.loads((tmp_path / key / HISTORY).read_text())["epochs"]
        runs[key] = (
            [{k: v for k, v in e.items() if k != "epoch_time_s"} for e in history],
            _h5_arrays(tmp_path / key / BEST_WEIGHTS),
        )
    assert runs["all"][0] == runs["half"][0]
    assert runs["all"][1].keys() == runs["half"][1].keys()
    for k, v in runs["all"][1].items():
        np.testing.assert_array_equal(v, runs["half"][1][k])
