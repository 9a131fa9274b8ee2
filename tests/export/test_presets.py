"""Each export preset produces the dtypes it promises, with batch 1 and static shapes."""

from __future__ import annotations

import numpy as np
import pytest
from export_samples import BANDS_2D, CLASSES, PATCH, random_representative

from tfhsi.errors import ConfigError, DataFormatError, UnsupportedError
from tfhsi.export import Preset, audit, convert, labels_path, write_tflite
from tfhsi.export.graph import read_graph

PRESETS = [p.value for p in Preset]
COMPUTE_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}


def _ops(data: bytes):
    return read_graph(data).ops


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_has_batch_one_static_shapes_and_no_shape_or_pack_ops(converted, preset):
    graph = read_graph(converted("student2d", preset))
    names = {op.name for op in graph.ops}
    assert not names & {"SHAPE", "PACK", "DENSIFY"}
    assert [t.shape_signature for t in graph.inputs] == [(1, PATCH, PATCH, BANDS_2D)]
    assert [t.shape_signature for t in graph.outputs] == [(1, CLASSES)]
    for op in graph.ops:
        for t in [*op.inputs, *op.outputs]:
            assert not t.is_dynamic, f"{op.label}: {t.describe()}"


def test_fp32_preset_is_float32_everywhere(converted):
    ops = _ops(converted("student2d", "fp32"))
    dtypes = {t.dtype for op in ops for t in [*op.inputs, *op.outputs] if t.dtype != "int32"}
    assert dtypes == {"float32"}
    assert not any(t.quantized for op in ops for t in [*op.inputs, *op.outputs])
    assert audit(converted("student2d", "fp32")).precision == "float32"


def test_fp16_preset_stores_float16_weights_dequantized_at_load(converted):
    data = converted("student2d", "fp16")
    ops = _ops(data)
    dequant = [op for op in ops if op.name == "DEQUANTIZE"]
    assert dequant and all(
        op.inputs[0].dtype == "float16" and op.inputs[0].is_constant for op in dequant
    )
    assert all(op.outputs[0].dtype == "float32" for op in dequant)
    compute = [op for op in ops if op.name in COMPUTE_OPS]
    assert compute and all(t.dtype == "float32" for op in compute for t in op.activations)
    assert not any(t.dtype == "float32" for op in compute for t in op.inputs if t.is_constant)
    report = audit(data)
    assert report.precision == "float16-weights" and not report.is_full_int8


def test_dynamic_preset_has_int8_weights_and_float32_activations(converted):
    data = converted("student2d", "dynamic")
    ops = _ops(data)
    compute = [op for op in ops if op.name in COMPUTE_OPS]
    assert all(t.dtype == "float32" for op in compute for t in op.activations if not t.is_constant)
    int8_weights = [t for op in compute for t in op.weights if t.dtype == "int8"]
    # The converter quantises tensors of >= 1024 weights only; student2d has two (pw1, pw2).
    assert len(int8_weights) >= 2 and all(t.quantized for t in int8_weights)
    report = audit(data)
    assert report.precision == "dynamic-range" and not report.is_full_int8


def test_int8_preset_is_int8_end_to_end_with_int32_biases(converted):
    data = converted("student2d", "int8")
    graph = read_graph(data)
    assert [t.dtype for t in graph.inputs] == ["int8"] and [t.dtype for t in graph.outputs] == [
        "int8"
    ]
    for op in graph.ops:
        assert op.name not in ("QUANTIZE", "DEQUANTIZE")
        for t in op.activations:
            assert t.dtype == "int8" and t.quantized, f"{op.label}: {t.describe()}"
    for op in graph.ops:
        if op.name in COMPUTE_OPS:
            weights = op.weights
            assert weights[0].dtype == "int8" and weights[0].quantized
            assert all(b.dtype == "int32" and b.quantized for b in weights[1:])
    assert any(len(op.weights) > 1 for op in graph.ops if op.name == "CONV_2D")  # folded BN bias
    report = audit(data)
    assert report.is_full_int8 and report.precision == "int8" and not report.float_ops


def test_int16x8_preset_has_int16_activations_and_int8_weights(converted):
    data = converted("student2d", "int16x8")
    graph = read_graph(data)
    assert [t.dtype for t in graph.inputs] == ["int16"]
    for op in graph.ops:
        assert all(t.dtype == "int16" for t in op.activations), op.label
        if op.name in COMPUTE_OPS:
            assert op.weights[0].dtype == "int8"
    assert audit(data).precision == "int16x8"


