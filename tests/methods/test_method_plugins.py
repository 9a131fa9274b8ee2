"""A compression method is one module: registering it makes it usable from a recipe (schema,
runner, checkpoints, export filtering), in this process and in spawn workers, with no other
file touched."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from pathlib import Path

import pytest
from tiny_recipe import tiny_recipe

from tfhsi.methods import METHODS
from tfhsi.recipes.loading import validate
from tfhsi.recipes.runner import run_recipe

TOY = '''
"""A toy method: scales the logits layer's kernel by a factor (no training)."""
from typing import Literal

from pydantic import Field

from tfhsi.methods import StepOptions, register_method


class ScaleStep(StepOptions):
    method: Literal["toy_scale"]
    factor: float = Field(2.0, gt=0)


@register_method(
    "toy_scale", options=ScaleStep, summary="scale the classifier", exports=("fp32",)
)
def run(state, step, context):
    from tfhsi._keras import keras

    model = keras.models.clone_model(state.model)
    model.set_weights(state.model.get_weights())
    layer = model.get_layer("logits")
    kernel, *rest = layer.get_weights()
    layer.set_weights([kernel * step.factor, *rest])
    context.log(f"  toy_scale: kernel x{step.factor}")
    return state.after("toy_scale", model), {"factor": step.factor}
'''


@pytest.fixture
def toy_method(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The toy module, written outside the package and imported as a user would."""
    (tmp_path / "toy_methods.py").write_text(textwrap.dedent(TOY), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("toy_methods")
    yield module
    METHODS._items.pop("toy_scale", None)
    sys.modules.pop("toy_methods", None)


def _recipe(name: str) -> dict:
    return tiny_recipe(
        name,
        seeds=[0],
        variants=[
            {"name": "scaled", "steps": [{"method": "toy_scale", "factor": 3.0}],
             "export": ["fp32", "int8"]},
        ],
    )  # fmt: skip


def test_unregistered_method_is_refused_with_valid_methods() -> None:
    with pytest.raises(
        Exception, match=r"unknown method 'toy_scale'.*valid methods: distill, prune"
    ):
        validate(_recipe("toy"), source="toy.yaml")


def test_registered_method_options_are_validated_by_its_schema(toy_method) -> None:
    bad = _recipe("toy")
    bad["variants"][0]["steps"][0]["factr"] = 1.0
    with pytest.raises(
        Exception, match=r"steps\.0\.factr: unknown key 'factr'; did you mean 'factor'"
    ):
        validate(bad, source="toy.yaml")
    recipe = validate(_recipe("toy"), source="toy.yaml")
    assert type(recipe.variants[0].steps[0]).__name__ == "ScaleStep"


@pytest.mark.parametrize("workers", [1, 2])
def test_registered_method_runs_from_a_recipe_and_its_export_rule_applies(
    toy_method, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    from tfhsi.recipes.executors import LocalExecutor

    monkeypatch.setenv("TFHSI_CACHE_DIR", str(tmp_path / "cache"))
    recipe = validate(_recipe(f"toy{workers}"), source="toy.yaml")
    run_dir = run_recipe(
        recipe, out=tmp_path / "run", log=lambda _: None, executor=LocalExecutor(workers)
    )
    rows = json.loads((run_dir / "results.json").read_text())["rows"]
    scaled = [r for r in rows if r["variant"] == "scaled"]
    assert not [r for r in scaled if r.get("error")], scaled
    assert [r["format"] for r in scaled] == ["keras", "fp32"]  # int8 filtered by the method
    assert scaled[0]["stage"] == "toy_scale"
    done = json.loads((run_dir / "seed_0" / "scaled" / "1_toy_scale" / "done.json").read_text())
    assert done["factor"] == 3.0 and done["history"] == ["toy_scale"]
