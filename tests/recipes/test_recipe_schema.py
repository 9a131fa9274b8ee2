"""Recipes: every shipped one validates; bad ones fail with one line naming the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tfhsi.cli import app
from tfhsi.errors import RecipeError
from tfhsi.recipes.loading import apply_override, list_recipes, load_recipe, safe_yaml
from tfhsi.recipes.resolve import apply_quick, resolved_yaml

SHIPPED = list_recipes()
GOOD = """
name: tiny
dataset: synthetic
teacher: {model: student2d, patch: 5}
variants:
  - name: pruned
    steps: [{method: prune, target: 0.5, epochs: 2}]
targets: [cortex-m4]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(RecipeError) as err:
        load_recipe(str(write(tmp_path, text)))
    message = str(err.value)
    assert "\n" not in message
    return message


def test_both_study_datasets_have_every_recipe_kind() -> None:
    for kind in ("baseline", "prune", "ptq", "qat", "kd", "cluster", "study"):
        assert f"{kind}_indian_pines" in SHIPPED and f"{kind}_pavia" in SHIPPED


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_recipe_validates(name: str) -> None:
    recipe, path = load_recipe(name)
    assert recipe.name == path.stem == name


def test_typo_key_names_path_and_suggests(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        GOOD.replace(
            "teacher: {model: student2d, patch: 5}", "teacher: {model: student2d, pach: 5}"
        ),
    )
    assert "teacher.pach: unknown key 'pach'; did you mean 'patch'?" in message


def test_typo_inside_a_step_names_the_step_field(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("target: 0.5", "targt: 0.5"))
    assert "variants.0.steps.0" in message and "did you mean 'target'?" in message


def test_wrong_type_is_named(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("epochs: 2", "epochs: two"))
    assert "epochs" in message and "'two'" in message


def test_unknown_model_lists_valid_names(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("model: student2d", "model: student2"))
    assert "unknown model 'student2'" in message and "student2d" in message


def test_unknown_scene_lists_valid_names(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("dataset: synthetic", "dataset: pavia"))
    assert "unknown scene 'pavia'" in message and "pavia_u" in message


def test_unknown_method_lists_methods(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("method: prune", "method: prun"))
    assert "unknown method 'prun'" in message and "filter_prune" in message


def test_unknown_target_lists_targets(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("[cortex-m4]", "[cortex-m9]"))
    assert "cortex-m9" in message and "cortex-m7" in message


def test_bad_split_spec_is_explained(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD + "split: randm:0.1\n")
    assert "randm:0.1" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: &x [1]\nb: *x\n", "aliases"),
        ("a: " + "[" * 40 + "]" * 40 + "\n", "nested deeper"),
        ("a: !!python/object/apply:os.system ['echo hacked']\n", "invalid YAML"),
        ("a: [1, 2\n", "line 2"),
        ("- just\n- a list\n", "a recipe is a YAML mapping"),
    ],
)
def test_hostile_or_malformed_yaml_is_refused_safely(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in error_of(tmp_path, text)


def test_huge_file_is_refused(tmp_path: Path) -> None:
    assert "larger than" in error_of(tmp_path, "a: '" + "x" * (1 << 21) + "'\n")


def test_overrides_set_nested_fields_and_list_items(tmp_path: Path) -> None:
    recipe, _ = load_recipe(
        str(write(tmp_path, GOOD)),
        overrides=("teacher.train.epochs=7", "variants.0.steps.0.target=0.9"),
    )
    assert recipe.teacher.train.epochs == 7
    assert recipe.variants[0].steps[0].target == 0.9  # type: ignore[union-attr]


def test_override_of_unknown_field_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="unknown key 'epoch'"):
        load_recipe(str(write(tmp_path, GOOD)), overrides=("teacher.train.epoch=7",))


def test_override_needs_equals_sign() -> None:
    with pytest.raises(RecipeError, match=r"expected key\.path=value"):
        apply_override({}, "teacher.train.epochs")


def test_quick_caps_epochs_and_seeds() -> None:
    recipe, _ = load_recipe("study_indian_pines")
    quick = apply_quick(recipe)
    assert quick.seeds == [0]
    assert quick.teacher.train.epochs == recipe.quick.epochs
    assert all(step.epochs <= recipe.quick.epochs for v in quick.variants for step in v.steps)
    assert "quick_mode: true" in resolved_yaml(recipe, quick=True)
    assert quick.test_pixels == recipe.quick.test_pixels and quick.map_pixels == "scored"
    transfer = [s.unlabelled for v in quick.variants for s in v.steps if s.method == "distill"]
    assert transfer and max(transfer) <= recipe.quick.unlabelled
    assert apply_quick(recipe.model_copy(update={"test_pixels": 50})).test_pixels == 50


def test_safe_yaml_parses_plain_documents() -> None:
    assert safe_yaml("a: 1\nb: [x, y]\n", source="t") == {"a": 1, "b": ["x", "y"]}


def test_cli_validate_typo_exits_2_with_one_line_and_no_run_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    bad = write(tmp_path, GOOD.replace("epochs: 2", "epochz: 2"))
    runner = CliRunner()
    result = runner.invoke(app, ["recipe", "run", str(bad), "--quick"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "unknown key 'epochz'; did you mean 'epochs'?" in result.output
    assert not (tmp_path / "runs").exists()
    assert runner.invoke(app, ["recipe", "validate", "kd_indian_pines"]).exit_code == 0


def test_kd_pavia_without_cube_stops_with_download_instruction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["recipe", "run", "kd_pavia", "--data-dir", str(tmp_path)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2
    assert (
        "PaviaU.mat not found" in result.output and "tfhsi data download pavia_u" in result.output
    )
    assert not (tmp_path / "runs").exists()
