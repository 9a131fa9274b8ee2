"""TFLite metadata in exported files: written as the metadata schema says, read back by the
standard means (the flatbuffer's TFLITE_METADATA buffer, the appended zip), and invisible to
the runtimes: LiteRT and TFLite Micro give the same raw outputs with and without it."""

from __future__ import annotations

import io
import json
import math
import zipfile

import numpy as np
import pytest
from export_samples import BANDS_2D, BANDS_3D, CLASSES

from tfhsi.errors import ConfigError, DataFormatError
from tfhsi.export import audit
from tfhsi.export.graph import load_schema
from tfhsi.export.metadata import (
    LABELS_FILE,
    METADATA_NAME,
    InputInfo,
    Normalization,
    OutputInfo,
    add_metadata,
    read_metadata,
)

NAMES = [f"class {i}" for i in range(CLASSES)]
MEAN = np.linspace(100.0, 800.0, BANDS_2D)
STD = np.linspace(10.0, 80.0, BANDS_2D)


def _info(**overrides):
    fields = {
        "description": "5x5 patches of 8 standardised bands",
        "bands": BANDS_2D,
        "layout": "2d",
        "normalization": Normalization(MEAN, STD, constant_bands=[3]),
        "value_range": (-4.0, 4.0),
    }
    fields.update(overrides)
    return InputInfo(**fields)


def _add(data: bytes, **overrides) -> bytes:
    fields = {
        "name": "tiny student2d",
        "description": "A test classifier.",
        "version": "1.0",
        "author": "tfhsi tests",
        "licence": "Apache-2.0",
        "input": _info(),
        "output": OutputInfo("Class scores.", NAMES),
    }
    fields.update(overrides)
    return add_metadata(data, **fields)


@pytest.fixture(scope="module")
def int8_pair(converted) -> tuple[bytes, bytes]:
    plain = converted("student2d", "int8")
    return plain, _add(plain)


def test_metadata_fields_read_back_as_written(int8_pair) -> None:
    meta = read_metadata(int8_pair[1])
    assert meta is not None
    assert (meta["name"], meta["version"], meta["author"], meta["license"]) == (
        "tiny student2d",
        "1.0",
        "tfhsi tests",
        "Apache-2.0",
    )
    assert meta["min_parser_version"] == "1.0.0"
    (tensor,) = meta["inputs"]
    assert tensor["layout"] == "2d"
    assert tensor["dimension_names"] == ["batch", "row", "column", "band"]
    assert tensor["content"] == "feature"
    norm = tensor["normalization"]
    np.testing.assert_array_equal(norm["mean"], MEAN.astype(np.float32))
    expected_std = [float(v) for v in STD.astype(np.float32)]
    expected_std[3] = None  # stored as inf (0 for every pixel); None keeps the result JSON
    assert norm["std"] == expected_std
    assert norm["constant_bands"] == [3]
    json.dumps(meta, allow_nan=False)
    assert tensor["stats"] == {"min": [-4.0], "max": [4.0]}


def test_labels_are_a_tensor_axis_labels_file_of_the_output(int8_pair) -> None:
    meta = read_metadata(int8_pair[1])
    (output,) = meta["outputs"]
    assert output["associated_files"] == [
        {
            "name": LABELS_FILE,
            "description": "Class names, one per line, in output order.",
            "type": "TENSOR_AXIS_LABELS",
        }
    ]
    assert output["labels"] == NAMES
    with zipfile.ZipFile(io.BytesIO(int8_pair[1])) as archive:
        assert archive.namelist() == [LABELS_FILE]
        assert archive.getinfo(LABELS_FILE).compress_type == zipfile.ZIP_STORED
        assert archive.read(LABELS_FILE).decode().splitlines() == NAMES


def test_metadata_is_an_m001_flatbuffer_in_the_named_buffer(int8_pair) -> None:
    fb = load_schema().Model.GetRootAs(int8_pair[1], 0)
    names = [fb.Metadata(i).Name().decode() for i in range(fb.MetadataLength())]
    assert names.count(METADATA_NAME) == 1
    entry = fb.Metadata(names.index(METADATA_NAME))
    raw = bytes(fb.Buffers(entry.Buffer()).DataAsNumpy())
    assert raw[4:8] == b"M001"


def test_graph_is_unchanged_by_metadata(int8_pair) -> None:
    plain, with_meta = (audit(d) for d in int8_pair)
    assert [op.name for op in with_meta.ops] == [op.name for op in plain.ops]
    assert with_meta.precision == plain.precision == "int8"


def test_litert_outputs_are_identical_with_metadata(int8_pair) -> None:
    from tfhsi.profile.interpreter import TFLiteModel

    plain, with_meta = (TFLiteModel(d, num_threads=1) for d in int8_pair)
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.integers(-128, 128, size=plain.input_shape, dtype=np.int8)
        np.testing.assert_array_equal(with_meta.invoke_raw(x), plain.invoke_raw(x))


def test_tflm_outputs_are_identical_with_metadata(int8_pair) -> None:
    from tfhsi.profile.mcu import run_tflm

    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, size=(4, 5, 5, BANDS_2D), dtype=np.int8)
    np.testing.assert_array_equal(run_tflm(int8_pair[1], x), run_tflm(int8_pair[0], x))


def test_adding_metadata_again_replaces_it(int8_pair) -> None:
    again = _add(int8_pair[1])
    assert again == int8_pair[1]
    renamed = read_metadata(_add(int8_pair[1], name="renamed", input=_info(normalization=None)))
    assert renamed["name"] == "renamed"
    assert renamed["inputs"][0]["normalization"] is None


def test_3d_float_model_gets_3d_dimension_names(converted) -> None:
    data = _add(
        converted("student3d", "fp32"),
        input=InputInfo("3-D patches", bands=BANDS_3D, layout="3d"),
    )
    (tensor,) = read_metadata(data)["inputs"]
    assert tensor["layout"] == "3d"
    assert tensor["normalization"] is None and tensor["stats"] is None


def test_file_without_metadata_reads_as_none(int8_pair) -> None:
    assert read_metadata(int8_pair[0]) is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"output": OutputInfo("scores", NAMES[:-1])}, "class names"),
        ({"output": OutputInfo("scores", ["a", "", "c", "d"])}, "empty"),
        ({"input": _info(bands=BANDS_2D + 1)}, "input tensor has shape"),
        ({"input": _info(layout="3d")}, "input tensor has shape"),
        ({"input": _info(normalization=Normalization(MEAN[:4], STD[:4]))}, "normalisation has"),
        ({"input": _info(normalization=Normalization(MEAN, np.zeros(BANDS_2D)))}, "positive"),
        ({"input": _info(value_range=([0.0, 1.0], [1.0, 2.0]))}, "value_range"),
    ],
)
def test_metadata_that_disagrees_with_the_model_is_refused(
    int8_pair, overrides: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _add(int8_pair[0], **overrides)


def test_bytes_that_are_no_tflite_are_refused() -> None:
    with pytest.raises(DataFormatError, match="not a TFLite model"):
        read_metadata(b"PK\x03\x04 not a model")


def test_constant_band_standardises_to_zero_for_any_value() -> None:
    mean, std = Normalization([5.0, 7.0], [2.0, 1.0], constant_bands=[1]).arrays()
    z = (np.array([[9.0, 123.0]], np.float32) - mean) / std
    assert z.tolist() == [[2.0, 0.0]] and math.isinf(float(std[1]))
