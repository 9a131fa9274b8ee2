"""The units of work of a recipe run, each a plain function of plain values (so an executor
can run it in another process or on another machine):

* the teacher of one seed (:func:`tfhsi.recipes.variants.teacher_task`);
* one variant of one seed (:func:`tfhsi.recipes.variants.variant_task`).

A finished task leaves ``rows.json`` in its folder; running it again returns those rows
without recomputing (resume, retries after a lost worker).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfhsi import plugins
from tfhsi.atomic import write_json
from tfhsi.data.datasets import open_dataset
from tfhsi.errors import TfhsiError
from tfhsi.recipes.schema import Recipe
from tfhsi.recipes.variants import TEACHER

__all__ = ["ROWS", "TEACHER", "Task", "plan", "run_task"]

Log = Callable[[str], None]
ROWS = "rows.json"


@dataclass(frozen=True)
class Task:
    """One unit of work: the teacher of a seed (``variant=None``) or one variant of a seed."""

    seed: int
    variant: str | None = None

    @property
    def label(self) -> str:
        return f"seed {self.seed} · {self.variant or TEACHER}"

    def folder(self, run_dir: Path) -> Path:
        return run_dir / f"seed_{self.seed}" / (self.variant or TEACHER)


def plan(recipe: Recipe) -> tuple[list[Task], list[Task]]:
    """Teacher tasks (one per seed), then variant tasks (each needs its seed's teacher)."""
    teachers = [Task(seed) for seed in recipe.seeds]
    variants = [Task(seed, v.name) for seed in recipe.seeds for v in recipe.variants]
    return teachers, variants


def run_task(
    recipe_data: dict[str, Any],
    task: Task,
    run_dir: str,
    data_dir: str | None,
    log: Log = print,
    plugin_modules: Sequence[tuple[str, str | None]] = (),
) -> list[dict[str, Any]]:
    """Runs ``task`` (or returns its saved rows); a failure becomes an error row, not a crash.

    ``plugin_modules`` (:func:`tfhsi.plugins.sources` of the parent) are imported first, so a
    worker process knows the methods and models the parent registered at run time.
    """
    from tfhsi.recipes.teachers import teacher_state
    from tfhsi.recipes.variants import teacher_task, variant_task

    plugins.load(list(plugin_modules))
    recipe = Recipe.model_validate(recipe_data)
    folder = task.folder(Path(run_dir))
    saved = folder / ROWS
    if saved.is_file():
        return json.loads(saved.read_text(encoding="utf-8"))
    scene = open_dataset(recipe.dataset, data_dir=data_dir)
    try:
        if task.variant is None:
            rows = teacher_task(
                recipe, task.seed, scene, folder, Path(run_dir), data_dir=data_dir, log=log
            )
        else:
            variant = next(v for v in recipe.variants if v.name == task.variant)
            teacher, _ = teacher_state(recipe, task.seed, scene, data_dir=data_dir, log=log)
            rows = variant_task(recipe, variant, task.seed, teacher, folder, Path(run_dir), log=log)
    except TfhsiError as exc:  # a failed row, not saved: the sweep goes on, a resume retries
        return [
            {
                "seed": task.seed,
                "variant": task.variant or TEACHER,
                "format": "-",
                "error": str(exc),
            }
        ]
    write_json(saved, rows)
    return rows
