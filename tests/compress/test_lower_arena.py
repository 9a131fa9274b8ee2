"""The "lean" Conv3D lowering: today's outputs (float and int8) in a much smaller TFLM arena."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from lowering_samples import randomize_batch_norms

from tfhsi._keras import keras
from tfhsi.compress.lower import check_equivalence, lower_conv3d, lowered_input
from tfhsi.export.tflite import convert
from tfhsi.models import build_model

layers = keras.layers

ATOL = 1e-4


def _student(bands: int = 30, patch: int = 7) -> keras.Model:
    model = build_model("student3d", bands=bands, n_classes=5, patch_size=patch, seed=1)
    randomize_batch_norms(model, np.random.default_rng(1))  # folded into the kernels
    return model


def _patches(model: keras.Model, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *model.input_shape[1:])).astype("float32")


def _int8(lowered: keras.Model, calibration: np.ndarray) -> bytes:
    def representative():  # type: ignore[no-untyped-def]
        for i in range(len(calibration)):
            yield [calibration[i : i + 1]]

    return convert(lowered, "int8", representative=representative)


def _litert_int8(content: bytes, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(quantised inputs, raw int8 outputs, output scale) of LiteRT's built-in kernels."""
    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = inp["quantization"]
    quantized = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
    raw = []
    for i in range(len(quantized)):
        interpreter.set_tensor(inp["index"], quantized[i : i + 1])
        interpreter.invoke()
        raw.append(interpreter.get_tensor(out["index"]))
    return quantized, np.concatenate(raw), float(out["quantization"][0])


@pytest.fixture(scope="module")
def student_files() -> dict[str, bytes]:
    model = _student()
    calibration = lowered_input(_patches(model, 64, seed=1))
    return {
        strategy: _int8(lower_conv3d(model, strategy=strategy)[0], calibration)
        for strategy in ("sliced", "lean")
    }


def test_lean_lowering_equals_the_sliced_lowering_in_float() -> None:
    model = _student()
    lean, report = lower_conv3d(model, strategy="lean")
    sliced, _ = lower_conv3d(model, strategy="sliced")
    assert [e.strategy for e in report.layers] == ["lean"] * 3
    x = lowered_input(_patches(model, 16, seed=3))
    np.testing.assert_allclose(lean(x).numpy(), sliced(x).numpy(), atol=ATOL)
    assert check_equivalence(model, lean, _patches(model, 16, seed=4)) <= ATOL


def test_lean_int8_file_gives_the_sliced_int8_files_outputs_within_2_lsb(
    student_files: dict,
) -> None:
    model = _student()
    x = lowered_input(_patches(model, 8, seed=2))
    _, lean, scale = _litert_int8(student_files["lean"], x)
    _, sliced, _ = _litert_int8(student_files["sliced"], x)
    # Each file is calibrated on its own graph: the lean convs' outputs also hold the few
    # columns that straddle two pixels, so a range (and a rounding) may differ slightly.
    assert np.max(np.abs(lean.astype(np.int32) - sliced.astype(np.int32))) <= 2
    assert np.mean(lean != sliced) < 0.5
    assert scale > 0


def test_lean_int8_file_runs_on_tflite_micro_within_1_lsb_of_litert(student_files: dict) -> None:
    from tfhsi.profile.mcu import run_tflm

    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    model = _student()
    content = student_files["lean"]
    quantized, expected, _ = _litert_int8(content, lowered_input(_patches(model, 4, seed=5)))
    got = run_tflm(content, quantized).reshape(expected.shape)
    assert np.max(np.abs(got.astype(np.int32) - expected.astype(np.int32))) <= 1


def test_lean_tiny_student_needs_at_most_16_kib_of_arena_half_of_sliced(
    student_files: dict,
) -> None:
    from tfhsi.profile.mcu import find_min_arena

    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    lean = find_min_arena(student_files["lean"]).min_bytes
    sliced = find_min_arena(student_files["sliced"]).min_bytes
    # measured: 13,440 B lean, 27,536 B sliced (7x7x30 patch; 64-bit host)
    assert lean <= 16 * 1024
    assert lean < 0.55 * sliced


def test_consecutive_lean_convs_hand_over_their_buffer_without_reshape_copies() -> None:
    """TFLite Micro's RESHAPE copies: between two lean Conv3Ds there is none.

    (When the spectral stride divides the column stride, e.g. 32 or 200 bands here; with
    30 bands conv2's input is re-laid out once.)
    """
    content = convert(lower_conv3d(_student(bands=32), strategy="lean")[0], "fp32")
    interpreter = Interpreter(model_content=content)
    names = [op["op_name"] for op in interpreter._get_ops_details()]
    counts = Counter(names)
    assert counts["CONV_2D"] == 3 and counts["DEPTHWISE_CONV_2D"] == 3
    first, last = names.index("CONV_2D"), len(names) - 1 - names[::-1].index("CONV_2D")
    between = Counter(names[first:last])
    assert set(between) <= {"CONV_2D", "DEPTHWISE_CONV_2D"}, between


def test_lean_output_read_by_pooling_batch_norm_merges_and_dense_equals_the_original() -> None:
    """A lean conv's columns layout is turned back into the folded tensor where a layer needs it."""
    rng = np.random.default_rng(7)
    inputs = keras.Input((7, 6, 17, 2))
    x = layers.Conv3D(4, (3, 2, 3), strides=(1, 1, 2), activation="relu", name="a")(inputs)
    x = layers.LeakyReLU(0.1, name="leaky")(x)  # element-wise: keeps the columns layout
    x = layers.Dropout(0.3, name="drop")(x)
    b = layers.Conv3D(4, (2, 2, 3), name="b")(x)  # lean reads lean: no copy
    c = layers.BatchNormalization(name="bn")(b)  # BN after another layer's output: tiled
    d = layers.Conv3D(4, (1, 1, 1), name="d")(b)  # sliced: reads the folded tensor
    x = layers.Add(name="add")([c, d])
    x = layers.MaxPooling3D((2, 2, 2), padding="same", name="pool")(x)
    g = layers.GlobalAveragePooling3D(name="gap")(b)
    f = layers.Flatten()(x)
    outputs = layers.Dense(3, name="logits")(layers.Concatenate()([g, f]))
    model = keras.Model(inputs, outputs)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    bn = model.get_layer("bn")
    bn.set_weights([rng.uniform(0.5, 2, w.shape).astype("float32") for w in bn.get_weights()])

    x5 = rng.normal(size=(4, 7, 6, 17, 2)).astype("float32")
    lowered, report = lower_conv3d(model, check=x5)
    strategies = {e.name: e.strategy for e in report.layers if e.kind == "Conv3D"}
    assert strategies == {"a": "lean", "b": "lean", "d": "sliced"}
    assert report.max_abs_diff is not None and report.max_abs_diff <= ATOL
    got = convert(lowered, "fp32")
    interpreter = Interpreter(model_content=got)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], lowered_input(x5[:1]))
    interpreter.invoke()
    np.testing.assert_allclose(
        interpreter.get_tensor(out["index"]), model(x5[:1]).numpy(), atol=ATOL
    )
