"""TFLiteModel on tiny converted tf_keras models: fp32, int8, int16x8, fixed and dynamic batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tfhsi.errors import ConfigError, DataFormatError, ModelFileNotFoundError
from tfhsi.profile.interpreter import TFLiteModel

SAMPLE = (5, 5, 4)
N_CLASSES = 3
CALIB_SEED = 1  # representative dataset: _data(64, seed=CALIB_SEED)


@pytest.fixture(scope="module")
def tf_keras():
    from tfhsi._keras import keras, tf

    return tf, keras


def _build(keras, *, batch_size: int | None):
    keras.utils.set_random_seed(0)
    inp = keras.Input(SAMPLE, batch_size=batch_size)
    x = keras.layers.Conv2D(6, 3, activation="relu")(inp)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(N_CLASSES)(x)
    return keras.Model(inp, out)


def _data(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *SAMPLE)).astype(np.float32)


def _keras_logits(model, x: np.ndarray) -> np.ndarray:
    return np.concatenate([model(x[i : i + 1], training=False).numpy() for i in range(len(x))])


@pytest.fixture(scope="module")
def fixed_model(tf_keras):
    tf, keras = tf_keras
    model = _build(keras, batch_size=1)
    return model, tf.lite.TFLiteConverter.from_keras_model(model).convert()


@pytest.fixture(scope="module")
def dynamic_model(tf_keras):
    tf, keras = tf_keras
    model = _build(keras, batch_size=None)
    return model, tf.lite.TFLiteConverter.from_keras_model(model).convert()


def _quantized(tf, model, *, int16: bool) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[None]] for x in _data(64, seed=CALIB_SEED))
    if int16:
        ops = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        io_type = tf.int16
    else:
        ops, io_type = tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.int8
    converter.target_spec.supported_ops = [ops]
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    return converter.convert()


@pytest.fixture(scope="module")
def int8_bytes(tf_keras, fixed_model) -> bytes:
    return _quantized(tf_keras[0], fixed_model[0], int16=False)


def test_fp32_fixed_batch_one_matches_keras_for_five_samples(fixed_model) -> None:
    model, content = fixed_model
    tfl = TFLiteModel(content)
    assert tfl.input_shape == (1, *SAMPLE)
    assert tfl.fixed_batch == 1
    assert tfl.input_quantization is None
    x = _data(5)
    out = tfl.predict(x)
    assert out.shape == (5, N_CLASSES)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _keras_logits(model, x), atol=1e-5)


def test_fp32_from_path_without_xnnpack_matches_keras(fixed_model, tmp_path: Path) -> None:
    model, content = fixed_model
    path = tmp_path / "m.tflite"
    path.write_bytes(content)
    tfl = TFLiteModel(path, xnnpack=False, num_threads=1)
    x = _data(3, seed=2)
    np.testing.assert_allclose(tfl.predict(x), _keras_logits(model, x), atol=1e-5)


def test_dynamic_batch_resizes_per_batch_size(dynamic_model) -> None:
    model, content = dynamic_model
    tfl = TFLiteModel(content)
    assert tfl.fixed_batch is None
    for n in (7, 2, 7):
        x = _data(n, seed=n)
        out = tfl.predict(x)
        assert out.shape == (n, N_CLASSES)
        np.testing.assert_allclose(out, model(x, training=False).numpy(), atol=1e-5)


def test_fixed_batch_four_pads_the_last_chunk_and_drops_padding(tf_keras) -> None:
    tf, keras = tf_keras
    model = _build(keras, batch_size=4)
    tfl = TFLiteModel(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    assert tfl.fixed_batch == 4
    x = _data(6, seed=7)
    out = tfl.predict(x)
    assert out.shape == (6, N_CLASSES)
    np.testing.assert_allclose(out, _keras_logits(model, x), atol=1e-5)


@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")
def test_int8_model_quantizes_input_and_dequantizes_output(fixed_model, int8_bytes) -> None:
    model, _ = fixed_model
    tfl = TFLiteModel(int8_bytes)
    assert tfl.input_dtype == np.int8 and tfl.output_dtype == np.int8
    assert tfl.input_quantization is not None and tfl.output_quantization is not None
    # Calibration samples: no activation leaves its calibrated range. Measured: max 2.2 steps.
    x = _data(64, seed=CALIB_SEED)[:20]
    out = tfl.predict(x)
    ref = _keras_logits(model, x)
    assert out.dtype == np.float32
    out_scale = tfl.output_quantization[0]
    assert np.abs(out - ref).max() <= 3 * out_scale
    assert (out.argmax(1) == ref.argmax(1)).mean() >= 0.9


def test_invoke_raw_returns_integer_output_that_predict_dequantizes(int8_bytes) -> None:
    tfl = TFLiteModel(int8_bytes, xnnpack=False)
    x = _data(1, seed=4)
    raw = tfl.invoke_raw(tfl.quantize_input(x))
    assert raw.dtype == np.int8
    np.testing.assert_array_equal(tfl.dequantize_output(raw), tfl.predict(x))
    with pytest.raises(DataFormatError, match="raw input dtype int8"):
        tfl.invoke_raw(x)


@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")
def test_int16x8_model_runs_through_predict(tf_keras, fixed_model) -> None:
    tf, _ = tf_keras
    model, _ = fixed_model
    tfl = TFLiteModel(_quantized(tf, model, int16=True))
    assert tfl.input_dtype == np.int16
    # int8 weights dominate the error; measured max |diff| 0.016 on logits of range ~±2.
    x = _data(64, seed=CALIB_SEED)[:20]
    out, ref = tfl.predict(x), _keras_logits(model, x)
    np.testing.assert_allclose(out, ref, atol=3e-2)
    assert (out.argmax(1) == ref.argmax(1)).mean() >= 0.9


def test_quantize_input_rounds_half_away_from_zero_and_saturates(int8_bytes) -> None:
    tfl = TFLiteModel(int8_bytes)
    scale, zp = tfl.input_quantization
    x = np.zeros((1, *SAMPLE), np.float32)
    x.flat[:4] = [0.5 * scale, -0.5 * scale, 1e6, -1e6]
    q = tfl.quantize_input(x).ravel()[:4]
    np.testing.assert_array_equal(
        q, [np.clip(zp + 1, -128, 127), np.clip(zp - 1, -128, 127), 127, -128]
    )


def test_wrong_patch_shape_names_expected_input_and_hints_at_bands(fixed_model) -> None:
    tfl = TFLiteModel(fixed_model[1])
    with pytest.raises(
        DataFormatError,
        match=r"expects input \(1, 5, 5, 4\) but got patches of shape \(5, 5, 200\).*bands",
    ):
        tfl.predict(np.zeros((2, 5, 5, 200), np.float32))
    with pytest.raises(DataFormatError, match=r"single sample.*x\[None\]"):
        tfl.predict(np.zeros(SAMPLE, np.float32))


def test_file_that_is_not_tflite_raises_with_file_name_and_export_hint(tmp_path: Path) -> None:
    bad = tmp_path / "model.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(
        DataFormatError, match=r"model\.h5 is not a TFLite model.*HDF5.*tfhsi export"
    ):
        TFLiteModel(bad)
    with pytest.raises(DataFormatError, match="TFL3"):
        TFLiteModel(b"not a model at all")


def test_corrupt_flatbuffer_with_tflite_identifier_raises_data_format_error() -> None:
    with pytest.raises(DataFormatError, match="could not load <bytes>"):
        TFLiteModel(b"\0\0\0\0TFL3" + b"\xff" * 64)


def test_missing_file_and_bad_threads_raise_clear_errors(tmp_path: Path, fixed_model) -> None:
    with pytest.raises(ModelFileNotFoundError, match=r"nope\.tflite does not exist"):
        TFLiteModel(tmp_path / "nope.tflite")
    with pytest.raises(ConfigError, match="num_threads"):
        TFLiteModel(fixed_model[1], num_threads=0)


def test_keras_and_tflite_give_the_same_oa_through_evaluate(fixed_model) -> None:
    from tfhsi.train.evaluate import evaluate

    model, content = fixed_model
    x = _data(30, seed=6)
    y = _keras_logits(model, x).argmax(1)
    y[::3] = (y[::3] + 1) % N_CLASSES  # some errors so OA is not trivially 1
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 30, 8)]
    names = ("a", "b", "c")
    keras_m = evaluate(lambda b: _keras_logits(model, b), batches, class_names=names)
    tfl_m = evaluate(TFLiteModel(content).predict, batches, class_names=names)
    assert tfl_m.oa == pytest.approx(keras_m.oa, abs=1e-3)
    assert keras_m.oa == pytest.approx(2 / 3)


def test_interpreter_module_does_not_import_tensorflow() -> None:
    import subprocess
    import sys

    code = "import sys, tfhsi.profile.interpreter; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
