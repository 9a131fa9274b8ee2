"""The data commands as a user runs them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tfhsi.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "120"})


def test_help_does_not_import_tensorflow() -> None:
    code = "import sys; from tfhsi.cli import app; assert 'tensorflow' not in sys.modules, 'TF imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_scene_exits_2_with_suggestion() -> None:
    result = invoke("data", "info", "pavia")
    assert result.exit_code == 2
    assert "unknown scene 'pavia'" in result.output and "pavia_u" in result.output


def test_list_shows_every_scene(fake_data_dir: Path) -> None:
    result = invoke("data", "list", "--data-dir", str(fake_data_dir))
    assert result.exit_code == 0, result.output
    for name in ("indian_pines", "pavia_u", "pavia_c", "salinas", "salinas_a", "ksc", "botswana"):
        assert name in result.output


def test_verify_fake_files_fails_on_checksum(fake_data_dir: Path) -> None:
    result = invoke("data", "verify", "indian_pines", "--data-dir", str(fake_data_dir))
    assert result.exit_code == 1
    assert "mismatch" in result.output


def test_verify_named_scene_with_missing_files_fails(tmp_path: Path) -> None:
    result = invoke("data", "verify", "ksc", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "KSC.mat not found" in result.output


@pytest.mark.real_data
def test_info_indian_pines_prints_shape_and_16_classes(real_data_dir: Path) -> None:
    result = invoke("data", "info", "indian_pines", "--data-dir", str(real_data_dir))
    assert result.exit_code == 0, result.output
    assert "145×145×200 uint16" in result.output
    assert "Stone-Steel-Towers" in result.output and "Alfalfa" in result.output
    assert "10,249 labelled pixels" in result.output


@pytest.mark.real_data
def test_info_pavia_u_with_labels_only_says_how_to_get_cube(real_data_dir: Path) -> None:
    result = invoke("data", "info", "pavia_u", "--data-dir", str(real_data_dir))
    assert result.exit_code == 0, result.output
    assert "42,776 labelled pixels" in result.output and "Shadows" in result.output
    assert "tfhsi data download pavia_u" in result.output
    assert "28447fa87f7a5797845e9a189c0da85e23b1d06a4ba7361e5ff44efbf834d2fb" in result.output


@pytest.mark.real_data
def test_verify_passes_on_real_files_and_fails_on_a_flipped_byte(
    real_data_dir: Path, tmp_path: Path
) -> None:
    assert invoke("data", "verify", "indian_pines", "--data-dir", str(real_data_dir)).exit_code == 0
    copy = tmp_path / "indian_pines"
    shutil.copytree(real_data_dir / "indian_pines", copy)
    target = copy / "Indian_pines_gt.mat"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    result = invoke("data", "verify", "indian_pines", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert (
        "Indian_pines_gt.mat has sha256" in result.output and "expected 65c4687a" in result.output
    )
