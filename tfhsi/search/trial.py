"""One trial, in a worker: the trial's one-variant recipe through the recipe machinery.

A trial is a generated :class:`~tfhsi.recipes.schema.Variant` (see
:func:`tfhsi.search.space.variant_data`) of a generated recipe (the search's scene, split,
seed, teacher and target). It uses the recipe runner's pieces: the teacher from the teacher
cache (:func:`tfhsi.recipes.teachers.teacher_state`), the fresh student
(:func:`tfhsi.recipes.variants.student_state`), resumable stages shared between trials with the
same first steps (:func:`tfhsi.recipes.sharing.run_stage`; trial folders are siblings) and the
one export path (:func:`tfhsi.deployment.export_tflite` / :func:`~tfhsi.deployment.measure`).
Unlike a recipe variant it is scored on the **validation** pixels only: no test pixel is
read during the search.

Before training, the untrained student is converted and measured: an int8 file's arena and
flash do not depend on the weights, so a trial that cannot fit is rejected in seconds.

A finished trial leaves ``result.json`` in its folder; running it again returns that.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from tfhsi import plugins
from tfhsi.atomic import write_json
from tfhsi.errors import ConfigError, TfhsiError
from tfhsi.search.constraints import Budget, Figures, broken, violations

Log = Callable[[str], None]
RESULT = "result.json"
TEACHER_DIR = "teacher"


def trial_name(number: int) -> str:
    return f"trial_{number:04d}"


def trial_dir(search_dir: str | Path, number: int) -> Path:
    return Path(search_dir) / "trials" / trial_name(number)


def _recipe(job: dict[str, Any], variants: list[dict[str, Any]]):
    from tfhsi.recipes.schema import Recipe

    return Recipe.model_validate({**job["recipe"], "variants": variants})


def evaluate_file(path: Path, prepared: Any, subset: str) -> Any:
    """OA/AA/Kappa of the ``.tflite`` at ``path`` on ``subset`` of ``prepared`` (patches and
    input values as the file says: :func:`tfhsi.experiment.prediction.evaluate_file`)."""
    from tfhsi.experiment.prediction import evaluate_file as evaluate_model_file

    return evaluate_model_file(path, prepared, subset=subset, threads=1)


def run_teacher(
    job: dict[str, Any], log: Log = print, plugin_modules: Sequence[tuple[str, str | None]] = ()
) -> dict[str, Any]:
    """Trains (or finds in the cache) the search's teacher; saves its split and transform in
    ``DIR/teacher``; returns where it lives (its test figures are not read here)."""
    from tfhsi.data.datasets import open_dataset
    from tfhsi.recipes.teachers import teacher_state

    plugins.load(list(plugin_modules))
    recipe = _recipe(job, [])
    scene = open_dataset(recipe.dataset, data_dir=job["data_dir"])
    state, cached = teacher_state(recipe, recipe.seeds[0], scene, data_dir=job["data_dir"], log=log)
    if state.prepared.selection_subset() is None:
        raise ConfigError(
            f"the search needs validation pixels to score trials, but split {recipe.split!r} "
            "with val_fraction 0 has none; set val_fraction > 0 (e.g. 0.05)."
        )
    folder = Path(job["dir"]) / TEACHER_DIR
    state.prepared.save(folder)
    info = {"cache": str(cached), "model": state.name, "val_subset": "val"}
    write_json(folder / "teacher.json", info)
    return info


def run_trial(
    job: dict[str, Any],
    number: int,
    params: dict[str, Any],
    log: Log = print,
    plugin_modules: Sequence[tuple[str, str | None]] = (),
) -> dict[str, Any]:
    """Runs trial ``number`` with ``params`` (or returns its saved result).

    Returns:
        The trial's record: ``state`` is ``complete`` (trained, exported, measured, scored on
        validation pixels), ``rejected`` (its untrained conversion already breaks the budget)
        or ``failed`` (with ``error``); figures, constraint values and wall time.
    """
    plugins.load(list(plugin_modules))
    folder = trial_dir(job["dir"], number)
    saved = folder / RESULT
    if saved.is_file():
        return json.loads(saved.read_text(encoding="utf-8"))
    started = time.perf_counter()
    record: dict[str, Any] = {"number": number, "params": params}
    try:
        record.update(_run(job, number, params, folder, log))
    except TfhsiError as exc:
        record.update({"state": "failed", "error": str(exc)})
    record["wall_time_s"] = round(time.perf_counter() - started, 2)
    write_json(saved, record)
    return record


def _figures_record(row: dict[str, Any], budget: Budget) -> dict[str, Any]:
    figures = Figures.from_row(row, budget.target)
    return {
        "arena_bytes": figures.arena_bytes,
        "size_bytes": figures.size_bytes,
        "flash_bytes": row.get("targets", {}).get(budget.target, {}).get("flash_needed_bytes"),
        "macs": figures.macs,
        "latency_ms": figures.latency_ms,
        "host_latency_ms": row.get("latency_ms"),
        "precision": row.get("precision"),
        "full_int8": figures.full_int8,
        "fits_target": figures.fits,
        "constraints": violations(figures, budget),
        "broken": broken(figures, budget),
    }


def _measure(data: bytes, budget: Budget, job: dict[str, Any], source: str) -> dict[str, Any]:
    from tfhsi.deployment import measure

    return measure(
        data,
        targets=[budget.target],
        threads=1,
        latency_runs=int(job["latency_runs"]),
        tflm=True,
        source=source,
    ).to_row()


def _step(step: Any, context: Any, state: Any) -> tuple[Any, dict[str, Any]]:
    from tfhsi.methods import run_step

    return run_step(step, state, context)


def _run(
    job: dict[str, Any], number: int, params: dict[str, Any], folder: Path, log: Log
) -> dict[str, Any]:
    from tfhsi._keras import keras
    from tfhsi.data.datasets import open_dataset
    from tfhsi.deployment import export_tflite
    from tfhsi.methods import METHODS, StepContext
    from tfhsi.recipes.sharing import run_stage, stage_key
    from tfhsi.recipes.teachers import teacher_state
    from tfhsi.recipes.variants import student_state, train_student
    from tfhsi.search.space import SearchSpace, variant_data

    keras.backend.clear_session()  # trials in one process (workers=1) do not pile up graphs
    space = SearchSpace.model_validate(job["space"])
    budget = Budget(**job["budget"])
    recipe = _recipe(job, [variant_data(trial_name(number), params, space)])
    variant, seed = recipe.variants[0], recipe.seeds[0]
    scene = open_dataset(recipe.dataset, data_dir=job["data_dir"])
    teacher, _ = teacher_state(recipe, seed, scene, data_dir=job["data_dir"], log=log)
    assert variant.student is not None
    state = student_state(variant.student, teacher, seed=seed)
    state.prepared.save(folder)  # the trial's split (the teacher's) and transform
    preset = variant.export[0]

    # Before training: the untrained file has the trained one's arena, flash and MACs.
    check = export_tflite(
        state.model, preset, folder / "precheck" / f"{preset}.tflite",
        prepared=state.prepared, patch=state.patch, layout=state.layout,
    )  # fmt: skip
    before = _figures_record(_measure(check.data, budget, job, str(check.path)), budget)
    if before["arena_bytes"] is None or any(v > 0 for v in before["constraints"]):
        log(f"trial {number}: rejected before training ({'; '.join(before['broken'])})")
        return {"state": "rejected", "val_oa": None, "val_aa": None, **before}

    trains_it = bool(variant.steps) and METHODS.get(variant.steps[0].method).needs_student
    if not trains_it:
        stage, section = folder / "0_train", variant.student.train
        state = run_stage(
            state, stage, stage_key(variant, 0), log,
            lambda s: (train_student(s, section, stage, seed=seed, log=log), {}),
        )  # fmt: skip
    for index, step in enumerate(variant.steps, start=1):
        stage = folder / f"{index}_{step.method}"
        context = StepContext(teacher=teacher, stage_dir=stage, seed=seed, lower=True, log=log)
        state = run_stage(
            state, stage, stage_key(variant, index), log, partial(_step, step, context)
        )
    exported = export_tflite(
        state.model, preset, folder / "export" / f"{preset}.tflite",
        prepared=state.prepared, patch=state.patch, layout=state.layout,
        lower=not state.lowered,
    )  # fmt: skip
    after = _figures_record(_measure(exported.data, budget, job, str(exported.path)), budget)
    subset = state.prepared.selection_subset()
    if subset is None:
        raise ConfigError("no validation pixels to score the trial; set val_fraction > 0.")
    metrics = evaluate_file(exported.path, replace(state, layout=exported.layout).prepared, subset)
    return {
        "state": "complete",
        "val_oa": float(metrics.oa),
        "val_aa": float(metrics.aa),
        "val_subset": subset,
        "stage": "+".join(state.history),
        "tflite": str(exported.path),
        **after,
    }