def test_fp32_tflite_computes_what_keras_computes(converted):
    from tfhsi.profile.interpreter import TFLiteModel

    model = converted.model("student2d")
    x = np.random.default_rng(3).normal(size=(3, PATCH, PATCH, BANDS_2D)).astype(np.float32)
    expected = model(x, training=False).numpy()
    got = TFLiteModel(converted("student2d", "fp32")).predict(x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_converter_int8_of_a_conv3d_model_keeps_conv3d_in_float32(converted):
    """The converter's own int8 result (preset int8-mixed; export_tflite's int8 lowers Conv3D)."""
    report = audit(converted("student3d", "int8-mixed"))
    assert not report.is_full_int8 and report.precision == "mixed"
    conv3d = [op for op in report.ops if op.name == "CONV_3D"]
    assert conv3d and all(op in report.float_ops for op in conv3d)
    islands = [i for i in report.float_islands if any(o.name == "CONV_3D" for o in i.ops)]
    assert len(islands) == len(conv3d)
    assert all(i.entries[0].name == "DEQUANTIZE" and i.exits[0].name == "QUANTIZE" for i in islands)
    assert "CONV_3D" in islands[0].describe() and "float32" in islands[0].describe()
    tflm = report.verdicts["tflm"]
    assert not tflm.ok and any("CONV_3D" in r for r in tflm.reasons)


def test_int16x8_preset_refuses_conv3d_naming_the_op(converted):
    with pytest.raises(UnsupportedError, match="CONV_3D"):
        convert(
            converted.model("student3d"),
            "int16x8",
            representative=random_representative((PATCH, PATCH, 24, 1)),
        )


@pytest.mark.parametrize("preset", ["int8", "int16x8"])
def test_integer_presets_without_representative_data_raise_config_error(converted, preset):
    with pytest.raises(ConfigError, match="representative"):
        convert(converted.model("student2d"), preset)


def test_representative_of_the_wrong_shape_is_a_config_error_not_a_tf_traceback(converted):
    with pytest.raises(ConfigError, match=r"expects \(N, 5, 5, 8\)"):
        convert(
            converted.model("student2d"), "int8", representative=random_representative((5, 5, 9))
        )


def test_unknown_preset_lists_the_valid_ones(converted):
    with pytest.raises(ConfigError, match="fp32, fp16, dynamic, int8, int8-mixed, int16x8"):
        convert(converted.model("student2d"), "int4")


def test_write_tflite_writes_model_and_labels_sidecar(converted, tmp_path):
    data = converted("student2d", "int8")
    names = ["Corn", "Grass-pasture", "Woods", "Bois de Boulogne é"]
    path = write_tflite(data, tmp_path / "out" / "student.tflite", class_names=names)
    assert path.read_bytes() == data
    sidecar = labels_path(path)
    assert sidecar.name == "student.labels.txt"
    assert sidecar.read_text(encoding="utf-8").splitlines() == names
    assert audit(path).class_names == names
    assert sorted(p.name for p in path.parent.iterdir()) == ["student.labels.txt", "student.tflite"]


def test_write_tflite_refuses_bytes_that_are_not_a_model(tmp_path):
    with pytest.raises(DataFormatError, match="TFL3"):
        write_tflite(b"not a model at all", tmp_path / "x.tflite")
    assert not (tmp_path / "x.tflite").exists()


def test_write_tflite_rejects_multiline_class_names(converted, tmp_path):
    with pytest.raises(ConfigError, match="line break"):
        write_tflite(converted("student2d", "fp32"), tmp_path / "m.tflite", class_names=["a\nb"])


def test_converter_failure_is_a_tfhsi_error_naming_the_tensorflow_op():
    from tfhsi._keras import keras, tf

    inp = keras.Input((3, 3))
    out = keras.layers.Lambda(lambda t: tf.linalg.det(t)[:, None])(inp)
    with pytest.raises(UnsupportedError, match=r"tf\.MatrixDeterminant"):
        convert(keras.Model(inp, out, name="detnet"), "fp32")


def test_cli_preset_help_names_every_preset_of_the_table() -> None:
    from tfhsi.cli.export import PRESET_HELP
    from tfhsi.export.presets import PRESET_NAMES

    named = PRESET_HELP.split(":", 1)[1].split("(")[0].replace(".", "")
    assert [n.strip() for n in named.split(",")] == list(PRESET_NAMES)
