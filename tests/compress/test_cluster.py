"""Weight clustering: ≤ n values per kernel after strip, zeros kept, collaborative QAT to int8."""

from __future__ import annotations

import numpy as np
import pytest

from tfhsi._keras import keras, tf
from tfhsi.compress.cluster import (
    finalize_clustering,
    prepare_cluster_preserving_qat,
    prepare_clustering,
    prepare_prune_preserving_qat,
    unique_weights_per_kernel,
)
from tfhsi.data.prepared import PreparedScene, prepare
from tfhsi.data.splits import make_split
from tfhsi.data.synthetic import synthetic_scene
from tfhsi.errors import ConfigError, UnsupportedError
from tfhsi.models import build_model
from tfhsi.profile.interpreter import TFLiteModel

N_CLASSES = 4
PATCH = 5


@pytest.fixture(scope="module")
def scene() -> PreparedScene:
    raw = synthetic_scene(height=24, width=24, bands=8, n_classes=N_CLASSES, seed=0)
    split = make_split(raw.labels, "random:0.5", seed=0, patch_size=PATCH, val_fraction=0.2)
    return prepare(raw, split)


def _data(scene: PreparedScene, subset: str, shuffle: bool = False) -> tf.data.Dataset:
    return scene.dataset(subset, patch_size=PATCH, layout="2d", batch_size=32, shuffle=shuffle)


def _compile(model: keras.Model, lr: float) -> keras.Model:
    model.compile(
        keras.optimizers.Adam(lr),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ["accuracy"],
    )
    return model


def _accuracy(model: keras.Model, scene: PreparedScene) -> float:
    _compile(model, 1e-3)
    return float(model.evaluate(_data(scene, "test"), verbose=0)[1])


@pytest.fixture(scope="module")
def trained(scene: PreparedScene) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = build_model("student2d", bands=8, n_classes=N_CLASSES, patch_size=PATCH, seed=0)
    _compile(model, 1e-2).fit(_data(scene, "train", shuffle=True), epochs=8, verbose=0)
    return model


def _int8_kernels(tflite: bytes) -> dict[str, np.ndarray]:
    """The constant int8 tensors of rank ≥ 2 (the kernels), by tensor name."""
    from ai_edge_litert.interpreter import Interpreter  # TFLiteModel does not expose constants

    interpreter = Interpreter(model_content=tflite)
    interpreter.allocate_tensors()
    kernels = {}
    for detail in interpreter.get_tensor_details():
        if detail["dtype"] == np.int8 and len(detail["shape"]) >= 2:
            try:
                kernels[detail["name"]] = interpreter.get_tensor(detail["index"])
            except ValueError:  # activations have no data
                continue
    return kernels


@pytest.mark.parametrize("n_clusters", [4, 16])
def test_each_clustered_kernel_has_at_most_n_values_and_accuracy_holds(
    scene: PreparedScene, trained: keras.Model, n_clusters: int
) -> None:
    keras.utils.set_random_seed(0)
    baseline = _accuracy(trained, scene)
    before = [w.copy() for w in trained.get_weights()]
    clustered = prepare_clustering(trained, n_clusters=n_clusters)
    _compile(clustered, 1e-3).fit(_data(scene, "train", shuffle=True), epochs=2, verbose=0)

    stripped = finalize_clustering(clustered)
    counts = unique_weights_per_kernel(stripped)

    assert set(counts) == {"mix", "pw1", "pw2", "logits"}
    assert all(1 < n <= n_clusters for n in counts.values()), counts
    assert max(unique_weights_per_kernel(trained).values()) > 16  # the original was not
    assert all(np.array_equal(a, b) for a, b in zip(before, trained.get_weights(), strict=True))
    accuracy = _accuracy(stripped, scene)
    assert accuracy >= baseline - 0.10, (baseline, accuracy)
    assert accuracy > 2.0 / N_CLASSES


def test_skipped_layers_keep_their_weights(trained: keras.Model) -> None:
    stripped = finalize_clustering(prepare_clustering(trained, n_clusters=8, skip=("logits",)))

    counts = unique_weights_per_kernel(stripped)

    assert counts["logits"] == unique_weights_per_kernel(trained)["logits"] > 8
    assert max(counts[name] for name in ("mix", "pw1", "pw2")) <= 8
    assert set(unique_weights_per_kernel(stripped, skip=("logits",))) == {"mix", "pw1", "pw2"}
    np.testing.assert_array_equal(
        stripped.get_layer("logits").kernel.numpy(), trained.get_layer("logits").kernel.numpy()
    )


