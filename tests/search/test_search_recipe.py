"""A recipe's ``search:`` section: validated with the recipe, and what search it defines."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tfhsi.errors import RecipeError
from tfhsi.recipes.loading import load_recipe
from tfhsi.search.engine import settings_from_recipe

RECIPE = {
    "name": "search_tiny",
    "dataset": "synthetic:14x14x24x3",
    "split": "random:0.2",
    "seeds": [3],
    "teacher": {"model": "student2d", "patch": 5, "train": {"epochs": 1}},
    "search": {"target": "cortex-m4", "max_arena": "32KiB", "trials": 5, "space": "space.yaml"},
}


def _write(tmp_path: Path, recipe: dict, space: str = "width: [0.5]\n") -> Path:
    (tmp_path / "space.yaml").write_text(space, encoding="utf-8")
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def test_a_search_section_defines_the_search_of_the_recipes_scene_split_seed_and_teacher(
    tmp_path: Path,
) -> None:
    recipe, _ = load_recipe(str(_write(tmp_path, RECIPE)))
    settings = settings_from_recipe(recipe, quick=True)
    assert (settings.dataset, settings.split, settings.seed) == (RECIPE["dataset"], "random:0.2", 3)
    assert settings.teacher["model"] == "student2d" and settings.max_arena == 32768
    assert settings.space.width == [0.5]  # the space file, read relative to the recipe
    assert settings.budget().arena_bytes == 32768 and settings.trials == 5
    assert set(settings.effective_space().epochs.model_dump().values()) == {1}  # --quick


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"target": "cortex-m9"}, "search.target: unknown target 'cortex-m9'"),
        ({"max_arena": "lots"}, "search.max_arena"),
        ({"trials": 0}, "search.trials"),
        ({"budget": 1}, "search.budget: unknown key 'budget'"),
    ],
)
def test_a_bad_search_section_is_one_line_naming_the_field(
    tmp_path: Path, change: dict, says: str
) -> None:
    bad = {**RECIPE, "search": {**RECIPE["search"], **change}}
    with pytest.raises(RecipeError, match=says) as exc:
        load_recipe(str(_write(tmp_path, bad)))
    assert "\n" not in str(exc.value)


def test_a_search_recipe_has_no_variants(tmp_path: Path) -> None:
    bad = {**RECIPE, "variants": [{"name": "ptq", "export": ["int8"]}]}
    with pytest.raises(RecipeError, match="no variants"):
        load_recipe(str(_write(tmp_path, bad)))


def test_a_bad_space_file_of_a_recipe_stops_before_the_search_starts(tmp_path: Path) -> None:
    from tfhsi.errors import ConfigError

    recipe, _ = load_recipe(str(_write(tmp_path, RECIPE, space="width: [-1]\n")))
    with pytest.raises(ConfigError, match=r"space\.yaml: field 'width'"):
        settings_from_recipe(recipe)
