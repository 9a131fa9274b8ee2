"""A file written as ``int8`` is int8 end to end: ``export_tflite`` (the one path of the CLI,
the runner and the Python API) lowers Conv3D for it and lets the audit decide."""

from __future__ import annotations

from pathlib import Path

import pytest
from export_samples import BANDS_2D, BANDS_3D, CLASSES

from tfhsi.errors import UnsupportedError
from tfhsi.export import audit
from tfhsi.export.presets import PRESET_NAMES, PRESETS, Preset, export_jobs


@pytest.fixture(scope="module")
def prepared():
    """Tiny synthetic scenes with the bands of the 2-D and the 3-D sample models."""
    from tfhsi.data.datasets import open_dataset
    from tfhsi.data.prepared import prepare
    from tfhsi.data.splits import make_split

    scenes = {}
    for bands in (BANDS_2D, BANDS_3D):
        scene = open_dataset(f"synthetic:14x14x{bands}x{CLASSES}")
        scenes[bands] = prepare(scene, make_split(scene.labels, "random:0.5", seed=0, patch_size=5))
    return scenes


def _export(converted, prepared, name: str, preset: str, folder: Path, **kw):
    from tfhsi.deployment import export_tflite

    bands = BANDS_3D if name == "student3d" else BANDS_2D
    model = converted.model(name)
    return export_tflite(model, preset, folder / f"{preset}.tflite", prepared=prepared[bands], **kw)


def test_preset_table_has_int8_mixed_and_lowers_conv3d_only_for_integer_presets() -> None:
    assert PRESET_NAMES == (
        "fp32", "fp16", "dynamic", "int8", "int8-mixed", "int16x8", "w4a8", "auto-mixed",
    )  # fmt: skip
    assert Preset.INT8_MIXED.value == "int8-mixed" and Preset.parse("INT8-Mixed").spec.same_as
    assert export_jobs(list(PRESET_NAMES), three_d=True) == [
        ("fp32", False), ("fp16", False), ("dynamic", False),
        ("int8", True), ("int8-mixed", False), ("int16x8", True), ("w4a8", True),
        ("auto-mixed", True),
    ]  # fmt: skip
    assert export_jobs(["int8", "int16x8"], three_d=False) == [("int8", False), ("int16x8", False)]
    assert {n: s.promise for n, s in PRESETS.items() if s.promise} == {
        "int8": "int8",
        "int16x8": "int16x8",
        "w4a8": "w4a8",
        "auto-mixed": "w4/8a8",
    }


def test_int8_of_a_conv3d_model_is_int8_end_to_end_and_int8_mixed_keeps_conv3d_float(
    converted, prepared, tmp_path: Path
) -> None:
    int8 = _export(converted, prepared, "student3d", "int8", tmp_path)
    report = audit(int8.path)
    assert int8.lowered and int8.layout == "2d" and int8.precision == "int8"
    assert report.is_full_int8 and report.verdicts["tflm"].ok
    assert "CONV_3D" not in report.op_counts and "CONV_2D" in report.op_counts

    mixed = _export(converted, prepared, "student3d", "int8-mixed", tmp_path)
    report = audit(mixed.path)
    assert not mixed.lowered and mixed.layout == "3d" and mixed.precision == "mixed"
    assert not report.is_full_int8 and not report.verdicts["tflm"].ok
    assert {op.name for op in report.float_ops} == {"CONV_3D"}


def test_int16x8_of_a_conv3d_model_is_lowered_and_int16x8_end_to_end(
    converted, prepared, tmp_path: Path
) -> None:
    exported = _export(converted, prepared, "student3d", "int16x8", tmp_path)
    assert exported.lowered and exported.precision == "int16x8"
    assert audit(exported.path).is_full_int8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["int16x8.labels.txt", "int16x8.tflite"]


def test_int8_export_with_an_op_without_int8_kernel_fails_naming_it_and_writes_nothing(
    converted, prepared, tmp_path: Path
) -> None:
    # The converter keeps the ELU in float32 between DEQUANTIZE and QUANTIZE (no int8 kernel).
    with pytest.raises(UnsupportedError, match=r"not int8 end to end: op\(s\) ELU .*int8-mixed"):
        _export(converted, prepared, "planted", "int8", tmp_path)
    assert list(tmp_path.iterdir()) == []
    mixed = _export(converted, prepared, "planted", "int8-mixed", tmp_path)
    assert mixed.precision == "mixed"
    assert {op.name for op in audit(mixed.path).float_ops} == {"ELU"}


def test_int8_of_a_conv3d_model_without_lowering_fails_naming_conv3d(
    converted, prepared, tmp_path: Path
) -> None:
    with pytest.raises(UnsupportedError, match=r"CONV_3D compute in float.*allow Conv3D lowering"):
        _export(converted, prepared, "student3d", "int8", tmp_path, lower=False)
    assert list(tmp_path.iterdir()) == []


def test_int8_mixed_of_a_model_the_converter_makes_int8_is_refused_as_the_int8_file(
    converted, prepared, tmp_path: Path
) -> None:
    from tfhsi.deployment import DuplicateExportError

    with pytest.raises(DuplicateExportError, match="it is the int8 file") as raised:
        _export(converted, prepared, "student2d", "int8-mixed", tmp_path)
    assert raised.value.same_as == "int8" and list(tmp_path.iterdir()) == []


def test_export_presets_command_lists_what_each_preset_must_be() -> None:
    import typer
    from typer.testing import CliRunner

    from tfhsi.cli import export as export_cli

    app = typer.Typer()
    app.add_typer(export_cli.app, name="export")
    result = CliRunner().invoke(app, ["export", "presets"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert "must be int8 end to end" in lines["int8"] and "lowered to Conv2D" in lines["int8"]
    assert (
        "refused when it is the int8 file" in lines["int8-mixed"] and "kept" in lines["int8-mixed"]
    )
    assert "lowered to Conv2D" in lines["int16x8"] and "kept" in lines["fp32"]


@pytest.mark.slow
def test_cli_export_tflite_lowers_conv3d_for_int8_and_refuses_it_without_lowering(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from tfhsi.cli import app

    def invoke(*args: str):
        return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})

    run = tmp_path / "student3d"
    result = invoke(
        "train", "--dataset", "synthetic:14x14x24x3", "--model", "student3d", "--patch", "5",
        "--epochs", "1", "--out", str(run),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = invoke("export", "tflite", str(run), "--preset", "int8")
    assert result.exit_code == 0, result.output
    assert "precision int8" in result.output and "Conv3D lowered" in result.output
    assert audit(run / "int8.tflite").is_full_int8
    refused = tmp_path / "refused.tflite"
    result = invoke(
        "export", "tflite", str(run), "--preset", "int8", "--no-lower", "-o", str(refused)
    )  # fmt: skip
    assert result.exit_code != 0 and "CONV_3D" in result.output
    assert not refused.exists()
