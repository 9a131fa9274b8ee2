"""Options that cannot work (split, patch, names, --resume) through ``tfhsi train``.

Each fails before training with one line naming the option and the fix, leaves no run
directory behind (so the corrected command can reuse ``--out``) and the earlier run intact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_check import assert_nothing_lost, assert_one_error, tfhsi
from conftest import TINY
from simulate import SHAPE, write_ksc

SYNTHETIC = ("--dataset", "synthetic:12x12x6x3", "--epochs", "1")


def _masks(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty_train.npy"
    np.save(empty, np.zeros(SHAPE[:2], np.uint8))
    wrong = tmp_path / "wrong_shape.npy"
    np.save(wrong, np.ones((5, 7), np.uint8))
    return {"empty": empty, "wrong": wrong}


CASES = {
    "class_smaller_than_split": (
        ("--split", "random:50"),
        ("random:50 needs at least 51 labelled pixels per class", "class 'Scrub'", "smaller N"),
    ),
    "patch_larger_than_scene": (
        ("--patch", "25"),
        ("patch 25 is larger than the scene 16x16", "at most 15"),
    ),
    "empty_split_mask": (
        ("--split", "mask:{empty}"),
        ("empty_train.npy", "selects no labelled pixel"),
    ),
    "mask_of_another_shape": (
        ("--split", "mask:{wrong}"),
        ("wrong_shape.npy", "shape (5, 7)", "(16, 16)", "same scene"),
    ),
    "malformed_split_spec": (
        ("--split", "randm:0.1"),
        ("randm:0.1", "unknown kind 'randm'", "random:0.1"),
    ),
    "split_fraction_out_of_range": (
        ("--split", "random:1.5"),
        ("random:1.5", "strictly between 0 and 1"),
    ),
    "unknown_model": (("--model", "hybridsm"), ("unknown model 'hybridsm'", "'hybridsn'")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_option_gives_one_line_and_no_half_made_run(
    case: str, tmp_path: Path, runs: Path, earlier
) -> None:
    data = tmp_path / "data"
    write_ksc(data)
    masks = _masks(tmp_path)
    options, fragments = CASES[case]
    options = tuple(o.format(**masks) for o in options)
    out = runs / "new"
    base = {"--model": "student2d", "--patch": "5", "--split": "random:0.2"}
    base.update(dict(zip(options[::2], options[1::2], strict=True)))
    args = [x for pair in base.items() for x in pair]
    result = tfhsi(
        "train", "--dataset", "ksc", *args, "--epochs", "1", "--out", out, "--data-dir", data
    )
    assert_one_error(result, *fragments)
    assert_nothing_lost(earlier, touched=[data, runs], absent=[out])


def test_unknown_scene_suggests_the_close_name(runs: Path, earlier) -> None:
    result = tfhsi("train", "--dataset", "indian_pine", "--model", "student2d", "--out", runs / "x")
    assert_one_error(result, "unknown scene 'indian_pine'", "Did you mean 'indian_pines'")
    assert_nothing_lost(earlier, touched=[runs], absent=[runs / "x"])


def test_malformed_synthetic_name_shows_the_accepted_forms(runs: Path, earlier) -> None:
    result = tfhsi(
        "train", "--dataset", "synthetic:12x12", "--model", "student2d", "--out", runs / "x"
    )
    assert_one_error(result, "'synthetic:12x12'", "synthetic:HxWxB")
    assert_nothing_lost(earlier, touched=[runs], absent=[runs / "x"])


def test_training_again_into_an_earlier_run_is_refused_without_resume(runs: Path, earlier) -> None:
    folder, _ = earlier
    result = tfhsi("train", *TINY, "--epochs", "1", "--out", folder)
    assert_one_error(result, f"{folder} already holds a run", "--resume")
    assert_nothing_lost(earlier, touched=[runs])


def test_resume_with_other_options_is_refused_and_keeps_the_run(runs: Path, earlier) -> None:
    folder, _ = earlier
    result = tfhsi("train", *TINY, "--epochs", "2", "--out", folder, "--resume")
    assert_one_error(result, f"--resume in {folder}", "options differ", "same options")
    assert_nothing_lost(earlier, touched=[runs])


def test_new_run_that_fails_leaves_out_reusable_for_the_fixed_command(
    tmp_path: Path, runs: Path, earlier
) -> None:
    """After a failure before training, the corrected command succeeds with the same --out."""
    out = runs / "new"
    failed = tfhsi("train", *SYNTHETIC, "--model", "student2d", "--patch", "13", "--out", out)
    assert_one_error(failed, "patch 13 is larger than the scene 12x12")
    fixed = tfhsi("train", *SYNTHETIC, "--model", "student2d", "--patch", "5", "--out", out)
    assert fixed.exit_code == 0, fixed.output
    assert (out / "metrics.json").is_file()
    assert_nothing_lost(earlier, touched=[runs])
