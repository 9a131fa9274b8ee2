"""Every shipped recipe runs end to end with --quick on a tiny synthetic scene.

The scene, patch sizes and PCA components are overridden (the shipped recipes target real
scenes; students see every band of the synthetic scene); every variant, step and export of the
recipe runs. What runs is the recipe after ``--quick`` (one seed, one epoch per stage), so a
recipe whose quick run another recipe's quick run contains (``kd_pavia`` and ``kd_salinas_a`` in
``kd_indian_pines`` once scene and input sizes are overridden; ``prune_``, ``ptq_``, ``qat_`` and
``cluster_indian_pines`` in ``study_indian_pines``, variant names aside) is not run again, and a
test checks every shipped recipe is covered by a run. One teacher cache is shared by the session, as between real runs. TFLite Micro runs in
every recipe (every int8 file must load in it); maps in the kd recipes only (speed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfhsi.recipes.loading import list_recipes, load_recipe
from tfhsi.recipes.resolve import apply_quick
from tfhsi.recipes.runner import run_recipe
from tfhsi.recipes.schema import Recipe, Variant

SCENE = "synthetic:14x14x24x3"
BANDS = 24  # a student's PCA of the scene's band count keeps every band (no PCA)


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
    sets += ["profile.tflm=true", f"maps={'true' if kd else 'false'}"]
    if kd:  # a quick run scores a subset of the test pixels; the re-evaluation must agree
        sets += ["quick.test_pixels=100"]
    for i, variant in enumerate(recipe.variants):
        if variant.student is not None:
            sets += [f"variants.{i}.student.patch=5", f"variants.{i}.student.pca={BANDS}"]
    return tuple(sets)


def _content(name: str) -> dict:
    """What the quick run of recipe ``name`` computes (names and descriptions aside)."""
    recipe, _ = load_recipe(name, overrides=overrides_for(name))
    return apply_quick(recipe).model_dump(mode="json", exclude={"name", "description", "dataset"})


def _covers(big: dict, small: dict) -> bool:
    """Running ``big`` runs everything ``small`` does: the same settings, and each variant of
    ``small`` is, its name aside, a variant of ``big`` whose exports include its exports."""
    if {k: v for k, v in big.items() if k != "variants"} != {
        k: v for k, v in small.items() if k != "variants"
    }:
        return False

    def covered(variant: dict) -> bool:
        return any(
            all(other.get(k) == v for k, v in variant.items() if k not in ("name", "export"))
            and set(variant["export"]) <= set(other["export"])
            for other in big["variants"]
        )

    return all(covered(variant) for variant in small["variants"])


CONTENTS = {name: _content(name) for name in sorted(list_recipes())}
RUNS = [
    name
    for name, content in CONTENTS.items()
    if not any(
        _covers(other, content) and (not _covers(content, other) or o < name)
        for o, other in CONTENTS.items()
        if o != name
    )
]
"""One run per set of recipes whose quick runs another recipe's quick run contains."""


def _code_path(variant: Variant) -> tuple:
    """The variant's settings, and its steps' methods with which options they set."""
    rest = variant.model_dump(mode="json", exclude={"name", "export", "steps"})
    steps = tuple((s.method, tuple(sorted(s.model_fields_set))) for s in variant.steps)
    return json.dumps(rest, sort_keys=True), steps


def one_variant_per_code_path(recipe: Recipe) -> Recipe:
    """The recipe without the variants whose code path an earlier variant already takes."""
    kept: list[Variant] = []
    for variant in recipe.variants:
        if not any(
            _code_path(k) == _code_path(variant) and set(variant.export) <= set(k.export)
            for k in kept
        ):
            kept.append(variant)
    return recipe.model_copy(update={"variants": kept})


def test_a_run_leaves_out_only_variants_that_repeat_a_code_path() -> None:
    recipe, _ = load_recipe("study_indian_pines", overrides=overrides_for("study_indian_pines"))
    left_out = {v.name for v in recipe.variants} - {
        v.name for v in one_variant_per_code_path(recipe).variants
    }
    assert left_out == {"prune80", "prune90", "cluster32"}


