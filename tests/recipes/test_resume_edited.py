"""--resume after editing a recipe: edited and new variants run, the rest is reused untouched;
a change to what every result rests on (here the teacher) is refused before anything runs."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
from tiny_recipe import PRUNE, PTQ, tiny_recipe

from tfhsi.errors import ConfigError
from tfhsi.recipes.runner import run_recipe
from tfhsi.recipes.schema import Recipe

BASE = tiny_recipe("edited", seeds=[0], variants=[PTQ, PRUNE])


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_resume_runs_only_edited_and_new_variants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TFHSI_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    run_recipe(Recipe.model_validate(BASE), out=out, log=lambda _: None)
    seed = out / "seed_0"
    kept = {p: _sha(p) for p in (seed / "ptq" / "rows.json", seed / "teacher" / "rows.json")}

    edited = copy.deepcopy(BASE)
    edited["variants"][1]["steps"][0]["target"] = 0.75
    edited["variants"].append(
        {
            "name": "cluster",
            "steps": [{"method": "cluster", "clusters": 4, "epochs": 1, "skip": []}],
        }
    )
    messages: list[str] = []
    run_recipe(Recipe.model_validate(edited), out=out, resume=True, log=messages.append)

    assert {p: _sha(p) for p in kept} == kept  # untouched
    assert "--resume: variants changed, runs again: prune" in messages
    assert "--resume: variants new: cluster" in messages
    aside = list(seed.glob("prune.replaced-*"))
    assert len(aside) == 1 and (aside[0] / "rows.json").is_file()  # nothing lost
    done = json.loads((seed / "prune" / "1_prune" / "done.json").read_text())
    assert done["sparsity"]["sparsity"] == pytest.approx(0.75, abs=0.02)
    clustered = json.loads((seed / "cluster" / "1_cluster" / "done.json").read_text())
    assert clustered["unique_weights"]["logits"] <= 4  # skip: [] clusters the classifier too
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert {r["variant"] for r in rows} == {"teacher", "ptq", "prune", "cluster"}


@pytest.mark.slow
def test_resume_with_another_teacher_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TFHSI_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    recipe = {**BASE, "variants": [BASE["variants"][0]]}
    run_recipe(Recipe.model_validate(recipe), out=out, log=lambda _: None)
    before = _sha(out / "results.json")
    other = copy.deepcopy(recipe)
    other["teacher"]["patch"] = 7
    with pytest.raises(ConfigError, match=r"differs from this recipe in teacher; only variants"):
        run_recipe(Recipe.model_validate(other), out=out, resume=True, log=lambda _: None)
    assert _sha(out / "results.json") == before


@pytest.mark.slow
def test_an_option_added_since_at_its_default_is_no_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    monkeypatch.setenv("TFHSI_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    recipe = Recipe.model_validate(BASE)
    run_recipe(recipe, out=out, log=lambda _: None)
    saved = yaml.safe_load((out / "recipe.yaml").read_text())
    del saved["variants"][1]["steps"][0]["block"]  # as written before `block` existed
    (out / "recipe.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    kept = _sha(out / "seed_0" / "prune" / "rows.json")

    messages: list[str] = []
    run_recipe(recipe, out=out, resume=True, log=messages.append)

    assert not [m for m in messages if m.startswith("--resume")]
    assert _sha(out / "seed_0" / "prune" / "rows.json") == kept


@pytest.mark.parametrize("quick", [False, True])
def test_the_quick_section_matters_to_a_resume_only_of_a_quick_run(
    tmp_path: Path, quick: bool
) -> None:
    """A full run's results do not rest on ``quick:`` (whose defaults may change between
    versions), so resuming it ignores that section; a quick run's resume does not."""
    from tfhsi.recipes.resolve import resolved_yaml
    from tfhsi.recipes.runner import _check_resumable

    recipe = Recipe.model_validate(BASE)
    saved = recipe.model_copy(update={"quick": recipe.quick.model_copy(update={"epochs": 2})})
    (tmp_path / "recipe.yaml").write_text(resolved_yaml(saved, quick=quick))
    if quick:
        with pytest.raises(ConfigError, match="differs from this recipe in"):
            _check_resumable(tmp_path / "recipe.yaml", recipe, quick=quick, log=lambda _: None)
    else:
        assert (
            _check_resumable(tmp_path / "recipe.yaml", recipe, quick=quick, log=lambda _: None)
            == []
        )
