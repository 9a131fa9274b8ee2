"""Stages of a variant: read back when finished, copied from an identical stage of a sibling
variant of the same seed, or run and saved with the key that identifies them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfhsi.methods import DONE, ModelState, load_state, save_state
from tfhsi.recipes.resolve import stable_hash
from tfhsi.recipes.schema import Variant

Log = Callable[[str], None]
STAGE_KEY = "stage_key"
"""done.json field: what produced the stage (start model and steps so far), for sharing."""


def stage_key(variant: Variant, steps_done: int) -> str:
    """Identifies the model after ``steps_done`` steps of ``variant`` within one seed: variants
    with the same student and the same first steps (e.g. ``student3d_kd`` and a chain starting
    with that distillation) produce the same model there."""
    return stable_hash(
        {
            "student": None if variant.student is None else variant.student.model_dump(mode="json"),
            "steps": [s.model_dump(mode="json") for s in variant.steps[:steps_done]],
            "lower": variant.lower,
        }
    )


def _shared_stage(state: ModelState, stage: Path, key: str, log: Log) -> ModelState | None:
    """Copies a finished stage with the same key from a sibling variant of the same seed.

    Returns the restored state (also saved into ``stage``, so the variant stays self-contained
    and resumable), or None when no sibling has it.
    """
    for done in sorted(stage.parent.parent.glob(f"*/{stage.name}/{DONE}")):
        if done.parent == stage:
            continue
        try:
            meta = json.loads(done.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if meta.get(STAGE_KEY) != key:
            continue
        restored = load_state(state, done.parent)
        if restored is not None:
            log(f"  {stage.name}: same as {done.parent.parent.name}/{stage.name}, reused")
            save_state(restored, stage, meta)
            return restored
    return None


def run_stage(
    state: ModelState,
    stage: Path,
    key: str,
    log: Log,
    run: Callable[[ModelState], tuple[ModelState, dict[str, Any]]],
) -> ModelState:
    """The state after ``stage``: read back, copied from a sibling variant's identical stage, or
    ``run(state) -> (state, info)`` and saved with its key."""
    restored = load_state(state, stage) or _shared_stage(state, stage, key, log)
    if restored is not None:
        return restored
    state, info = run(state)
    save_state(state, stage, {**info, STAGE_KEY: key})
    return state
