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
from cli_check import assert_nothing_lost, assert_one_error, tfhsi
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
