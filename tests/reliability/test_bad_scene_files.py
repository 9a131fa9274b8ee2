"""Bad scene files through ``tfhsi train``: one line naming the file and the fix, nothing lost.

Every case builds a data directory of fake KSC files (the real names and keys, no
published checksum), spoils one thing, runs ``tfhsi train --dataset ksc`` with ``--out``
beside an earlier run, and checks: exit 2, one ``error:`` line with the file and the fix,
the earlier run byte-identical, no ``.part`` file, and no half-made run directory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from cli_check import assert_nothing_lost, assert_one_error, snapshot, tfhsi
from fake_scenes import write_fake_scene, write_mat
from simulate import SHAPE, ksc_arrays, write_ksc

TRAIN = ("--model", "student2d", "--patch", "5", "--epochs", "1")


def _truncate(path: Path, size: int = 300) -> None:
    path.write_bytes(path.read_bytes()[:size])


def truncated_cube(root: Path) -> None:
    cube, _ = write_ksc(root)
    _truncate(cube)


def truncated_v73_cube(root: Path) -> None:
    cube, _ = write_ksc(root)
    write_mat(cube, "KSC", ksc_arrays()[0], v73=True)
    _truncate(cube, 2048)


def text_file_as_cube(root: Path) -> None:
    cube, _ = write_ksc(root)
    cube.write_text("this is not a MAT file\n" * 20)


def empty_cube_file(root: Path) -> None:
    cube, _ = write_ksc(root)
    cube.write_bytes(b"")


def wrong_keys(root: Path) -> None:
    cube, _ = write_ksc(root)
    scipy.io.savemat(cube, {"a": np.zeros(SHAPE), "b": np.ones(SHAPE)})


def cube_with_two_dimensions(root: Path) -> None:
    write_ksc(root, cube=np.zeros(SHAPE[:2], np.uint16))


def cube_label_shape_mismatch(root: Path) -> None:
    write_ksc(root, labels=ksc_arrays()[1][:8])


def nan_and_inf_bands(root: Path) -> None:
    cube = ksc_arrays()[0].astype(np.float32)
    cube[3, 4, 2] = np.nan
    cube[0, 0, 5] = np.inf
    write_ksc(root, cube=cube)


def labels_beyond_class_list(root: Path) -> None:
    labels = ksc_arrays()[1].copy()
    labels[0, 0] = 99
    write_ksc(root, labels=labels)


def fractional_labels(root: Path) -> None:
    labels = ksc_arrays()[1].astype(np.float64)
    labels[1, 1] = 2.5
    write_ksc(root, labels=labels)


def negative_labels(root: Path) -> None:
    labels = ksc_arrays()[1].astype(np.int16)
    labels[2, 2] = -1
    write_ksc(root, labels=labels)


def missing_cube(root: Path) -> None:
    cube, _ = write_ksc(root)
    cube.unlink()


def no_labelled_pixel(root: Path) -> None:
    write_ksc(root, labels=np.zeros(SHAPE[:2], np.uint8))


CASES: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "truncated_cube": (truncated_cube, ("KSC.mat", "truncated", "tfhsi data download ksc --force")),
    "truncated_v73_cube": (truncated_v73_cube, ("KSC.mat", "truncated", "tfhsi data download ksc")),
    "text_file_as_cube": (text_file_as_cube, ("KSC.mat", "not a valid MAT file", "download ksc")),
    "empty_cube_file": (empty_cube_file, ("KSC.mat", "not a valid MAT file", "download ksc")),
    "wrong_keys": (
        wrong_keys,
        ("KSC.mat", "no variable 'KSC'", "a (3-D), b (3-D)", "rename the variable"),
    ),
    "cube_with_two_dimensions": (
        cube_with_two_dimensions,
        ("KSC.mat", "2 dimensions, expected 3", "tfhsi data download ksc"),
    ),
    "cube_label_shape_mismatch": (
        cube_label_shape_mismatch,
        ("KSC.mat is 16×16×6", "KSC_gt.mat are 8×16", "same scene"),
    ),
    "nan_and_inf_bands": (
        nan_and_inf_bands,
        ("KSC.mat", "NaN/Inf", "(0-based: 2, 5)", "Remove those bands or fill"),
    ),
    "labels_beyond_class_list": (
        labels_beyond_class_list,
        ("KSC_gt.mat", "[99]", "not classes of ksc", "own ground-truth file"),
    ),
    "fractional_labels": (
        fractional_labels,
        ("KSC_gt.mat", "whole numbers", "own ground-truth file"),
    ),
    "negative_labels": (negative_labels, ("KSC_gt.mat", "negative values", "classes ≥ 1")),
    "missing_cube": (missing_cube, ("KSC.mat not found", "tfhsi data download ksc --data-dir")),
    "no_labelled_pixel": (no_labelled_pixel, ("no labelled pixel", "check the ground truth")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_scene_file_gives_one_line_and_loses_nothing(
    case: str, tmp_path: Path, runs: Path, earlier
) -> None:
    spoil, fragments = CASES[case]
    data = tmp_path / "data"
    spoil(data)
    out = runs / "new"
    result = tfhsi("train", "--dataset", "ksc", *TRAIN, "--out", out, "--data-dir", data)
    assert_one_error(result, *fragments)
    assert_nothing_lost(earlier, touched=[data, runs], absent=[out])


def test_checksum_mismatch_names_both_sums_and_the_download_command(
    tmp_path: Path, runs: Path, earlier
) -> None:
    data = tmp_path / "data"
    write_fake_scene("indian_pines", data)  # not the published bytes
    out = runs / "new"
    result = tfhsi("train", "--dataset", "indian_pines", *TRAIN, "--out", out, "--data-dir", data)
    assert_one_error(
        result,
        "Indian_pines_corrected.mat has sha256",
        "expected ec2f8808",
        "tfhsi data download indian_pines --force",
    )
    assert_nothing_lost(earlier, touched=[data, runs], absent=[out])


def test_zero_variance_bands_are_a_handled_case_named_in_the_output_and_run_record(
    tmp_path: Path, runs: Path, earlier
) -> None:
    """Constant bands are not an error: the transform maps them to 0; the run says so."""
    cube = ksc_arrays()[0].copy()
    cube[:, :, 1] = 7
    cube[:, :, 4] = 0
    data = tmp_path / "data"
    write_ksc(data, cube=cube)
    out = runs / "new"
    result = tfhsi("train", "--dataset", "ksc", *TRAIN, "--out", out, "--data-dir", data)
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "2 band(s)" in notes[0] and "(0-based: 1, 4)" in notes[0], notes
    record = json.loads((out / "run.json").read_text())
    assert record["zero_variance_bands"] == [1, 4]
    assert any("(0-based: 1, 4)" in note for note in record["notes"])
    assert_nothing_lost(earlier, touched=[data, runs])


# --- Scene YAMLs over the user's own files -------------------------------------------------
# Each case writes a good scene (ENVI BIL cube, TIFF labels, scene.yaml), spoils one thing,
# then opens it; the folder's files are byte-identical afterwards (nothing written).

_HEADER = (
    "ENVI\nsamples = {w}\nlines = {h}\nbands = {b}\nheader offset = 0\n"
    "file type = ENVI Standard\ndata type = 2\ninterleave = bil\nbyte order = 0\n"
)


def _write_scene(folder: Path, *, cube: np.ndarray | None = None, **fields: object) -> Path:
    import tifffile
    import yaml

    cube_array, labels = ksc_arrays()
    cube_array = cube_array.astype(np.int16) if cube is None else cube
    folder.mkdir(parents=True, exist_ok=True)
    h, w, b = cube_array.shape
    (folder / "field.hdr").write_text(_HEADER.format(h=h, w=w, b=b))
    (folder / "field.img").write_bytes(
        np.ascontiguousarray(cube_array.transpose(0, 2, 1)).tobytes()
    )
    tifffile.imwrite(folder / "field_gt.tif", labels)
    names = [f"class {i}" for i in range(1, int(labels.max()) + 1)]
    data = {"name": "field", "cube": {"path": "field.hdr"}, "labels": {"path": "field_gt.tif"}}
    data |= {"class_names": names, **fields}
    (folder / "scene.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder / "scene.yaml"


def _edit_header(folder: Path, old: str, new: str) -> None:
    header = folder / "field.hdr"
    header.write_text(header.read_text().replace(old, new))


def _edit_yaml(folder: Path, old: str, new: str) -> None:
    path = folder / "scene.yaml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))


def yaml_cube_missing(folder: Path) -> None:
    _write_scene(folder)
    (folder / "field.img").unlink()
    (folder / "field.hdr").unlink()


def yaml_labels_missing(folder: Path) -> None:
    _write_scene(folder)
    (folder / "field_gt.tif").unlink()


def yaml_envi_data_missing(folder: Path) -> None:
    _write_scene(folder)
    (folder / "field.img").unlink()


def yaml_header_not_envi(folder: Path) -> None:
    _write_scene(folder)
    (folder / "field.hdr").write_text("samples = 16\nlines = 16\n")


def yaml_header_without_lines(folder: Path) -> None:
    _write_scene(folder)
    _edit_header(folder, "lines = 16\n", "")


def yaml_header_bad_interleave(folder: Path) -> None:
    _write_scene(folder)
    _edit_header(folder, "interleave = bil", "interleave = bilx")


def yaml_header_complex_type(folder: Path) -> None:
    _write_scene(folder)
    _edit_header(folder, "data type = 2", "data type = 6")


def yaml_header_bad_byte_order(folder: Path) -> None:
    _write_scene(folder)
    _edit_header(folder, "byte order = 0", "byte order = 2")


def yaml_envi_truncated(folder: Path) -> None:
    _write_scene(folder)
    _truncate(folder / "field.img", 100)


def yaml_shape_mismatch(folder: Path) -> None:
    _write_scene(folder, cube=ksc_arrays()[0][:8].astype(np.int16))


def yaml_label_without_class_name(folder: Path) -> None:
    _write_scene(folder)
    _edit_yaml(folder, "- class 13\n", "")


def yaml_nan_in_cube(folder: Path) -> None:
    cube = ksc_arrays()[0].astype(np.float32)
    cube[1, 2, 3] = np.nan
    _write_scene(folder, cube=cube)
    _edit_header(folder, "data type = 2", "data type = 4")


def yaml_cube_too_large(folder: Path) -> None:
    _write_scene(folder)
    _edit_header(
        folder,
        "samples = 16\nlines = 16\nbands = 6",
        "samples = 16\nlines = 16\nbands = 60000000000",
    )


def yaml_unknown_key(folder: Path) -> None:
    _write_scene(folder)
    _edit_yaml(folder, "class_names:", "clas_names:")


def yaml_unknown_file_key(folder: Path) -> None:
    _write_scene(folder)
    _edit_yaml(folder, "path: field.hdr", "file: field.hdr")


def yaml_syntax_error(folder: Path) -> None:
    _write_scene(folder)
    _edit_yaml(folder, "name: field", "name: [field")


def yaml_ignore_is_a_class(folder: Path) -> None:
    _write_scene(folder, ignore=3)


def yaml_unknown_format(folder: Path) -> None:
    _write_scene(folder)
    _edit_yaml(folder, "path: field_gt.tif", "path: field_gt.png")


def yaml_registered_name(folder: Path) -> None:
    _write_scene(folder, name="ksc")


def yaml_npz_without_key(folder: Path) -> None:
    _write_scene(folder)
    cube, labels = ksc_arrays()
    np.savez(folder / "field.npz", cube=cube, labels=labels)
    _edit_yaml(folder, "path: field.hdr", "path: field.npz")


def yaml_mat_wrong_key(folder: Path) -> None:
    _write_scene(folder)
    write_mat(folder / "field.mat", "radiance", ksc_arrays()[0])
    _edit_yaml(folder, "path: field.hdr", "path: field.mat\n  key: reflectance")


def yaml_truncated_tiff_labels(folder: Path) -> None:
    _write_scene(folder)
    _truncate(folder / "field_gt.tif", 150)


YAML_CASES: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "cube_missing": (yaml_cube_missing, ("field.hdr not found", "fix `cube:` in scene.yaml")),
    "labels_missing": (
        yaml_labels_missing,
        ("field_gt.tif not found", "fix `labels:` in scene.yaml", "read from its folder"),
    ),
    "envi_data_missing": (
        yaml_envi_data_missing,
        ("field.hdr: ENVI data file not found", "give the data file as `path:`"),
    ),
    "header_not_envi": (
        yaml_header_not_envi,
        ("field.hdr: invalid ENVI header", "must start with ENVI"),
    ),
    "header_without_lines": (
        yaml_header_without_lines,
        ("field.hdr: invalid ENVI header", "no `lines = ...` line; add it"),
    ),
    "header_bad_interleave": (
        yaml_header_bad_interleave,
        ("field.hdr: invalid ENVI header", "`interleave = bilx`", "use bsq, bil or bip"),
    ),
    "header_complex_type": (
        yaml_header_complex_type,
        ("field.hdr: invalid ENVI header", "`data type = 6` is complex", "real numbers"),
    ),
    "header_bad_byte_order": (
        yaml_header_bad_byte_order,
        ("field.hdr", "`byte order = 2`", "0 (little-endian) or 1 (big-endian)"),
    ),
    "envi_truncated": (
        yaml_envi_truncated,
        ("field.img: 100 bytes", "field.hdr describes 3,072", "truncated or the header is wrong"),
    ),
    "shape_mismatch": (
        yaml_shape_mismatch,
        ("scene.yaml: cube", "field.img is 8×16×6", "field_gt.tif are 16×16", "same scene"),
    ),
    "label_without_class_name": (
        yaml_label_without_class_name,
        ("field_gt.tif: label id(s) 13 have no class name in scene.yaml", "`ignore:`"),
    ),
    "nan_in_cube": (
        yaml_nan_in_cube,
        ("field.img: cube has NaN/Inf values in 1 band(s) (0-based: 3)", "fill the values"),
    ),
    "cube_too_large": (
        yaml_cube_too_large,
        ("field.img", "16×16×60000000000 int16", "TiB in memory", "available", "Crop the scene"),
    ),
    "unknown_key": (
        yaml_unknown_key,
        ("scene.yaml: unknown key 'clas_names'", "did you mean 'class_names'?"),
    ),
    "unknown_file_key": (
        yaml_unknown_file_key,
        ("scene.yaml: unknown key 'cube.file'", "allowed keys: path, key"),
    ),
    "syntax_error": (yaml_syntax_error, ("scene.yaml: not valid YAML at line", "fix the syntax")),
    "ignore_is_a_class": (
        yaml_ignore_is_a_class,
        ("scene.yaml: label id(s) [3] are both classes and `ignore:`",),
    ),
    "unknown_format": (
        yaml_unknown_format,
        (
            "field_gt.png: unknown file format '.png'",
            "use .mat, .npy, .npz, .tif/.tiff or ENVI",
            "fix `labels:` in scene.yaml",
        ),
    ),
    "npz_without_key": (
        yaml_npz_without_key,
        ("field.npz: holds 2 arrays (cube, labels); say which with `key:`", "Fix `cube:`"),
    ),
    "mat_wrong_key": (
        yaml_mat_wrong_key,
        ("field.mat: no variable 'reflectance' (variables found: radiance (3-D))", "Fix `cube:`"),
    ),
    "truncated_tiff_labels": (
        yaml_truncated_tiff_labels,
        ("cannot read", "field_gt.tif: not a valid TIFF file or truncated", "Fix `labels:`"),
    ),
    "registered_name": (
        yaml_registered_name,
        ("scene.yaml: name: 'ksc' is taken by a registered scene", "choose another name"),
    ),
}


@pytest.mark.parametrize("case", list(YAML_CASES))
def test_bad_scene_yaml_gives_one_line_and_writes_nothing(case: str, tmp_path: Path) -> None:
    spoil, fragments = YAML_CASES[case]
    folder = tmp_path / "scene"
    spoil(folder)
    before = snapshot(folder)
    result = tfhsi("data", "verify", folder / "scene.yaml")  # reads and checks every file
    assert_one_error(result, *fragments)
    assert snapshot(folder) == before  # same files, same bytes: nothing written


@pytest.mark.parametrize("case", ["shape_mismatch", "label_without_class_name", "cube_missing"])
def test_bad_scene_yaml_stops_train_before_anything_is_made(
    case: str, tmp_path: Path, runs: Path, earlier
) -> None:
    spoil, fragments = YAML_CASES[case]
    folder = tmp_path / "scene"
    spoil(folder)
    before = snapshot(folder)
    out = runs / "new"
    result = tfhsi("train", "--dataset", folder / "scene.yaml", *TRAIN, "--out", out)
    assert_one_error(result, *fragments)
    assert snapshot(folder) == before
    assert_nothing_lost(earlier, touched=[folder, runs], absent=[out])


def test_missing_scene_yaml_names_the_path_and_the_folder_it_was_read_from(
    tmp_path: Path,
) -> None:
    result = tfhsi("data", "info", tmp_path / "nowhere.yaml")
    assert_one_error(result, "scene file", "nowhere.yaml not found", "check the path")
    assert list(tmp_path.iterdir()) == []
