"""The resolved recipe: defaults filled in, ``--quick`` applied; what a run saves and hashes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

from tfhsi.methods import StepOptions
from tfhsi.recipes.schema import ModelSection, Recipe, TrainSection


def apply_quick(recipe: Recipe) -> Recipe:
    """Caps training at ``quick.epochs``, distillation's transfer set at ``quick.unlabelled``,
    seeds at ``quick.seeds``, timings at ``quick.latency_runs`` and test pixels at
    ``quick.test_pixels``; maps cover the scored pixels."""
    cap = recipe.quick.epochs

    def train(section: TrainSection) -> TrainSection:
        return section.model_copy(update={"epochs": min(section.epochs, cap)})

    def model(section: ModelSection | None) -> ModelSection | None:
        return (
            None if section is None else section.model_copy(update={"train": train(section.train)})
        )

    variants = [
        v.model_copy(
            update={
                "student": model(v.student),
                "steps": [_capped(s, cap, recipe.quick.unlabelled) for s in v.steps],
            }
        )
        for v in recipe.variants
    ]
    profile = recipe.profile.model_copy(
        update={"latency_runs": min(recipe.profile.latency_runs, recipe.quick.latency_runs)}
    )
    return recipe.model_copy(
        update={
            "teacher": model(recipe.teacher),
            "variants": variants,
            "profile": profile,
            "seeds": recipe.seeds[: recipe.quick.seeds],
            "test_pixels": min(
                recipe.test_pixels or recipe.quick.test_pixels, recipe.quick.test_pixels
            ),
            "map_pixels": "scored",
        }
    )


def _capped(step: StepOptions, epochs: int, unlabelled: float) -> StepOptions:
    """The step with its ``epochs`` and transfer set (``unlabelled``), where the method has
    them, capped."""
    update: dict[str, Any] = {}
    if isinstance(getattr(step, "epochs", None), int):
        update["epochs"] = min(step.epochs, epochs)  # type: ignore[attr-defined]
    if isinstance(getattr(step, "unlabelled", None), float):
        update["unlabelled"] = min(step.unlabelled, unlabelled)  # type: ignore[attr-defined]
    return step.model_copy(update=update)


def resolved_dict(recipe: Recipe, *, quick: bool) -> dict[str, Any]:
    data = (apply_quick(recipe) if quick else recipe).model_dump(mode="json")
    data["quick_mode"] = quick
    return data


def resolved_yaml(recipe: Recipe, *, quick: bool) -> str:
    return yaml.safe_dump(resolved_dict(recipe, quick=quick), sort_keys=False, allow_unicode=True)


def stable_hash(data: Any) -> str:
    """sha256 of canonical JSON: the cache key of whatever ``data`` defines."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
