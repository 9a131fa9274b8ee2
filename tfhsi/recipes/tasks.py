"""The units of work of a recipe run, each a plain function of plain values (so an executor
can run it in another process or on another machine):

* :func:`teacher_task` — train (or reuse from the cache) the teacher of one seed;
* :func:`variant_task` — one variant of one seed: its stages, exports and measurements.

A finished task leaves ``rows.json`` in its folder; running it again returns those rows
without recomputing (resume, retries after a lost worker).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from filelock import FileLock

from tfhsi.atomic import write_json
from tfhsi.data.datasets import open_dataset
from tfhsi.data.scene_data import SceneData
from tfhsi.errors import TfhsiError
from tfhsi.recipes.resolve import stable_hash
from tfhsi.recipes.schema import ModelSection, Recipe, Variant

Log = Callable[[str], None]
CACHE_ENV = "TFHSI_CACHE_DIR"
ROWS = "rows.json"
TEACHER = "teacher"


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


def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("tfhsi"))


def teacher_spec(recipe: Recipe, section: ModelSection, seed: int):
    from tfhsi.experiment import ExperimentSpec
    from tfhsi.train.config import TrainConfig

    train = section.train
    return ExperimentSpec(
        dataset=recipe.dataset,
        model=section.model,
        split=recipe.split,
        seed=seed,
        patch_size=section.patch,
        pca=section.pca,
        width=section.width,
        val_fraction=recipe.val_fraction,
        batch_size=train.batch_size,
        augment=train.augment,
        class_weights=train.class_weights,
        train=TrainConfig(
            epochs=train.epochs,
            learning_rate=train.lr,
            schedule=train.schedule,
            patience=train.patience,
            seed=seed,
        ),
    )


def cached_training(spec: Any, scene: SceneData, *, data_dir: Any, log: Log) -> Path:
    """The cache folder of the training run defined by ``spec``, trained (or resumed) if needed.

    The key hashes the resolved :class:`~tfhsi.experiment.ExperimentSpec` and the scene's
    file checksums, so any recipe or tool asking for the same model reuses it; a file lock
    makes a concurrent caller wait instead of training it twice.
    """
    from tfhsi.experiment import METRICS_FILE, train_experiment

    spec = spec.resolved(scene.n_bands)
    key = stable_hash(
        {"spec": spec.to_dict(), "scene": scene.name, "sources": scene.sources, "format": 1}
    )
    folder = cache_dir() / "teachers" / f"{spec.model}-{key[:16]}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if (folder / METRICS_FILE).is_file():
            log(f"{spec.model} seed {spec.seed}: cached ({folder})")
            return folder
        log(f"{spec.model} seed {spec.seed}: training → {folder}")
        train_experiment(
            spec, out_dir=folder, data_dir=data_dir, resume=folder.exists(), report=log
        )
    return folder


def ensure_teacher(recipe: Recipe, seed: int, scene: SceneData, *, data_dir: Any, log: Log) -> Path:
    """The cached teacher run directory for ``seed``, trained (or resumed) if needed."""
    return cached_training(
        teacher_spec(recipe, recipe.teacher, seed), scene, data_dir=data_dir, log=log
    )


def run_task(
    recipe_data: dict[str, Any], task: Task, run_dir: str, data_dir: str | None, log: Log = print
) -> list[dict[str, Any]]:
    """Runs ``task`` (or returns its saved rows); a failure becomes an error row, not a crash."""
    recipe = Recipe.model_validate(recipe_data)
    folder = task.folder(Path(run_dir))
    saved = folder / ROWS
    if saved.is_file():
        return json.loads(saved.read_text(encoding="utf-8"))
    scene = open_dataset(recipe.dataset, data_dir=data_dir)
    try:
        if task.variant is None:
            rows = teacher_task(recipe, task.seed, scene, Path(run_dir), data_dir=data_dir, log=log)
        else:
            variant = next(v for v in recipe.variants if v.name == task.variant)
            teacher, _ = _teacher_state(recipe, task.seed, scene, data_dir=data_dir, log=log)
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


def _settings(recipe: Recipe, scene: SceneData):
    from tfhsi.recipes.deploy import DeploySettings

    return DeploySettings(
        targets=tuple(recipe.targets),
        latency_runs=recipe.profile.latency_runs,
        threads=recipe.profile.threads[0],
        tflm=recipe.profile.tflm,
        class_names=scene.class_names,
    )


def _teacher_state(recipe: Recipe, seed: int, scene: SceneData, *, data_dir: Any, log: Log):
    from tfhsi._keras import keras
    from tfhsi.experiment import load_run
    from tfhsi.models import MODELS
    from tfhsi.recipes.stages import ModelState

    teacher_dir = ensure_teacher(recipe, seed, scene, data_dir=data_dir, log=log)
    loaded = load_run(teacher_dir, data_dir=data_dir)
    model = keras.models.load_model(str(teacher_dir / "model.keras"), compile=False)
    spec = MODELS.get(loaded.spec.model)
    return ModelState(
        model, loaded.spec.model, spec.layout, loaded.patch_size, loaded.prepared
    ), teacher_dir


def teacher_task(
    recipe: Recipe, seed: int, scene: SceneData, run_dir: Path, *, data_dir: Any, log: Log
) -> list[dict[str, Any]]:
    """Trains or reuses the teacher; its Keras and fp32 .tflite rows (and map)."""
    from tfhsi.experiment import TEACHER_FILE
    from tfhsi.recipes.deploy import export_rows, keras_row

    teacher, teacher_dir = _teacher_state(recipe, seed, scene, data_dir=data_dir, log=log)
    folder = Task(seed).folder(run_dir)
    write_json(
        folder / TEACHER_FILE,
        {
            "cache": str(teacher_dir),
            "metrics": json.loads((teacher_dir / "metrics.json").read_text()),
        },
    )
    teacher.prepared.save(folder)  # the seed's split masks and fitted transform, in the run
    settings = _settings(recipe, scene)
    base = {"seed": seed, "variant": TEACHER, "model": teacher.name, "stage": TEACHER}
    rows = [{**base, **keras_row(teacher, settings)}]
    if recipe.maps and seed == recipe.seeds[0]:
        rows[0]["map"] = _map(
            teacher, teacher.model.predict_on_batch, rows[0], folder / "map_keras.png", run_dir
        )
    rows += [
        {**base, **r}
        for r in export_rows(teacher, ["fp32"], folder / "export", settings, lower=False, log=log)
    ]
    return rows


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


def _shared_stage(state, stage: Path, key: str, log: Log):
    """Copies a finished stage with the same key from a sibling variant of the same seed.

    Returns the restored state (also saved into ``stage``, so the variant stays self-contained
    and resumable), or None when no sibling has it.
    """
    from tfhsi.recipes.stages import DONE, load_state, save_state

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


def _stage(state, stage: Path, key: str, log: Log, run):
    """The state after ``stage``: read back, copied from a sibling variant's identical stage, or
    ``run(state) -> (state, info)`` and saved with its key."""
    from tfhsi.recipes.stages import load_state, save_state

    restored = load_state(state, stage) or _shared_stage(state, stage, key, log)
    if restored is not None:
        return restored
    state, info = run(state)
    save_state(state, stage, {**info, STAGE_KEY: key})
    return state


def variant_task(
    recipe: Recipe, variant: Variant, seed: int, teacher, folder: Path, run_dir: Path, *, log: Log
) -> list[dict[str, Any]]:
    """The stages of ``variant`` (each resumable), then its exports, measurements and map."""
    from tfhsi.recipes.deploy import export_rows, keras_row
    from tfhsi.recipes.stages import run_step, student_state, train_student

    settings = _settings(recipe, teacher.prepared.scene)
    if variant.student is None:
        state = teacher
    else:
        state = student_state(variant.student, teacher, seed=seed)
        if state.prepared is not teacher.prepared:  # its own transform (e.g. other PCA), same split
            state.prepared.save(folder)
        distilled = bool(variant.steps) and variant.steps[0].method == "distill"
        if not distilled:
            stage, section = folder / "0_train", variant.student.train
            state = _stage(
                state, stage, stage_key(variant, 0), log,
                lambda s: (train_student(s, section, stage, seed=seed, log=log), {}),
            )  # fmt: skip
    lower = variant.lower == "auto"
    for index, step in enumerate(variant.steps, start=1):
        stage = folder / f"{index}_{step.method}"
        state = _stage(
            state, stage, stage_key(variant, index), log,
            lambda s, step=step, stage=stage: run_step(
                step, s, teacher, stage, seed=seed, lower=lower, log=log
            ),
        )  # fmt: skip
    base = {
        "seed": seed,
        "variant": variant.name,
        "model": state.name,
        "stage": "+".join(state.history) or TEACHER,
    }
    rows = [{**base, **keras_row(state, settings)}]
    rows += [
        {**base, **r}
        for r in export_rows(
            state, list(variant.export), folder / "export", settings, lower=lower, log=log
        )
    ]
    if recipe.maps and seed == recipe.seeds[0]:
        _map_deployed(state, rows, folder, run_dir)
    return rows


def _map_deployed(state, rows: list[dict[str, Any]], folder: Path, run_dir: Path) -> None:
    """Draws the map of the variant's most deployable export: full int8, then int8, then any."""
    from tfhsi.profile.interpreter import TFLiteModel

    exported = [r for r in rows if r.get("tflite") and not r.get("error")]
    if not exported:
        return
    row = max(
        exported,
        key=lambda r: (bool(r.get("full_int8")), r["format"].startswith("int8"), r.get("oa") or 0),
    )
    layout = "2d" if row["format"].endswith("-lowered") else state.layout
    model = TFLiteModel(row["tflite"])
    path = folder / f"map_{row['format']}.png"
    row["map"] = _map(replace(state, layout=layout), model.predict, row, path, run_dir)


def _map(state, predict, row: dict[str, Any], path: Path, run_dir: Path) -> str:
    """Renders false colour | truth | prediction | test errors; returns the path in the run."""
    from tfhsi.experiment import predict_scene
    from tfhsi.report.maps import false_colour, save_maps

    scene = state.prepared.scene
    big = scene.labels.size > 50_000  # large scenes: labelled pixels only (the rest is unscored)
    predicted = predict_scene(
        predict, state.prepared, patch_size=state.patch, layout=state.layout, labelled_only=big
    )
    oa = 100 * (row.get("oa") or 0)
    save_maps(
        path,
        truth=scene.labels,
        predicted=predicted,
        class_names=scene.class_names,
        title=f"{scene.display_name}: {row['variant']} {row['format']}, OA {oa:.2f} % "
        "(errors on test pixels)",
        composite=false_colour(scene.cube, scene.rgb_bands),
        mask=state.prepared.split.test,
    )
    return str(path.relative_to(run_dir))
