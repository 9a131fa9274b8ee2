"""``tfhsi audit`` and ``tfhsi export c-array`` through typer's test runner."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from tfhsi.cli import export as export_cli
from tfhsi.errors import DataFormatError
from tfhsi.export import write_tflite

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("audit")(export_cli.audit)
    app.add_typer(export_cli.app, name="export")
    return app


def test_audit_json_output_parses_and_flags_conv3d(converted, tmp_path):
    path = tmp_path / "s3d.tflite"
    path.write_bytes(converted("student3d", "int8-mixed"))
    result = runner.invoke(_app(), ["audit", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["is_full_int8"] is False
    assert report["verdicts"]["tflm"]["ok"] is False
    assert any("CONV_3D" in island["description"] for island in report["float_islands"])


def test_audit_table_shows_islands_and_verdicts(converted, tmp_path):
    path = tmp_path / "s3d.tflite"
    path.write_bytes(converted("student3d", "int8-mixed"))
    result = runner.invoke(_app(), ["audit", str(path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "float island" in result.stdout and "CONV_3D" in result.stdout
    assert "the Edge TPU compiler was not run" in result.stdout


def test_audit_require_exits_nonzero_when_the_target_is_not_met(converted, tmp_path):
    path = tmp_path / "s3d.tflite"
    path.write_bytes(converted("student3d", "int8-mixed"))
    assert runner.invoke(_app(), ["audit", str(path), "--require", "tflm"]).exit_code == 1
    ok = tmp_path / "s2d.tflite"
    ok.write_bytes(converted("student2d", "int8"))
    assert runner.invoke(_app(), ["audit", str(ok), "--require", "tflm", "--json"]).exit_code == 0


def test_audit_of_a_non_tflite_file_raises_the_user_error(tmp_path):
    path = tmp_path / "x.tflite"
    path.write_text("hello")
    result = runner.invoke(_app(), ["audit", str(path)])
    assert isinstance(result.exception, DataFormatError)


def test_c_array_command_uses_the_labels_sidecar(converted, tmp_path):
    path = write_tflite(
        converted("student2d", "int8"), tmp_path / "m.tflite", class_names=list("abcd")
    )
    result = runner.invoke(_app(), ["export", "c-array", str(path), "--name", "hsi"])
    assert result.exit_code == 0, result.output
    source = (tmp_path / "m_data.cc").read_text()
    assert "alignas(16) const unsigned char hsi[]" in source and "hsi_num_labels = 4;" in source
