"""Quantization-aware training: every zoo model (Conv3D included) trains and converts.

Figures (student2d and student3d on a seeded synthetic scene, float trained 10 epochs,
QAT fine-tuned 3 epochs from calibrated ranges) are printed; run with ``-s`` to see them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tfhsi._keras import keras, tf
from tfhsi.compress.quantize import (
    Conv3DQuantizeConfig,
    OutputQuantizeConfig,
    calibrate_qat,
    finalize_qat,
    is_qat_model,
    load_qat,
    prepare_qat,
    qat_callbacks,
    qat_unsupported_layers,
    save_qat,
)
from tfhsi.data.prepared import PreparedScene, prepare
from tfhsi.data.splits import make_split
from tfhsi.data.synthetic import synthetic_scene
from tfhsi.errors import ConfigError, ModelFileNotFoundError, UnsupportedError
from tfhsi.models import MODELS, build_model
from tfhsi.profile.interpreter import TFLiteModel

N_CLASSES = 4
BANDS = 24  # >= every zoo model's min_bands (student3d needs 23)
SEED = 0
#: QAT int8 may be at most this much below the float model's OA (synthetic test set).
OA_TOLERANCE = 0.03
INT8_COMPUTE_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}


def _loss() -> Any:
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.fixture(scope="module")
def scene() -> PreparedScene:
    data = synthetic_scene(height=28, width=28, bands=BANDS, n_classes=N_CLASSES, seed=SEED)
    split = make_split(data.labels, "random:0.3", seed=SEED, patch_size=5)
    return prepare(data, split)


def _data(scene: PreparedScene, name: str, patch: int) -> tuple[Any, np.ndarray, np.ndarray]:
    layout = MODELS.get(name).layout
    # Small batches: enough steps for the BatchNormalization moving statistics to settle.
    train = scene.dataset(
        "train", patch_size=patch, layout=layout, batch_size=16, shuffle=True, seed=SEED
    )
    test = scene.dataset("test", patch_size=patch, layout=layout, batch_size=512)
    x_test = np.concatenate([x for x, _ in test.as_numpy_iterator()])
    return train, x_test, scene.targets("test")


def convert_int8(model: keras.Model, representative: Any = None) -> bytes:
    """Batch-1 int8 conversion as the export code does it (PTQ when ``representative``)."""
    spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32)
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if representative is not None:
        converter.representative_dataset = representative
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def op_table(tflite: bytes) -> list[tuple[str, list[str], list[str]]]:
    """``(op, input dtypes, output dtypes)`` per op; constants included, no delegate."""
    interpreter = TFLiteModel(tflite, xnnpack=False)._interpreter
    tensors = {t["index"]: t["dtype"].__name__ for t in interpreter.get_tensor_details()}
    return [
        (
            op["op_name"],
            [tensors[i] for i in op["inputs"] if i >= 0],
            [tensors[i] for i in op["outputs"]],
        )
        for op in interpreter._get_ops_details()
    ]


def _oa(predict: Any, x: np.ndarray, y: np.ndarray) -> float:
    return float((np.argmax(predict(x), axis=1) == y).mean())


@dataclass
class Run:
    """One model taken through float training, PTQ int8 and QAT int8."""

    float_model: keras.Model
    qat_model: keras.Model
    qat_tflite: bytes
    ptq_tflite: bytes
    oa_float: float
    oa_qat_keras: float
    oa_qat_int8: float
    oa_ptq_int8: float
    agreement: float  # share of test pixels where QAT Keras and QAT int8 agree


def _run(scene: PreparedScene, name: str, *, patch: int = 5) -> Run:
    keras.utils.set_random_seed(SEED)
    train, x_test, y_test = _data(scene, name, patch)
    model = build_model(name, bands=BANDS, n_classes=N_CLASSES, patch_size=patch, seed=SEED)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=_loss())
    model.fit(train, epochs=10, verbose=0)
    representative = scene.representative(
        patch_size=patch, layout=MODELS.get(name).layout, num_samples=100
    )
    ptq = convert_int8(model, representative)

    qat = prepare_qat(model, calibration=representative)
    qat.compile(optimizer=keras.optimizers.Adam(1e-3), loss=_loss())
    qat.fit(train, epochs=3, verbose=0, callbacks=qat_callbacks())
    qat_tflite = convert_int8(finalize_qat(qat))

    def keras_predict(m: keras.Model) -> Any:
        return lambda x: m.predict(x, verbose=0, batch_size=512)

    qat_int8 = TFLiteModel(qat_tflite).predict
    return Run(
        float_model=model,
        qat_model=qat,
        qat_tflite=qat_tflite,
        ptq_tflite=ptq,
        oa_float=_oa(keras_predict(model), x_test, y_test),
        oa_qat_keras=_oa(keras_predict(qat), x_test, y_test),
        oa_qat_int8=_oa(qat_int8, x_test, y_test),
        oa_ptq_int8=_oa(TFLiteModel(ptq).predict, x_test, y_test),
        agreement=float(
            (np.argmax(qat_int8(x_test), 1) == np.argmax(keras_predict(qat)(x_test), 1)).mean()
        ),
    )


@pytest.fixture(scope="module")
def run2d(scene: PreparedScene) -> Run:
    return _run(scene, "student2d")


@pytest.fixture(scope="module")
def run3d(scene: PreparedScene) -> Run:
    return _run(scene, "student3d")


def _report(name: str, run: Run) -> str:
    return (
        f"{name} OA on the synthetic test set: float {run.oa_float:.3f}, PTQ int8 "
        f"{run.oa_ptq_int8:.3f}, QAT Keras {run.oa_qat_keras:.3f}, QAT int8 {run.oa_qat_int8:.3f}"
    )


# --- every zoo model ------------------------------------------------------------------


def _tiny_qat(
    scene: PreparedScene, name: str
) -> tuple[keras.Model, keras.Model, tuple[np.ndarray, np.ndarray]]:
    spec = MODELS.get(name)
    patch = spec.min_patch
    keras.utils.set_random_seed(SEED)
    model = build_model(
        name, bands=BANDS, n_classes=N_CLASSES, patch_size=patch, width=0.25, seed=SEED
    )
    batch = scene.dataset("train", patch_size=patch, layout=spec.layout, batch_size=64)
    x, y = (a.numpy() for a in next(iter(batch)))
    qat = prepare_qat(model, calibration=[x])
    qat.compile(optimizer=keras.optimizers.Adam(1e-3), loss=_loss())
    return model, qat, (x, y)


@pytest.mark.parametrize("name", MODELS.names())
def test_every_zoo_model_is_quantization_aware_and_trains_one_epoch_with_finite_loss(
    scene: PreparedScene, name: str
) -> None:
    model, qat, (x, y) = _tiny_qat(scene, name)
    history = qat.fit(x, y, batch_size=16, epochs=1, verbose=0)

    assert np.isfinite(history.history["loss"]).all()
    wrapped = {layer.layer.name for layer in qat.layers if hasattr(layer, "quantize_config")}
    assert wrapped == {layer.name for layer in model.layers[1:]}  # every layer but the input
    conv3d = [layer.name for layer in model.layers if type(layer).__name__ == "Conv3D"]
    assert (len(conv3d) > 0) == (MODELS.get(name).kind == "3d")
    for layer in qat.layers:
        if getattr(layer, "layer", None) is not None and layer.layer.name in conv3d:
            assert isinstance(layer.quantize_config, Conv3DQuantizeConfig)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS.names())
def test_every_zoo_model_converts_after_qat_to_an_int8_io_tflite(
    scene: PreparedScene, name: str
) -> None:
    _, qat, (x, y) = _tiny_qat(scene, name)
    qat.fit(x, y, batch_size=16, epochs=1, verbose=0)
    lite = TFLiteModel(convert_int8(finalize_qat(qat)))

    assert (lite.input_dtype, lite.output_dtype) == (np.int8, np.int8)
    assert np.isfinite(lite.predict(x)).all()


# --- 2-D: full int8 ---------------------------------------------------------------------


def test_student2d_after_qat_converts_to_full_int8(run2d: Run) -> None:
    ops = op_table(run2d.qat_tflite)
    compute = [op for op in ops if op[0] in INT8_COMPUTE_OPS]

    assert {op[0] for op in compute} == INT8_COMPUTE_OPS
    for name, inputs, outputs in compute:
        assert inputs[0] == "int8" and outputs == ["int8"], (name, inputs, outputs)
        assert inputs[1] == "int8", f"{name} weights are {inputs[1]}"
    assert not [op for op in ops if op[0] in {"DEQUANTIZE", "CONV_3D"}]


def test_student2d_qat_int8_accuracy_is_close_to_float(run2d: Run) -> None:
    print("\n" + _report("student2d", run2d))

    assert run2d.oa_qat_int8 >= run2d.oa_float - OA_TOLERANCE
    assert run2d.agreement >= 0.98  # the .tflite computes what the QAT model trained for


# --- 3-D: trains, converts, CONV_3D stays float -----------------------------------------


def test_student3d_after_qat_converts_but_tflite_keeps_conv3d_in_float(run3d: Run) -> None:
    ops = op_table(run3d.qat_tflite)
    conv3d = [op for op in ops if op[0] == "CONV_3D"]
    lite = TFLiteModel(run3d.qat_tflite)

    assert (lite.input_dtype, lite.output_dtype) == (np.int8, np.int8)
    assert len(conv3d) == 3
    # TFLite has no int8 CONV_3D kernel: float input, float weights, float output,
    # with a DEQUANTIZE before and a QUANTIZE after each one.
    assert all(inputs[:2] == ["float32", "float32"] for _, inputs, _ in conv3d)
    assert all(outputs == ["float32"] for _, _, outputs in conv3d)
    assert sum(op[0] == "DEQUANTIZE" for op in ops) >= 3
    dense = [op for op in ops if op[0] == "FULLY_CONNECTED"]
    assert dense and all(op[1][0] == "int8" and op[2] == ["int8"] for op in dense)


def test_student3d_qat_int8_vs_ptq_int8_accuracy(run3d: Run, run2d: Run) -> None:
    print("\n" + _report("student3d", run3d) + "\n" + _report("student2d", run2d))

    assert run3d.oa_qat_int8 >= run3d.oa_float - OA_TOLERANCE
    assert run3d.oa_qat_int8 >= run3d.oa_ptq_int8 - OA_TOLERANCE
    assert run3d.agreement >= 0.98


# --- quantisation decisions and ranges --------------------------------------------------


def test_conv3d_followed_by_bn_relu_has_no_quantisation_point_before_the_relu(
    run3d: Run,
) -> None:
    configs = {
        layer.layer.name: layer.quantize_config
        for layer in run3d.qat_model.layers
        if hasattr(layer, "quantize_config")
    }

    assert configs["conv1"].get_config() == {"quantize_activation": False}
    assert isinstance(configs["conv1_bn"], OutputQuantizeConfig)
    assert configs["conv1_bn"].get_config() == {"quantize_output": False}
    assert configs["conv1_relu"].get_output_quantizers(None)  # the block's one output point


def test_conv3d_kernel_is_quantised_per_output_channel_to_its_absolute_maximum(
    scene: PreparedScene,
) -> None:
    _, qat, _ = _tiny_qat(scene, "student3d")  # calibration ran training-mode passes
    wrapper = qat.get_layer("quant_conv2")
    (kernel,) = [w.numpy() for w in wrapper.trainable_weights if "kernel" in w.name]
    ranges = {w.name.split("/")[-1]: w.numpy() for w in wrapper.non_trainable_weights}
    expected = np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0)

    assert kernel.ndim == 5 and expected.shape == (kernel.shape[-1],)
    np.testing.assert_allclose(ranges["kernel_max:0"], expected, rtol=1e-6)
    np.testing.assert_allclose(ranges["kernel_min:0"], -expected, rtol=1e-6)


def test_calibration_sets_relu_range_to_the_float_activation_range(
    scene: PreparedScene,
) -> None:
    keras.utils.set_random_seed(SEED)
    model = build_model("student2d", bands=BANDS, n_classes=N_CLASSES, patch_size=5, seed=SEED)
    x = next(iter(scene.dataset("train", patch_size=5, layout="2d", batch_size=64)))[0].numpy()
    probe = keras.Model(model.input, model.get_layer("mix_relu").output)
    uncalibrated = prepare_qat(model).get_layer("quant_mix_relu")
    calibrated = prepare_qat(model, calibration=[x]).get_layer("quant_mix_relu")

    def output_range(wrapper: Any) -> tuple[float, float]:
        values = {w.name.split("/")[-1]: float(w.numpy()) for w in wrapper.non_trainable_weights}
        return values["output_min:0"], values["output_max:0"]

    assert output_range(uncalibrated) == (-6.0, 6.0)  # TF-MOT's start
    low, high = output_range(calibrated)
    assert low == 0.0
    assert high == pytest.approx(float(probe(x, training=False).numpy().max()), rel=0.02)


def test_calibrate_qat_refuses_a_float_model(scene: PreparedScene) -> None:
    model = build_model("cnn1d", bands=BANDS, n_classes=N_CLASSES, seed=SEED)
    with pytest.raises(ConfigError, match="prepare_qat"):
        calibrate_qat(model, [np.zeros((2, BANDS, 1), np.float32)])


# --- save / load ------------------------------------------------------------------------


def test_save_and_load_round_trip_gives_identical_predictions(run3d: Run, tmp_path: Path) -> None:
    path = save_qat(run3d.qat_model, tmp_path / "student3d_qat.h5")
    loaded = load_qat(path)
    x = np.random.default_rng(SEED).random((8, *loaded.input_shape[1:]), dtype=np.float32)

    assert is_qat_model(loaded)
    assert [type(layer.quantize_config).__name__ for layer in loaded.layers[2:5]] == [
        "Conv3DQuantizeConfig",
        "OutputQuantizeConfig",
        "Default8BitQuantizeConfig",
    ]
    np.testing.assert_array_equal(
        loaded.predict(x, verbose=0), run3d.qat_model.predict(x, verbose=0)
    )


def test_save_refuses_keras_suffix_and_load_reports_missing_file(
    run3d: Run, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"\.h5"):
        save_qat(run3d.qat_model, tmp_path / "model.keras")
    with pytest.raises(ModelFileNotFoundError, match="save_qat"):
        load_qat(tmp_path / "missing.h5")


# --- refusals ---------------------------------------------------------------------------


def _model_with_unsupported_layers(*, with_lambda: bool = True) -> keras.Model:
    inputs = keras.Input((8,), name="x")
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs) if with_lambda else inputs
    x = keras.layers.Dense(6, activation="elu", name="fc")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))


def test_unsupported_layers_raise_an_error_naming_them_and_the_ways_out() -> None:
    model = _model_with_unsupported_layers()

    assert qat_unsupported_layers(model) == [
        "double (Lambda: Lambda layer, TF-MOT cannot clone it; replace it with a standard layer)",
        "fc (Dense: fused activation 'elu')",
    ]
    with pytest.raises(UnsupportedError, match=r"double.*fc.*configs=.*post-training int8"):
        prepare_qat(model)


def test_a_custom_config_is_the_way_out_for_an_unsupported_layer() -> None:
    model = _model_with_unsupported_layers(with_lambda=False)
    assert qat_unsupported_layers(model) == ["fc (Dense: fused activation 'elu')"]
    qat = prepare_qat(model, configs={"fc": OutputQuantizeConfig()})  # float Dense+ELU, int8 out

    assert is_qat_model(qat)
    assert np.isfinite(qat(np.ones((2, 8), np.float32), training=False).numpy()).all()


def test_prepare_refuses_a_qat_model_and_finalize_refuses_a_float_one(run2d: Run) -> None:
    with pytest.raises(ConfigError, match="already quantization-aware"):
        prepare_qat(run2d.qat_model)
    with pytest.raises(ConfigError, match="not quantization-aware"):
        finalize_qat(run2d.float_model)


def test_calibration_leaves_weights_bn_statistics_and_dropout_rates_unchanged(
    scene: PreparedScene,
) -> None:
    keras.utils.set_random_seed(SEED)
    model = build_model("student3d", bands=BANDS, n_classes=N_CLASSES, patch_size=5, width=0.25)
    qat = prepare_qat(model)
    x = np.random.default_rng(SEED).random((8, *model.input_shape[1:]), dtype=np.float32)
    before = {w.name: w.numpy() for w in qat.weights if not w.name.endswith(("_min:0", "_max:0"))}

    assert calibrate_qat(qat, [x]) == 4  # the 3 ReLU outputs and the logits
    after = {w.name: w.numpy() for w in qat.weights if w.name in before}
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)
    rates = [layer.rate for layer in qat.submodules if isinstance(layer, keras.layers.Dropout)]
    assert rates == [0.2]
    assert any("moving_mean" in name for name in before)  # BN statistics were compared


class _Scale(keras.layers.Layer):
    """A user's layer TF-MOT's registry does not know."""

    def build(self, input_shape) -> None:
        self.scale = self.add_weight("scale", (int(input_shape[-1]),), initializer="ones")

    def call(self, x):
        return x * self.scale


def _model_with_custom_layer() -> keras.Model:
    inputs = keras.Input((8,), name="x")
    x = keras.layers.Dense(6, activation="relu", name="fc")(inputs)
    x = _Scale(name="scale")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))


def test_unquantisable_custom_layer_error_names_it_and_shows_how_to_annotate_it() -> None:
    with pytest.raises(UnsupportedError) as exc:
        prepare_qat(_model_with_custom_layer())
    message = str(exc.value)
    assert "\n" not in message
    assert "scale (_Scale: no 8-bit quantize config)" in message
    assert "configs={'scale': OutputQuantizeConfig()}" in message
    assert "tfmot.quantization.keras.QuantizeConfig" in message


def test_custom_layer_annotated_as_the_error_says_becomes_quantization_aware() -> None:
    model = _model_with_custom_layer()
    qat = prepare_qat(model, configs={"scale": OutputQuantizeConfig()})
    x = np.ones((2, 8), np.float32)

    assert is_qat_model(qat)
    assert np.isfinite(qat(x, training=False).numpy()).all()


def test_lambda_layer_error_says_it_cannot_be_annotated_and_what_to_do() -> None:
    with pytest.raises(UnsupportedError) as exc:
        prepare_qat(_model_with_unsupported_layers())
    message = str(exc.value)
    assert "configs={'fc': OutputQuantizeConfig()}" in message
    assert "Lambda layers ('double') cannot be annotated" in message
    assert "keras.layers.Layer subclass with get_config()" in message