def test_every_shipped_recipe_is_covered_by_a_run() -> None:
    covered = {n for n in CONTENTS for run in RUNS if _covers(CONTENTS[run], CONTENTS[n])}
    assert covered == set(list_recipes())
    families = {name.split("_", 1)[0] for name in list_recipes()}  # kd, study, ptq, …
    assert len(RUNS) <= len(families)  # at most one run per family, whatever its scene


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNS)
def test_shipped_recipe_runs_quick_on_synthetic(
    name: str, tmp_path: Path, teacher_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TFHSI_CACHE_DIR", str(teacher_cache))
    recipe, _ = load_recipe(name, overrides=overrides_for(name))
    recipe = one_variant_per_code_path(recipe)
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
    _assert_int8_files_are_int8_and_run_on_tflm(run_dir, results["rows"])
    int4 = [r for r in results["rows"] if r["format"] in ("w4a8", "auto-mixed")]
    for row in int4:  # the per-layer report of each int4 variant, linked and in the report
        report = json.loads((run_dir / row["quant_report"]).read_text())
        assert report["layers"] and report["subset"] == "val"
        assert f"Quantisation sensitivity: {row['variant']}" in html
        assert report["layers"][0]["name"] in html
    if name.startswith("kd_"):
        int8 = [r for r in results["rows"] if r["format"] == "int8"]
        assert {r["variant"] for r in int8} == {v.name for v in recipe.variants}
        assert all(r["targets"]["cortex-m7"]["fits"] for r in int8)
        lowered = [r for r in int8 if r["variant"].startswith("student3d")]
        assert lowered and all(any("Conv3D lowered" in n for n in r["notes"]) for r in lowered)
        assert any(r.get("map") for r in results["rows"])
        from tfhsi.data.splits import Split

        split = Split.load(run_dir / "seed_0" / "teacher" / "split.npz")
        assert int(split.test.sum()) == 100 and "test_pixels" in split.notes[-1]
        assert all(
            sum(map(sum, r["confusion"])) == 100 for r in results["rows"] if r.get("confusion")
        )
        _assert_exports_reevaluate(results["rows"])


def _assert_int8_files_are_int8_and_run_on_tflm(run_dir: Path, rows: list[dict]) -> None:
    """A file named int8 (int8, int16x8) is integer end to end by its audit and TFLite Micro
    runs it; int8-mixed files are the converter's mixed result."""
    from tfhsi.export.inspect import audit
    from tfhsi.export.presets import PRESETS

    promised = {name: spec.promise for name, spec in PRESETS.items() if spec.promise}
    by_file = {Path(r["tflite"]).resolve(): r for r in rows if r.get("tflite")}
    files = sorted(run_dir.rglob("*.tflite"))
    assert files and set(by_file) == {f.resolve() for f in files}
    for path in files:
        report, row = audit(path), by_file[path.resolve()]
        assert row["precision"] == report.precision, path
        if ("int8" in path.name and "mixed" not in path.name) or path.stem in promised:
            spec = PRESETS.get(path.stem)
            assert report.is_full_int8 and report.precision in spec.accepts, path
            if spec.promise in ("int8", "int16x8"):  # int4 weights: TFLM runs only some ops
                assert row["full_int8"] and row["arena_bytes"] and not row["tflm_error"], path
            else:
                assert row["arena_bytes"] or row["tflm_error"], path
        if path.stem == "int8-mixed":
            assert report.precision == "mixed", path
            assert any(op.name == "CONV_3D" for op in report.float_ops), path


def _assert_exports_reevaluate(rows: list[dict]) -> None:
    """`tfhsi evaluate FILE.tflite` finds the recipe run around FILE and gives the row's OA."""
    from tfhsi.experiment import evaluate_path, find_run_dir, load_run

    for row in rows:
        if row["format"] == "int8" and row["variant"] != "teacher":
            path = Path(row["tflite"])
            metrics = evaluate_path(path, load_run(find_run_dir(path)))
            assert metrics.oa == pytest.approx(row["oa"], abs=1e-9), row["variant"]


@pytest.mark.slow
def test_int8_mixed_of_a_model_the_converter_makes_int8_is_skipped_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tiny_recipe import tiny_recipe

    from tfhsi.recipes.schema import Recipe

    monkeypatch.setenv("TFHSI_CACHE_DIR", str(tmp_path / "cache"))
    variant = {"name": "ptq", "export": ["int8", "int8-mixed"]}  # a 2-D teacher: no float op
    recipe = Recipe.model_validate(tiny_recipe("skip", seeds=[0], variants=[variant]))
    lines: list[str] = []
    run_dir = run_recipe(recipe, out=tmp_path / "run", log=lines.append)
    rows = json.loads((run_dir / "results.json").read_text())["rows"]
    ptq = {r["format"]: r for r in rows if r["variant"] == "ptq"}
    assert set(ptq) == {"keras", "int8"} and ptq["int8"]["precision"] == "int8"
    assert any("int8-mixed not exported" in n and "int8 file" in n for n in ptq["int8"]["notes"])
    assert not list(run_dir.rglob("int8-mixed.tflite"))
    assert any("int8-mixed: the converter's result has no float op" in line for line in lines)


def test_a_resumed_int8_row_of_an_older_run_that_is_not_int8_is_measured_again(
    tmp_path: Path,
) -> None:
    from tfhsi.recipes.deploy import _resumed

    old, ok = tmp_path / "old.row.json", tmp_path / "ok.row.json"
    old.write_text(json.dumps({"format": "int8", "precision": "mixed", "error": None}))
    ok.write_text(json.dumps({"format": "int8", "precision": "int8", "error": None}))
    assert _resumed(old, "int8") is None and _resumed(tmp_path / "none.row.json", None) is None
    assert _resumed(ok, "int8") == {"format": "int8", "precision": "int8", "error": None}
    assert _resumed(old, None) is not None  # int8-mixed: no promise to keep
