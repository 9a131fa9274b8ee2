"""Compression outcomes on the real Indian Pines scene, through the recipe runner users run.

Short trainings (the figures of the full study are in docs/BENCHMARK.md); what is asserted does
not need a well-trained model: 80 % polynomial pruning reaches 0.80 ± 0.01 sparsity in the pruned
kernels and shrinks the gzip'd fp32 ``.tflite`` at least 2.5×, and the int8 ``.tflite`` of a 2-D
model computes in int8 in every operator (read from the flatbuffer) within 1 pp OA of the float
file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfhsi.recipes.runner import run_recipe
from tfhsi.recipes.schema import Recipe

RECIPE = {
    "name": "real_outcomes",
    "dataset": "indian_pines",
    "split": "random:0.1",
    "seeds": [0],
    "test_pixels": 2000,  # a seeded per-class subset of the 8,712: enough for a 1 pp check
    # a 2-D teacher: its float files run in XNNPACK, so scoring them on the ~9,000 test pixels
    # takes seconds (hamida3d's CONV_3D runs on the built-in kernels); pruning and gzip behave
    # the same on either
    "teacher": {"model": "cnn2d", "patch": 9, "pca": 15, "train": {"epochs": 4}},
    "variants": [
        {
            "name": "prune80",
            "steps": [{"method": "prune", "target": 0.8, "epochs": 4}],
            "export": ["fp32"],
        },
        {
            "name": "student2d",
            "student": {"model": "student2d", "patch": 9, "train": {"epochs": 15}},
            "export": ["fp32", "int8"],
        },
    ],
    "profile": {"latency_runs": 2, "tflm": False},
    "maps": False,
}


@pytest.fixture(scope="module")
def run(real_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("real_outcomes")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TFHSI_CACHE_DIR", str(folder / "cache"))
        run_dir = run_recipe(
            Recipe.model_validate(RECIPE),
            out=folder / "run",
            data_dir=real_data_dir,
            log=lambda _: None,
        )
    rows = json.loads((run_dir / "results.json").read_text())["rows"]
    return run_dir, {(r["variant"], r["format"]): r for r in rows}


def _no_errors(rows: dict) -> None:
    assert [r["error"] for r in rows.values() if r.get("error")] == []


@pytest.mark.real_data
@pytest.mark.slow
def test_80_percent_pruning_reaches_its_sparsity_and_shrinks_gzip_2_5x(
    run: tuple[Path, dict],
) -> None:
    run_dir, rows = run
    _no_errors(rows)
    done = json.loads((run_dir / "seed_0" / "prune80" / "1_prune" / "done.json").read_text())
    assert done["sparsity"]["sparsity"] == pytest.approx(0.80, abs=0.01)
    dense, pruned = rows[("teacher", "fp32")], rows[("prune80", "fp32")]
    assert dense["gzip_bytes"] / pruned["gzip_bytes"] >= 2.5


@pytest.mark.real_data
@pytest.mark.slow
def test_int8_2d_model_is_int8_in_every_op_and_within_1pp_of_float(
    run: tuple[Path, dict],
) -> None:
    _, rows = run
    _no_errors(rows)
    fp32, int8 = rows[("student2d", "fp32")], rows[("student2d", "int8")]
    assert int8["full_int8"] is True and int8["float_ops"] == []
    assert int8["precision"] == "int8"
    assert fp32["oa"] > 0.5  # trained enough for the comparison to mean something
    assert abs(int8["oa"] - fp32["oa"]) <= 0.01
