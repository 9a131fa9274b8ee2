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


def invoke(*args: str, columns: int = 120):
    return runner.invoke(app, list(args), env={"COLUMNS": str(columns)})


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


def _scene_yaml(folder: Path, *, cube: bool = True) -> tuple[Path, dict[str, str]]:
    """A tiny scene YAML over an .npy cube and TIFF labels with ids 0, 3 and 8."""
    import hashlib

    import numpy as np
    import tifffile
    import yaml

    rng = np.random.default_rng(4)
    labels = rng.choice(np.array([0, 3, 8], np.uint8), size=(9, 7), p=[0.2, 0.3, 0.5])
    if cube:
        np.save(folder / "cube.npy", rng.integers(0, 500, size=(9, 7, 4)).astype(np.uint16))
    tifffile.imwrite(folder / "gt.tif", labels)
    path = folder / "scene.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "plot_7",
                "cube": {"path": "cube.npy"},
                "labels": {"path": "gt.tif"},
                "class_names": {3: "Barley", 8: "Oilseed rape"},
                "description": "test plot",
            }
        )
    )
    counts = {"Barley": int((labels == 3).sum()), "Oilseed rape": int((labels == 8).sum())}
    sums = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    return path, {**{k: str(v) for k, v in counts.items()}, **sums}


def test_info_scene_yaml_prints_shape_classes_with_counts_and_sha256(tmp_path: Path) -> None:
    path, facts = _scene_yaml(tmp_path)
    result = invoke("data", "info", str(path), columns=250)
    assert result.exit_code == 0, result.output
    assert "plot_7" in result.output and "test plot" in result.output
    assert "cube: 9×7×4 uint16 (NPY)" in result.output
    labelled = int(facts["Barley"]) + int(facts["Oilseed rape"])
    assert f"2 classes, {labelled} labelled pixels (9×7)" in result.output
    rows = [line for line in result.output.splitlines() if "Barley" in line or "rape" in line]
    assert [[cell.strip() for cell in line.split("│")[1:5]] for line in rows] == [
        ["1", "3", "Barley", facts["Barley"]],
        ["2", "8", "Oilseed rape", facts["Oilseed rape"]],
    ]
    for name in ("scene.yaml", "cube.npy", "gt.tif"):
        assert facts[name] in result.output


def test_info_scene_yaml_without_its_cube_counts_classes_and_says_where_the_cube_goes(
    tmp_path: Path,
) -> None:
    path, facts = _scene_yaml(tmp_path, cube=False)
    result = invoke("data", "info", str(path), columns=250)
    assert result.exit_code == 0, result.output
    assert "cube.npy not found; put it there or fix `cube:` in scene.yaml" in result.output
    assert "Oilseed rape" in result.output and facts["gt.tif"] in result.output


def test_verify_scene_yaml_reads_every_file_and_lists_its_sha256(tmp_path: Path) -> None:
    path, facts = _scene_yaml(tmp_path)
    result = invoke("data", "verify", str(path), columns=250)
    assert result.exit_code == 0, result.output
    for name in ("scene.yaml", "cube.npy", "gt.tif"):
        assert f"plot_7: {name} sha256 {facts[name]}" in result.output


def test_download_of_a_scene_yaml_says_there_is_nothing_to_download(tmp_path: Path) -> None:
    path, _ = _scene_yaml(tmp_path)
    result = invoke("data", "download", str(path))
    assert result.exit_code == 2
    assert "there is nothing to download" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.npy", "gt.tif", "scene.yaml"]


def test_split_of_a_scene_yaml_counts_its_classes(tmp_path: Path) -> None:
    path, facts = _scene_yaml(tmp_path)
    result = invoke("data", "split", str(path), "--split", "random:0.5", "--patch", "1")
    assert result.exit_code == 0, result.output
    barley = next(line for line in result.output.splitlines() if "Barley" in line)
    assert barley.split("│")[2].strip() == facts["Barley"]


@pytest.mark.real_data
def test_info_salinas_with_labels_only_prints_16_classes_and_how_to_get_the_cube(
    real_data_dir: Path,
) -> None:
    result = invoke("data", "info", "salinas", "--data-dir", str(real_data_dir))
    assert result.exit_code == 0, result.output
    assert "16 classes, 54,129 labelled pixels (512×217)" in result.output
    assert "Brocoli_green_weeds_1" in result.output and "Vinyard_vertical_trellis" in result.output
    assert "cube: not present" in result.output
    assert "tfhsi data download salinas" in result.output
    assert "5ec1c0d22f56d18ecd336f8e35735863c0f160682e04e0c18ef3f89a3334d87d" in result.output


@pytest.mark.real_data
def test_info_salinas_a_shows_the_salinas_ids_its_labels_keep(real_data_dir: Path) -> None:
    result = invoke("data", "info", "salinas_a", "--data-dir", str(real_data_dir))
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "Corn_senesced" in line)
    assert [cell.strip() for cell in row.split("│")[1:5]] == [
        "2",
        "10",
        "Corn_senesced_green_weeds",
        "1,343",
    ]
