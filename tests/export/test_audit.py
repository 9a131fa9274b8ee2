"""The op-level audit: float islands, honest precision labels, target rules, bad files."""

from __future__ import annotations

import json

import pytest

from tfhsi.errors import DataFormatError, ModelFileNotFoundError
from tfhsi.export import audit, write_tflite
from tfhsi.export.graph import ModelGraph, OpInfo, TensorInfo
from tfhsi.export.precision import analyse
from tfhsi.export.targets import EDGETPU_NOT_RUN, check_all


def test_planted_float_op_in_an_int8_model_is_caught_as_a_float_island(converted):
    report = audit(converted("planted", "int8-mixed"))
    assert not report.is_full_int8
    assert report.precision == "mixed"
    assert [op.name for op in report.float_ops] == ["ELU"]
    (island,) = report.float_islands
    assert [o.name for o in island.ops] == ["ELU"]
    assert island.describe().startswith("DEQUANTIZE#") and "ELU#" in island.describe()
    assert island.describe().endswith(island.exits[0].label) and island.exits[0].name == "QUANTIZE"
    edgetpu = report.verdicts["edgetpu"]
    assert not edgetpu.ok and any(label.startswith("ELU#") for label in edgetpu.failing_ops)


def test_full_int8_model_passes_every_static_check_and_says_the_compiler_was_not_run(converted):
    report = audit(converted("student2d", "int8"))
    assert report.is_full_int8 and not report.float_islands
    assert all(v.ok for v in report.verdicts.values()), report.verdicts
    assert EDGETPU_NOT_RUN in report.verdicts["edgetpu"].reasons
    assert report.verdicts["litert-xnnpack"].reasons[0].startswith("fully delegated")


def test_float_models_fail_the_edge_tpu_and_fp16_or_dynamic_fail_tflm(converted):
    fp32 = audit(converted("student2d", "fp32"))
    assert not fp32.verdicts["edgetpu"].ok and fp32.verdicts["tflm"].ok
    assert EDGETPU_NOT_RUN in fp32.verdicts["edgetpu"].reasons
    fp16 = audit(converted("student2d", "fp16"))
    assert not fp16.verdicts["tflm"].ok and any(
        "float16" in r for r in fp16.verdicts["tflm"].reasons
    )
    dynamic = audit(converted("student2d", "dynamic"))
    assert not dynamic.verdicts["tflm"].ok and any(
        "hybrid" in r for r in dynamic.verdicts["tflm"].reasons
    )


def test_audit_dict_is_json_with_every_op_and_verdict(converted):
    report = audit(converted("student3d", "int8-mixed"))
    d = json.loads(json.dumps(report.to_dict()))
    assert len(d["ops"]) == len(report.ops)
    assert set(d["verdicts"]) == {"litert-xnnpack", "tflm", "edgetpu"}
    assert d["is_full_int8"] is False and d["float_islands"]
    assert all("kind" in op and "inputs" in op for op in d["ops"])


def test_tflm_smoke_invokes_int8_model_and_fails_conv3d_model(converted):
    ok = audit(converted("student2d", "int8"), tflm_smoke=True)
    assert ok.smoke[0].ok and ok.verdicts["tflm"].ok
    bad = audit(converted("student3d", "int8-mixed"), tflm_smoke=True)
    assert not bad.smoke[0].ok and "CONV_3D" in bad.smoke[0].detail
    assert not bad.verdicts["tflm"].ok


def test_labels_sidecar_for_another_model_is_noted(converted, tmp_path):
    path = write_tflite(
        converted("student2d", "int8"), tmp_path / "m.tflite", class_names=["a", "b"]
    )
    report = audit(path)
    assert report.class_names == ["a", "b"]
    assert any("2 class names but the output has 4" in n for n in report.notes)


def test_not_a_tflite_file_is_a_data_format_error(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"PK\x03\x04 zip archive")
    with pytest.raises(DataFormatError, match="zip archive"):
        audit(path)
    with pytest.raises(DataFormatError, match="empty"):
        audit(b"")


def test_truncated_flatbuffer_is_a_data_format_error(converted):
    data = converted("student2d", "int8")
    with pytest.raises(DataFormatError, match="truncated or corrupt"):
        audit(data[:200])


def test_missing_model_file_says_so(tmp_path):
    with pytest.raises(ModelFileNotFoundError, match="does not exist"):
        audit(tmp_path / "nope.tflite")


# --- rules on hand-built graphs (no converter needed) ---------------------------------
def _t(index, shape, dtype="int8", *, const=False, signature=None):
    return TensorInfo(
        index=index,
        name=f"t{index}",
        shape=tuple(shape),
        shape_signature=tuple(signature or shape),
        dtype=dtype,
        is_constant=const,
        quantized=dtype in ("int8", "int16", "int32"),
    )


