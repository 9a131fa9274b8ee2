"""The shipped ``kd_salinas_a`` recipe on the real Salinas-A scene, through the CLI users run.

``tfhsi recipe run kd_salinas_a --quick --data-dir DIR`` (two epochs per stage): it finishes,
every variant has rows and no row has an error, every file exported as ``int8`` is int8 end to
end by its audit and runs on TFLite Micro, and the report lists the variants. Skipped when the
Salinas-A files are absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tfhsi.cli import app
from tfhsi.recipes.loading import load_recipe

RECIPE = "kd_salinas_a"


@pytest.fixture(scope="module")
def salinas_a_dir(real_data_dir: Path) -> Path:
    if not (real_data_dir / "salinas_a" / "SalinasA_corrected.mat").is_file():
        pytest.skip(f"Salinas-A not found in {real_data_dir / 'salinas_a'}")
    return real_data_dir


@pytest.fixture(scope="module")
def quick_run(salinas_a_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("kd_salinas_a")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TFHSI_CACHE_DIR", str(folder / "cache"))
        args = ["recipe", "run", RECIPE, "--quick", "--data-dir", str(salinas_a_dir)]
        result = CliRunner().invoke(app, [*args, "--out", str(folder / "run")])
    assert result.exit_code == 0, result.output
    return folder / "run", result.output


@pytest.mark.real_data
@pytest.mark.slow
def test_kd_salinas_a_quick_gives_error_free_rows_for_every_variant(
    quick_run: tuple[Path, str],
) -> None:
    run_dir, _ = quick_run
    recipe, _ = load_recipe(RECIPE)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["quick"] is True and results["dataset"]["synthetic"] is False
    rows = results["rows"]
    assert [f"{r['variant']}/{r['format']}: {r['error']}" for r in rows if r.get("error")] == []
    formats = {(r["variant"], r["format"]) for r in rows}
    for variant in recipe.variants:
        assert {(variant.name, f) for f in ("keras", *variant.export)} <= formats
    assert all(0.0 <= r["oa"] <= 1.0 for r in rows)
    report = (run_dir / "report.md").read_text()
    assert all(v.name in report for v in recipe.variants)


@pytest.mark.real_data
@pytest.mark.slow
def test_kd_salinas_a_int8_files_are_int8_end_to_end_and_run_on_tflite_micro(
    quick_run: tuple[Path, str],
) -> None:
    from tfhsi.export.inspect import audit

    run_dir, _ = quick_run
    rows = json.loads((run_dir / "results.json").read_text())["rows"]
    int8 = [r for r in rows if r["format"] == "int8"]
    assert {r["variant"] for r in int8} == {v.name for v in load_recipe(RECIPE)[0].variants}
    for row in int8:
        report = audit(Path(row["tflite"]))
        assert report.is_full_int8 and report.precision == "int8", row["variant"]
        assert row["full_int8"] and row["arena_bytes"] and not row["tflm_error"], row["variant"]
        assert row["targets"]["cortex-m7"]["fits"], row["variant"]
    lowered = [r for r in int8 if r["variant"].startswith("student3d")]
    assert lowered and all(any("Conv3D lowered" in n for n in r["notes"]) for r in lowered)
