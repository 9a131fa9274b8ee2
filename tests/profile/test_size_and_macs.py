"""Model size (raw / gzip) and MACs counted from the .tflite graph."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from profile_samples import MACS_2D

from tfhsi.errors import ModelFileNotFoundError
from tfhsi.profile.macs import count_macs, float_ops
from tfhsi.profile.size import model_size


def test_size_reports_file_bytes_and_gzip9_bytes(int8_2d_path: Path, int8_2d: bytes) -> None:
    size = model_size(int8_2d_path)
    assert size.raw_bytes == int8_2d_path.stat().st_size == len(int8_2d)
    assert size.gzip_bytes == len(gzip.compress(int8_2d, compresslevel=9, mtime=0))
    assert model_size(int8_2d) == size


def test_gzip_shrinks_zeros_but_not_noise() -> None:
    import os

    header = b"\0\0\0\0TFL3"  # model_size checks it is given a TFLite flatbuffer
    assert model_size(header + b"\0" * 100_000).gzip_bytes < 1_000
    assert model_size(header + os.urandom(100_000)).gzip_bytes > 99_000


def test_size_of_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ModelFileNotFoundError, match=r"gone\.tflite does not exist"):
        model_size(tmp_path / "gone.tflite")


def test_macs_of_conv_depthwise_dense_model_equal_hand_count(int8_2d: bytes) -> None:
    macs = count_macs(int8_2d)
    assert macs.per_sample == MACS_2D
    assert [(o.op, o.macs) for o in macs.per_op] == [
        ("CONV_2D", 225_792),
        ("DEPTHWISE_CONV_2D", 7_200),
        ("CONV_2D", 230_400),
        ("FULLY_CONNECTED", 160),
    ]


def test_macs_are_the_same_for_int8_and_float_exports(int8_2d: bytes, float_2d: bytes) -> None:
    assert count_macs(float_2d).per_sample == count_macs(int8_2d).per_sample == MACS_2D


def test_macs_of_conv3d_graph_match_keras_layer_count(int8_conv3d: bytes) -> None:
    # Conv3D 3×3×3 1→4 on 7×7×8 → 5×5×6×4 outputs × 27 = 16,200; dense 600→3 = 1,800.
    assert count_macs(int8_conv3d).per_sample == 16_200 + 1_800


def test_macs_match_model_zoo_count_for_student2d(convert) -> None:
    from tfhsi.models import build_model
    from tfhsi.models import count_macs as keras_macs

    model = build_model("student2d", bands=8, n_classes=4, patch_size=5, seed=0)
    content = convert(lambda layers, x: model(x), (5, 5, 8))
    assert count_macs(content).per_sample == keras_macs(model) > 0


def test_float_ops_lists_float_kernels_and_is_empty_for_int8(
    int8_2d: bytes, float_2d: bytes, int8_conv3d: bytes
) -> None:
    assert float_ops(int8_2d) == []
    assert float_ops(float_2d) == [
        "CONV_2D#0",
        "DEPTHWISE_CONV_2D#1",
        "CONV_2D#2",
        "MEAN#3",
        "FULLY_CONNECTED#4",
    ]
    # The converter has no int8 CONV_3D: it stays float between DEQUANTIZE / QUANTIZE.
    assert [label.split("#")[0] for label in float_ops(int8_conv3d)] == ["CONV_3D"]
