"""Knowledge distillation: frozen teacher, T² soft targets, hints, paired inputs, plain student."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tfhsi._keras import keras, tf
from tfhsi.compress.distill import (
    Distiller,
    Hint,
    compile_distiller,
    finalize_distillation,
    paired_dataset,
    teacher_logit_table,
)
from tfhsi.data.pipeline import augmented_patches, patch_dataset
from tfhsi.data.prepared import PreparedScene, prepare
from tfhsi.data.splits import make_split
from tfhsi.data.synthetic import synthetic_scene
from tfhsi.errors import ConfigError
from tfhsi.models import build_model
from tfhsi.profile.interpreter import TFLiteModel
from tfhsi.train.fit import TrainConfig, train_model

N_CLASSES = 4
PATCH = 5


@pytest.fixture(scope="module")
def scene() -> PreparedScene:
    raw = synthetic_scene(height=24, width=24, bands=24, n_classes=N_CLASSES, seed=0)
    split = make_split(raw.labels, "random:0.5", seed=0, patch_size=PATCH, val_fraction=0.2)
    return prepare(raw, split)


def _data(scene: PreparedScene, subset: str, layout: str = "2d") -> tf.data.Dataset:
    return scene.dataset(subset, patch_size=PATCH, layout=layout, batch_size=32)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def teacher(scene: PreparedScene) -> keras.Model:
    """A briefly trained 2-D teacher with BatchNorm and Dropout (both must stay frozen)."""
    keras.utils.set_random_seed(0)
    model = build_model(
        "student2d", bands=scene.bands, n_classes=N_CLASSES, patch_size=PATCH, seed=0
    )
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ["accuracy"],
    )
    model.fit(_data(scene, "train"), epochs=4, verbose=0)
    return model


def _student(scene: PreparedScene, seed: int = 1) -> keras.Model:
    return build_model(
        "student2d", bands=scene.bands, n_classes=N_CLASSES, patch_size=PATCH, width=0.5, seed=seed
    )


def _identity_classifier(name: str) -> keras.Model:
    """Logits = input: lets a test feed known logits to the Distiller."""
    inputs = keras.Input((N_CLASSES,))
    dense = keras.layers.Dense(N_CLASSES, kernel_initializer="identity", name="logits")
    return keras.Model(inputs, dense(inputs), name=name)


def _kl(t: np.ndarray, s: np.ndarray, temperature: float) -> float:
    def log_softmax(z: np.ndarray) -> np.ndarray:
        z = z / temperature
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    log_pt, log_ps = log_softmax(t), log_softmax(s)
    return float(np.mean(np.sum(np.exp(log_pt) * (log_pt - log_ps), axis=-1)))


def test_teacher_weights_bit_identical_and_student_trained_after_train_model(
    scene: PreparedScene, teacher: keras.Model, tmp_path: Path
) -> None:
    teacher_before = [v.numpy().copy() for v in teacher.variables]
    student = _student(scene)
    student_before = [v.numpy().copy() for v in student.trainable_variables]
    distiller = Distiller(
        teacher, student, alpha=0.3, temperature=3.0, hints=[Hint("pw1_relu", "pw1_relu", 0.5)]
    )
    compile_distiller(distiller, learning_rate=1e-2)
    result = train_model(
        distiller,
        _data(scene, "train"),
        _data(scene, "val"),
        config=TrainConfig(epochs=3, patience=None),
        out_dir=tmp_path,
        compile=False,
    )

    assert result.epochs_run == 3
    assert {"accuracy", "student_loss", "distillation_loss", "hint_loss"} <= set(result.history)
    assert {"val_accuracy", "val_loss", "val_student_loss"} <= set(result.history)
    teacher_after = [v.numpy() for v in teacher.variables]
    assert len(teacher_after) == len(teacher_before) > 0
    assert all(np.array_equal(a, b) for a, b in zip(teacher_before, teacher_after, strict=True))
    changed = [
        not np.array_equal(a, b.numpy())
        for a, b in zip(student_before, student.trainable_variables, strict=True)
    ]
    assert all(changed)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_distillation_loss_is_temperature_squared_times_kl(temperature: float) -> None:
    rng = np.random.default_rng(0)
    t_logits = rng.normal(scale=3.0, size=(16, N_CLASSES)).astype(np.float32)
    s_logits = rng.normal(scale=3.0, size=(16, N_CLASSES)).astype(np.float32)
    labels = rng.integers(0, N_CLASSES, size=16).astype(np.int32)
    distiller = Distiller(
        _identity_classifier("teacher"),
        _identity_classifier("student"),
        alpha=0.0,
        temperature=temperature,
    )
    compile_distiller(distiller)
    data = tf.data.Dataset.from_tensors(((t_logits, s_logits), labels))

    logs = distiller.evaluate(data, verbose=0, return_dict=True)

    kl = _kl(t_logits, s_logits, temperature)
    assert kl > 0.01
    assert logs["distillation_loss"] / kl == pytest.approx(temperature**2, rel=1e-4)
    assert logs["loss"] == pytest.approx(logs["distillation_loss"], rel=1e-6)  # α = 0


def test_alpha_one_reduces_to_plain_cross_entropy(
    scene: PreparedScene, teacher: keras.Model
) -> None:
    student = _student(scene)
    distiller = Distiller(teacher, student, alpha=1.0, temperature=4.0)
    compile_distiller(distiller)
    val = _data(scene, "val")

    logs = distiller.evaluate(val, verbose=0, return_dict=True)
    student.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    plain = student.evaluate(val, verbose=0)

    assert logs["loss"] == pytest.approx(plain, rel=1e-5)
    assert logs["student_loss"] == pytest.approx(plain, rel=1e-5)
    assert logs["distillation_loss"] > 0  # computed, but weighted by 1 − α = 0


def test_gradients_reach_only_the_student(scene: PreparedScene, teacher: keras.Model) -> None:
    student = _student(scene)
    distiller = Distiller(
        teacher, student, alpha=0.5, temperature=2.0, hints=[Hint("pw1_relu", "pw1_relu")]
    )
    x, y = next(iter(_data(scene, "train")))
    teacher_vars = teacher.variables

    with tf.GradientTape(persistent=True) as tape:
        tape.watch(teacher_vars)  # even when watched, no gradient may flow into the teacher
        loss = distiller.compute_distillation_losses(x, y, training=True)["loss"]
    teacher_grads = tape.gradient(loss, teacher_vars)
    student_grads = tape.gradient(loss, student.trainable_variables)

    assert teacher.trainable_variables == []
    assert all(g is None for g in teacher_grads)
    assert all(g is not None and np.any(g.numpy() != 0) for g in student_grads)
    teacher_ids = {id(v) for v in teacher_vars}
    assert not any(id(v) in teacher_ids for v in distiller.trainable_variables)


def test_finalized_student_is_plain_model_that_converts_to_tflite(
    scene: PreparedScene, teacher: keras.Model
) -> None:
    student = _student(scene)
    layer_names = [layer.name for layer in student.layers]
    distiller = Distiller(teacher, student, hints=[Hint("pw1_relu", "pw1_relu")])
    compile_distiller(distiller, learning_rate=1e-2)
    distiller.fit(_data(scene, "train"), epochs=1, verbose=0)
    x, _ = next(iter(_data(scene, "val")))

    final = finalize_distillation(distiller)
    tflite = tf.lite.TFLiteConverter.from_keras_model(final).convert()

    assert isinstance(final, keras.Model) and final._is_graph_network
    assert [layer.name for layer in final.layers] == layer_names  # no adapters, no teacher
    assert final.trainable
    keras_logits = final.predict(x, verbose=0)
    np.testing.assert_allclose(distiller.predict(x, verbose=0), keras_logits, rtol=1e-5)
    np.testing.assert_allclose(TFLiteModel(tflite).predict(x.numpy()), keras_logits, atol=1e-4)


def test_hint_loss_decreases_during_training(scene: PreparedScene, teacher: keras.Model) -> None:
    keras.utils.set_random_seed(0)
    distiller = Distiller(
        teacher, _student(scene), alpha=0.5, hints=[Hint("pw1_relu", "pw1_relu", 1.0)]
    )
    compile_distiller(distiller, learning_rate=1e-2)

    history = distiller.fit(_data(scene, "train"), epochs=4, verbose=0).history

    assert history["hint_loss"][-1] < 0.7 * history["hint_loss"][0]


def test_teacher_and_student_with_different_inputs_distil_together(scene: PreparedScene) -> None:
    keras.utils.set_random_seed(0)
    teacher = build_model(
        "student3d", bands=scene.bands, n_classes=N_CLASSES, patch_size=PATCH, seed=0
    )
    student = _student(scene)
    # 3-D teacher (5, 5, 24, 1) and 2-D student (5, 5, 24); the hint joins a 1x1x3x16
    # teacher feature (merged to 1x1x48) with the student's 1x1x64 feature.
    distiller = Distiller(teacher, student, alpha=0.5, hints=[Hint("pw2_relu", "conv2_relu", 0.1)])
    compile_distiller(distiller, learning_rate=1e-2)
    train = paired_dataset(_data(scene, "train", "3d"), _data(scene, "train", "2d"))
    val = paired_dataset(_data(scene, "val", "3d"), _data(scene, "val", "2d"))

    history = distiller.fit(train, validation_data=val, epochs=3, verbose=0).history

    assert all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 1.0 / N_CLASSES


def test_paired_dataset_pairs_streams_shuffled_with_one_seed_every_epoch(
    scene: PreparedScene,
) -> None:
    def stream(layout: str, patch: int) -> tf.data.Dataset:
        return scene.dataset(
            "train",
            patch_size=patch,
            layout=layout,
            batch_size=16,
            shuffle=True,
            seed=3,
            augment=True,
        )

    pairs = paired_dataset(stream("3d", 7), stream("2d", PATCH))
    labels = [np.concatenate([y.numpy() for _, y in pairs]) for _ in range(2)]  # 2 epochs

    assert len(labels[0]) == len(scene.targets("train"))
    assert not np.array_equal(labels[0], labels[1])  # reshuffled, yet still paired


def test_paired_dataset_rejects_streams_in_different_orders(scene: PreparedScene) -> None:
    teacher_stream = _data(scene, "train")
    student_stream = scene.dataset(
        "train", patch_size=PATCH, layout="2d", batch_size=32, shuffle=True
    )

    with pytest.raises(tf.errors.InvalidArgumentError, match="different labels"):
        for _ in paired_dataset(teacher_stream, student_stream):
            pass


def test_shared_input_with_different_input_shapes_is_a_config_error(
    scene: PreparedScene,
) -> None:
    teacher = build_model("student3d", bands=scene.bands, n_classes=N_CLASSES, patch_size=PATCH)
    distiller = Distiller(teacher, _student(scene))
    compile_distiller(distiller)

    with pytest.raises(ConfigError, match="x_teacher, x_student"):
        distiller.evaluate(_data(scene, "val"), verbose=0)


def test_hint_between_features_of_different_spatial_size_is_a_config_error(
    scene: PreparedScene,
) -> None:
    teacher = build_model("student2d", bands=scene.bands, n_classes=N_CLASSES, patch_size=7)
    with pytest.raises(ConfigError, match="spatial sizes"):
        Distiller(teacher, _student(scene), hints=[Hint("pw1_relu", "pw1_relu")])  # 3x3 vs 5x5


def test_hint_naming_a_missing_layer_suggests_close_names(
    scene: PreparedScene, teacher: keras.Model
) -> None:
    with pytest.raises(ConfigError, match="'pw1_relu'"):
        Distiller(teacher, _student(scene), hints=[Hint("pw1_rel", "pw1_relu")])


@pytest.mark.parametrize(
    ("alpha", "temperature"), [(-0.1, 4.0), (1.5, 4.0), (0.5, 0.0), (0.5, float("nan"))]
)
def test_bad_alpha_or_temperature_is_a_config_error(
    scene: PreparedScene, teacher: keras.Model, alpha: float, temperature: float
) -> None:
    with pytest.raises(ConfigError):
        Distiller(teacher, _student(scene), alpha=alpha, temperature=temperature)


def test_teacher_and_student_with_different_class_counts_is_a_config_error(
    teacher: keras.Model,
) -> None:
    student = build_model("student2d", bands=24, n_classes=N_CLASSES + 1, patch_size=PATCH)
    with pytest.raises(ConfigError, match="classes"):
        Distiller(teacher, student)


def test_unlabelled_pixels_get_soft_targets_only() -> None:
    """Labels of -1 (a transfer set) drop out of the cross-entropy and the accuracy, not the KL."""
    rng = np.random.default_rng(1)
    t_logits = rng.normal(scale=3.0, size=(12, N_CLASSES)).astype(np.float32)
    s_logits = rng.normal(scale=3.0, size=(12, N_CLASSES)).astype(np.float32)
    labels = rng.integers(0, N_CLASSES, size=12).astype(np.int32)
    labels[::3] = -1
    keep = labels >= 0
    distiller = Distiller(
        _identity_classifier("teacher"), _identity_classifier("student"), alpha=0.5
    )
    compile_distiller(distiller)

    def run(t: np.ndarray, s: np.ndarray, y: np.ndarray) -> dict:
        data = tf.data.Dataset.from_tensors(((t, s), y))
        return distiller.evaluate(data, verbose=0, return_dict=True)

    mixed = run(t_logits, s_logits, labels)
    labelled_only = run(t_logits[keep], s_logits[keep], labels[keep])

    assert mixed["student_loss"] == pytest.approx(labelled_only["student_loss"], rel=1e-5)
    assert mixed["accuracy"] == pytest.approx(labelled_only["accuracy"], rel=1e-6)
    assert mixed["distillation_loss"] == pytest.approx(16 * _kl(t_logits, s_logits, 4.0), rel=1e-4)
    assert mixed["distillation_loss"] != pytest.approx(labelled_only["distillation_loss"], rel=1e-3)


def test_unlabelled_centres_stay_clear_of_held_out_pixels(scene: PreparedScene) -> None:
    margin = 2
    centres = scene.unlabelled_centers(margin)
    held_out = np.argwhere(scene.split.test | scene.split.val)
    assert len(centres) > 0
    assert (scene.scene.labels[centres[:, 0], centres[:, 1]] == 0).all()
    gaps = np.abs(centres[:, None, :] - held_out[None, :, :]).max(axis=-1)  # Chebyshev
    assert gaps.min() > margin
    data = scene.dataset(
        "train", patch_size=PATCH, layout="2d", batch_size=10_000, unlabelled=centres
    )
    _, y = next(iter(data))
    assert int((y.numpy() == -1).sum()) == len(centres)


def _distil(scene: PreparedScene, teacher: keras.Model, tmp: Path, *, table: bool) -> list:
    """Two augmented, shuffled epochs of distillation, with the teacher run every step or its
    logits looked up in a table computed once."""
    centers, labels = scene.centers("train"), scene.targets("train")
    opts = dict(patch_size=PATCH, layout="2d", batch_size=16, shuffle=True, augment=True, seed=3)
    logits = None
    if table:
        patches = augmented_patches(scene.cube, centers, patch_size=PATCH, layout="2d")
        logits = teacher_logit_table(teacher, patches)
    data = patch_dataset(scene.cube, centers, labels, keys=table, **opts)  # type: ignore[arg-type]
    distiller = Distiller(
        teacher, _student(scene), alpha=0.5, temperature=2.0, teacher_logits=logits
    )
    compile_distiller(distiller, learning_rate=1e-2)
    result = train_model(
        distiller, data, None, config=TrainConfig(epochs=2, patience=None), out_dir=tmp,
        compile=False,
    )  # fmt: skip
    return [result.history["distillation_loss"], distiller.student.get_weights()]


def test_teacher_logit_table_distils_like_running_the_teacher_every_step(
    scene: PreparedScene, teacher: keras.Model, tmp_path: Path
) -> None:
    (every_loss, every_w) = _distil(scene, teacher, tmp_path / "every", table=False)
    (table_loss, table_w) = _distil(scene, teacher, tmp_path / "table", table=True)
    np.testing.assert_allclose(table_loss, every_loss, rtol=1e-4)
    for a, b in zip(table_w, every_w, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert every_loss[0] > 0


def test_teacher_logits_with_hints_or_wrong_width_are_config_errors(
    scene: PreparedScene, teacher: keras.Model
) -> None:
    with pytest.raises(ConfigError, match="hints"):
        Distiller(teacher, _student(scene), teacher_logits=np.zeros((4, N_CLASSES)),
                  hints=[Hint("pw1_relu", "pw1_relu")])  # fmt: skip
    with pytest.raises(ConfigError, match="shape"):
        Distiller(teacher, _student(scene), teacher_logits=np.zeros((4, N_CLASSES + 1)))


def test_soft_targets_are_tabled_only_when_that_costs_fewer_teacher_passes() -> None:
    from tfhsi.methods.distill import DistillStep, soft_targets_once

    def step(**kw):
        return DistillStep(method="distill", **kw)

    assert not soft_targets_once(step(epochs=7, augment=True))  # 8·N once > 7·N per step
    assert soft_targets_once(step(epochs=8, augment=True))
    assert soft_targets_once(step(epochs=1, augment=False))  # N once = N per step