def _graph(ops, inputs, outputs):
    return ModelGraph(ops=ops, inputs=inputs, outputs=outputs, size_bytes=1000)


def _verdicts(graph):
    return check_all(graph, analyse(graph))


def test_tflm_rejects_a_5d_strided_slice_and_edgetpu_rejects_5d_activations():
    x, y = _t(0, (1, 5, 5, 24, 1)), _t(4, (1, 5, 5, 12, 1))
    params = [_t(i, (5,), "int32", const=True) for i in (1, 2, 3)]
    op = OpInfo(0, "STRIDED_SLICE", [x, *params], [y])
    verdicts = _verdicts(_graph([op], [x], [y]))
    assert not verdicts["tflm"].ok
    assert any("5-D" in r and "at most 4-D" in r for r in verdicts["tflm"].reasons)
    assert not verdicts["edgetpu"].ok
    assert any("more than 3 dimensions larger than 1" in r for r in verdicts["edgetpu"].reasons)


def test_tflm_allows_4d_strided_slice_and_edgetpu_allows_leading_ones():
    x, y = _t(0, (1, 5, 5, 24)), _t(4, (1, 5, 5, 12))
    params = [_t(i, (4,), "int32", const=True) for i in (1, 2, 3)]
    verdicts = _verdicts(_graph([OpInfo(0, "STRIDED_SLICE", [x, *params], [y])], [x], [y]))
    assert verdicts["tflm"].ok and verdicts["edgetpu"].ok


def test_tflm_rejects_concatenation_of_more_than_ten_inputs():
    def concat(n):
        xs = [_t(i, (1, 2, 2, 1)) for i in range(n)]
        y = _t(n, (1, 2, 2, n))
        return _verdicts(_graph([OpInfo(0, "CONCATENATION", xs, [y])], xs, [y]))["tflm"]

    assert concat(10).ok
    too_many = concat(11)
    assert not too_many.ok and any("11 inputs" in r for r in too_many.reasons)


def test_dynamic_batch_fails_tflm_and_edgetpu():
    x = _t(0, (1, 4), "float32", signature=(-1, 4))
    w = _t(1, (3, 4), "float32", const=True)
    y = _t(2, (1, 3), "float32", signature=(-1, 3))
    verdicts = _verdicts(_graph([OpInfo(0, "FULLY_CONNECTED", [x, w], [y])], [x], [y]))
    assert not verdicts["tflm"].ok and any("dynamic shapes" in r for r in verdicts["tflm"].reasons)
    assert not verdicts["edgetpu"].ok


def test_custom_op_is_not_in_tflm_resolver():
    x, y = _t(0, (1, 4)), _t(1, (1, 4))
    verdicts = _verdicts(_graph([OpInfo(0, "MyOp", [x], [y], custom=True)], [x], [y]))
    assert not verdicts["tflm"].ok and "MyOp#0" in verdicts["tflm"].failing_ops


def test_dequantize_quantize_pair_without_float_compute_is_still_not_full_int8():
    a, f, b = _t(0, (1, 4)), _t(1, (1, 4), "float32"), _t(2, (1, 4))
    w = _t(3, (4, 4), const=True)
    out = _t(4, (1, 4))
    ops = [
        OpInfo(0, "DEQUANTIZE", [a], [f]),
        OpInfo(1, "QUANTIZE", [f], [b]),
        OpInfo(2, "FULLY_CONNECTED", [b, w], [out]),
    ]
    precision = analyse(_graph(ops, [a], [out]))
    assert not precision.is_full_int8 and precision.stray_float_tensors == ["t1 (float32)"]


def test_float_io_with_quantize_and_dequantize_at_the_edges_is_full_int8():
    x, q = _t(0, (1, 4), "float32"), _t(1, (1, 4))
    w, y = _t(2, (4, 4), const=True), _t(3, (1, 4))
    out = _t(4, (1, 4), "float32")
    ops = [
        OpInfo(0, "QUANTIZE", [x], [q]),
        OpInfo(1, "FULLY_CONNECTED", [q, w], [y]),
        OpInfo(2, "DEQUANTIZE", [y], [out]),
    ]
    graph = _graph(ops, [x], [out])
    precision = analyse(graph)
    assert precision.is_full_int8 and precision.label == "int8"
    edgetpu = check_all(graph, precision)["edgetpu"]
    assert edgetpu.ok and any("QUANTIZE#0 at the model input" in r for r in edgetpu.reasons)
