"""Malformed and hostile recipes through ``tfhsi recipe run``: refused before anything runs.

YAML is parsed with the safe loader only (no tags that build Python objects), after a scan
that refuses aliases (billion laughs), deep nesting and files over 1 MiB. Each case exits 2
with one line naming the recipe file (and field) and the fix, creates no run directory and
leaves the earlier run untouched.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_check import assert_nothing_lost, assert_one_error, tfhsi

GOOD = """\
name: tiny
dataset: synthetic:12x12x6x3
teacher: {model: student2d, patch: 5, train: {epochs: 1}}
variants: []
"""

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)

CASES: dict[str, tuple[str | bytes, tuple[str, ...]]] = {
    "yaml_syntax_error": ("name: x\nteacher: [1, 2\n", ("line 3", "invalid YAML")),
    "python_tag_runs_no_code": (
        "name: !!python/object/apply:os.system ['touch {marker}']\n",
        ("invalid YAML", "python/object/apply"),
    ),
    "alias_bomb": (LAUGHS, ("YAML aliases (*name) are not allowed", "write values out")),
    "deep_nesting": ("a: " + "[" * 40 + "]" * 40 + "\n", ("nested deeper than 32 levels",)),
    "oversized_file": ("a: '" + "x" * (1 << 21) + "'\n", ("larger than 1024 KiB",)),
    "not_a_mapping": ("- just\n- a list\n", ("a recipe is a YAML mapping", "got list")),
    "empty_file": ("", ("a recipe is a YAML mapping", "got NoneType")),
    "not_utf8": (b"name: caf\xe9\n", ("cannot read recipe",)),
    "unknown_key": (
        GOOD.replace("variants", "variantz"),
        ("variantz: unknown key 'variantz'; did you mean 'variants'?",),
    ),
    "wrong_type": (
        GOOD.replace("epochs: 1", "epochs: many"),
        ("teacher.train.epochs", "valid integer", "'many'"),
    ),
    "missing_field": (
        GOOD.replace("teacher:", "teachr:"),
        ("teacher: required field is missing; add it.",),
    ),
    "unknown_method": (
        GOOD.replace("variants: []", "variants: [{name: v, steps: [{method: prun}]}]"),
        ("variants.0.steps.0: unknown method 'prun'", "valid methods: distill, prune"),
    ),
    "bad_split_spec": (
        GOOD + "split: random:1.5\n",
        ("split", "fraction 1.5 is not strictly between 0 and 1"),
    ),
    "unknown_target": (GOOD + "targets: [cortex-m99]\n", ("unknown target(s)", "cortex-m4")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_recipe_is_refused_with_one_line_and_nothing_run(
    case: str, tmp_path: Path, runs: Path, earlier, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "code_ran"
    text, fragments = CASES[case]
    recipe = tmp_path / "bad.yaml"
    if isinstance(text, bytes):
        recipe.write_bytes(text)
    else:
        recipe.write_text(text.replace("{marker}", str(marker)))
    result = tfhsi("recipe", "run", recipe, "--quick", "--out", runs / "new")
    assert_one_error(result, str(recipe), *fragments)
    assert not marker.exists(), "the recipe ran code"
    assert_nothing_lost(earlier, touched=[runs], absent=[runs / "new", tmp_path / "runs" / "tiny"])


def test_bad_override_is_refused_with_the_expected_form(
    tmp_path: Path, runs: Path, earlier
) -> None:
    recipe = tmp_path / "good.yaml"
    recipe.write_text(GOOD)
    result = tfhsi("recipe", "run", recipe, "--set", "teacher.train.epochs", "--out", runs / "new")
    assert_one_error(result, "--set 'teacher.train.epochs'", "expected key.path=value")
    assert_nothing_lost(earlier, touched=[runs], absent=[runs / "new"])


def test_missing_recipe_file_is_named(tmp_path: Path, runs: Path, earlier) -> None:
    result = tfhsi("recipe", "run", tmp_path / "nope.yaml", "--out", runs / "new")
    assert_one_error(result, f"recipe file {tmp_path / 'nope.yaml'} does not exist")
    assert_nothing_lost(earlier, touched=[runs], absent=[runs / "new"])
