"""Variants of one seed that start the same way share the finished stage instead of retraining.

``kd`` distils a student; ``kd_prune`` distils the same student the same way, then prunes it:
its distillation stage is copied from ``kd`` (same weights), while ``kd_other`` (another
temperature, and unlabelled transfer pixels) trains its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_recipe import tiny_recipe

from tfhsi.recipes.runner import run_recipe
from tfhsi.recipes.schema import Recipe

DISTILL = {"method": "distill", "alpha": 0.5, "temperature": 4.0, "epochs": 1}
RECIPE = tiny_recipe(
    "sharing",
    seeds=[0],
    variants=[
        {"name": "kd", "student": {"model": "student2d", "patch": 5}, "steps": [DISTILL]},
        {
            "name": "kd_prune",
            "student": {"model": "student2d", "patch": 5},
            "steps": [DISTILL, {"method": "prune", "target": 0.5, "epochs": 1}],
        },
        {
            "name": "kd_other",
            "student": {"model": "student2d", "patch": 5},
            "steps": [{**DISTILL, "temperature": 2.0, "unlabelled": 1.0}],
        },
    ],
)


def _weights(path: Path) -> list[np.ndarray]:
    from tfhsi._keras import keras

    return keras.models.load_model(str(path), compile=False).get_weights()


@pytest.mark.slow
def test_chain_reuses_the_distillation_of_an_identical_variant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TFHSI_CACHE_DIR", str(tmp_path / "cache"))
    messages: list[str] = []
    run_dir = run_recipe(Recipe.model_validate(RECIPE), out=tmp_path / "run", log=messages.append)
    seed = run_dir / "seed_0"
    reused = [m for m in messages if "reused" in m]
    assert reused == ["  1_distill: same as kd/1_distill, reused"]
    assert len([m for m in messages if "unlabelled pixels too" in m]) == 1
    same = zip(
        _weights(seed / "kd" / "1_distill" / "model.keras"),
        _weights(seed / "kd_prune" / "1_distill" / "model.keras"),
        strict=True,
    )
    assert all(np.array_equal(a, b) for a, b in same)
    assert (seed / "kd_prune" / "2_prune" / "done.json").is_file()
    other = zip(
        _weights(seed / "kd" / "1_distill" / "model.keras"),
        _weights(seed / "kd_other" / "1_distill" / "model.keras"),
        strict=True,
    )
    assert not all(np.array_equal(a, b) for a, b in other)