def test_sparsity_preserving_clustering_keeps_pruned_zeros(
    scene: PreparedScene, trained: keras.Model
) -> None:
    pruned = keras.models.clone_model(trained)
    pruned.set_weights(trained.get_weights())
    masks = {}
    for name in ("pw1", "pw2", "logits"):  # prune half of each kernel by magnitude, by hand
        layer = pruned.get_layer(name)
        kernel = layer.kernel.numpy()
        masks[name] = np.abs(kernel) >= np.median(np.abs(kernel))
        layer.kernel.assign(kernel * masks[name])

    clustered = prepare_clustering(pruned, n_clusters=8, preserve_sparsity=True)
    _compile(clustered, 1e-2).fit(_data(scene, "train", shuffle=True), epochs=2, verbose=0)
    stripped = finalize_clustering(clustered)

    for name, keep in masks.items():
        kernel = stripped.get_layer(name).kernel.numpy()
        assert np.all(kernel[~keep] == 0), name
        assert np.unique(kernel).size <= 8
        assert np.count_nonzero(kernel[keep]) > 0


def test_cluster_preserving_qat_trains_and_converts_to_int8_with_clusters_kept(
    scene: PreparedScene, trained: keras.Model
) -> None:
    stripped = finalize_clustering(prepare_clustering(trained, n_clusters=8))

    qat = prepare_cluster_preserving_qat(stripped, preserve_sparsity=False)
    history = _compile(qat, 1e-4).fit(_data(scene, "train"), epochs=1, verbose=0).history
    converter = tf.lite.TFLiteConverter.from_keras_model(qat)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    tflite = converter.convert()

    assert np.isfinite(history["loss"][0])
    kernels = _int8_kernels(tflite)
    logits = next(k for name, k in kernels.items() if "logits" in name)  # per-tensor
    assert np.unique(logits).size <= 8
    pointwise = [k for name, k in kernels.items() if "pw" in name and "Conv2D" in name]
    assert pointwise and all(  # per-channel: ≤ 8 values in every output channel
        max(np.unique(channel).size for channel in kernel) <= 8 for kernel in pointwise
    )
    x, _ = next(iter(_data(scene, "val")))
    keras_logits = qat.predict(x, verbose=0)
    assert (
        np.mean(TFLiteModel(tflite).predict(x.numpy()).argmax(-1) == keras_logits.argmax(-1)) > 0.9
    )


def test_prune_preserving_qat_keeps_zeros_in_the_int8_model(
    scene: PreparedScene, trained: keras.Model
) -> None:
    pruned = keras.models.clone_model(trained)
    pruned.set_weights(trained.get_weights())
    kernel = pruned.get_layer("logits").kernel
    kernel.assign(
        np.where(np.abs(kernel.numpy()) < np.median(np.abs(kernel.numpy())), 0, kernel.numpy())
    )
    zeros_before = int(np.sum(kernel.numpy() == 0))

    qat = prepare_prune_preserving_qat(pruned)
    _compile(qat, 1e-3).fit(_data(scene, "train"), epochs=1, verbose=0)
    converter = tf.lite.TFLiteConverter.from_keras_model(qat)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    kernels = _int8_kernels(converter.convert())

    logits = next(k for name, k in kernels.items() if "logits" in name)
    assert int(np.sum(logits == 0)) >= zeros_before


def test_collaborative_qat_of_a_conv3d_model_is_unsupported() -> None:
    model = build_model("student3d", bands=24, n_classes=N_CLASSES, patch_size=PATCH)
    with pytest.raises(UnsupportedError, match="Conv3D"):
        prepare_cluster_preserving_qat(model)
    with pytest.raises(UnsupportedError, match="Conv3D"):
        prepare_prune_preserving_qat(model)


def test_conv3d_kernels_can_be_clustered() -> None:
    model = build_model("student3d", bands=24, n_classes=N_CLASSES, patch_size=PATCH, seed=0)
    stripped = finalize_clustering(prepare_clustering(model, n_clusters=16))
    assert max(unique_weights_per_kernel(stripped).values()) <= 16


def test_collaborative_qat_of_a_still_wrapped_model_asks_to_strip(trained: keras.Model) -> None:
    clustered = prepare_clustering(trained, n_clusters=8)
    with pytest.raises(ConfigError, match=r"strip|finalize"):
        prepare_cluster_preserving_qat(clustered)
    with pytest.raises(ConfigError, match="finalize"):
        unique_weights_per_kernel(clustered)


@pytest.mark.parametrize(
    "options",
    [
        {"n_clusters": 1},
        {"n_clusters": 2, "preserve_sparsity": True},
        {"n_clusters": 8.0},
        {"n_clusters": 8, "init": "kmeans"},
        {"n_clusters": 8, "skip": ("logit",)},
    ],
)
def test_bad_clustering_options_are_config_errors(trained: keras.Model, options: dict) -> None:
    with pytest.raises(ConfigError):
        prepare_clustering(trained, **options)
