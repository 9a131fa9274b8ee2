"""Every shipped recipe runs end to end with --quick on a tiny synthetic scene.

The scene and patch sizes are overridden (the shipped recipes target real scenes); every
variant, step and export of the recipe runs. Recipes that differ only in their name,
description and scene (``kd_indian_pines`` / ``kd_pavia``) are the same run once the scene is
overridden, so each such group runs once, and a test checks every shipped recipe is in a
group. One teacher cache is shared by the session, as between real runs. TFLite Micro and
maps run in the kd recipes only (speed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfhsi.recipes.loading import list_recipes, load_recipe
from tfhsi.recipes.runner import run_recipe

SCENE = "synthetic:14x14x24x3"


@pytest.fixture(scope="module")
def teacher_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("teacher_cache")


def overrides_for(name: str) -> tuple[str, ...]:
    recipe, _ = load_recipe(name)
    kd = name.startswith("kd_")
    sets = [
        f"dataset={SCENE}",
        "teacher.patch=5",
        "teacher.pca=8",
        "quick.epochs=1",
        "quick.latency_runs=2",
    ]
    sets += [f"profile.tflm={'true' if kd else 'false'}", f"maps={'true' if kd else 'false'}"]
    sets += [
        f"variants.{i}.student.patch=5"
        for i, v in enumerate(recipe.variants)
        if v.student is not None
    ]
    return tuple(sets)


def _content(name: str) -> str:
    recipe, _ = load_recipe(name, overrides=overrides_for(name))
    return json.dumps(
        recipe.model_dump(mode="json", exclude={"name", "description", "dataset"}), sort_keys=True
    )


def _groups() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for name in sorted(list_recipes()):
        groups.setdefault(_content(name), []).append(name)
    return groups


RUNS = sorted(names[0] for names in _groups().values())


def test_every_shipped_recipe_is_covered_by_a_run() -> None:
    covered = {name for names in _groups().values() for name in names if names[0] in RUNS}
    assert covered == set(list_recipes())
    assert len(RUNS) == len(list_recipes()) // 2  # the Indian Pines / Pavia pairs


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNS)
def test_shipped_recipe_runs_quick_on_synthetic(
    name: str, tmp_path: Path, teacher_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TFHSI_CACHE_DIR", str(teacher_cache))
    recipe, _ = load_recipe(name, overrides=overrides_for(name))
    run_dir = run_recipe(recipe, quick=True, out=tmp_path / "run", log=lambda _: None)

    results = json.loads((run_dir / "results.json").read_text())
    assert results["quick"] is True and results["dataset"]["synthetic"] is True
    failed = [
        f"{r['variant']}/{r['format']}: {r['error']}" for r in results["rows"] if r.get("error")
    ]
    assert failed == []
    variants = {r["variant"] for r in results["rows"]}
    assert variants == {"teacher", *(v.name for v in recipe.variants)}
    for row in results["rows"]:
        if row["format"] != "keras":
            assert Path(row["tflite"]).is_file()
            assert 0.0 <= row["oa"] <= 1.0
    html = (run_dir / "report.html").read_text()
    assert "QUICK RUN" in html and "SYNTHETIC" in html
    assert not [p for p in run_dir.rglob("*") if ".part" in p.name]
    if name.startswith("kd_"):
        lowered = [r for r in results["rows"] if r["format"] == "int8-lowered"]
        assert lowered and all(r["full_int8"] and r["arena_bytes"] for r in lowered)
        assert all(r["targets"]["cortex-m7"]["fits"] for r in lowered)
        assert any(r.get("map") for r in results["rows"])
        _assert_exports_reevaluate(results["rows"])


def _assert_exports_reevaluate(rows: list[dict]) -> None:
    """`tfhsi evaluate FILE.tflite` finds the recipe run around FILE and gives the row's OA."""
    from tfhsi.experiment import evaluate_path, find_run_dir, load_run

    for row in rows:
        if row["format"] in ("int8", "int8-lowered") and row["variant"] != "teacher":
            path = Path(row["tflite"])
            metrics = evaluate_path(path, load_run(find_run_dir(path)))
            assert metrics.oa == pytest.approx(row["oa"], abs=1e-9), row["variant"]
