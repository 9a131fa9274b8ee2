"""What a recipe does with one seed's teacher: its own rows, and each variant's stages,
exports, measurements and map. Combining methods (KD → prune → QAT) happens here, by running
each registered method of the variant's steps in order."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from tfhsi.atomic import write_json
from tfhsi.data.prepared import prepare
from tfhsi.data.scene_data import SceneData
from tfhsi.methods import METHODS, ModelState, StepContext, run_step
from tfhsi.recipes.maps import draw_map, map_deployed
from tfhsi.recipes.quant_reports import AEQ_PRESETS, QUANT_REPORT, write_quant_report
from tfhsi.recipes.schema import ModelSection, Recipe, TrainSection, Variant
from tfhsi.recipes.sharing import run_stage, stage_key
from tfhsi.recipes.teachers import teacher_state

Log = Callable[[str], None]
TEACHER = "teacher"


def _settings(recipe: Recipe, scene: SceneData):
    from tfhsi.recipes.deploy import DeploySettings

    return DeploySettings(
        targets=tuple(recipe.targets),
        latency_runs=recipe.profile.latency_runs,
        threads=recipe.profile.threads[0],
        tflm=recipe.profile.tflm,
        class_names=scene.class_names,
    )


def teacher_task(
    recipe: Recipe, seed: int, scene: SceneData, folder: Path, run_dir: Path, *, data_dir: Any,
    log: Log,
) -> list[dict[str, Any]]:  # fmt: skip
    """Trains or reuses the teacher; its Keras and fp32 .tflite rows (and map)."""
    from tfhsi.experiment import METRICS_FILE, TEACHER_FILE
    from tfhsi.recipes.deploy import export_rows, keras_row

    teacher, cached = teacher_state(recipe, seed, scene, data_dir=data_dir, log=log)
    write_json(
        folder / TEACHER_FILE,
        {"cache": str(cached), "metrics": json.loads((cached / METRICS_FILE).read_text())},
    )
    teacher.prepared.save(folder)  # the seed's split masks and fitted transform, in the run
    settings = _settings(recipe, scene)
    base = {"seed": seed, "variant": TEACHER, "model": teacher.name, "stage": TEACHER}
    rows = [{**base, **keras_row(teacher, settings)}]
    if recipe.maps and seed == recipe.seeds[0]:
        rows[0]["map"] = draw_map(
            teacher, teacher.model.predict_on_batch, rows[0], folder / "map_keras.png", run_dir,
            pixels=recipe.map_pixels,
        )  # fmt: skip
    rows += [
        {**base, **r}
        for r in export_rows(teacher, ["fp32"], folder / "export", settings, lower=False, log=log)
    ]
    return rows


def student_state(section: ModelSection, teacher: ModelState, *, seed: int) -> ModelState:
    """A freshly built student on the teacher's split (its own transform, fitted on the same
    training pixels, when its input differs)."""
    from tfhsi.experiment import ModelInput
    from tfhsi.models import resolve_model

    source = resolve_model(section.model, unsafe=section.unsafe)
    scene = teacher.prepared.scene
    patch, pca = source.input_size(scene.n_bands, patch=section.patch, pca=section.pca)
    transform = teacher.prepared.transform
    same = pca == (transform.out_bands if transform.pca_components is not None else None)
    prepared = (
        teacher.prepared if same else prepare(scene, teacher.prepared.split, pca_components=pca)
    )
    model = source.build(
        bands=prepared.bands,
        n_classes=scene.n_classes,
        patch_size=patch,
        width=section.width,
        seed=seed,
    )
    given = ModelInput.of(model, source=section.model)
    return ModelState(model, source.name, given.layout, given.patch, prepared)


def train_student(
    state: ModelState, train: TrainSection, stage_dir: Path, *, seed: int, log: Log
) -> ModelState:
    """Trains a fresh student alone (the reference its distilled twin is compared with)."""
    from tfhsi.models import trains_with_xla
    from tfhsi.train.fit import balanced_class_weights, train_model

    prepared = state.prepared
    train_model(
        state.model,
        state.stream(
            "train", batch_size=train.batch_size, training=True, seed=seed, augment=train.augment
        ),
        state.selection_stream(),
        config=train.config(seed=seed, jit_compile=trains_with_xla(state.model, train.epochs)),
        out_dir=stage_dir,
        resume=True,
        report=log,
        class_weight=balanced_class_weights(prepared.targets("train"), prepared.scene.n_classes)
        if train.class_weights
        else None,
    )
    return state.after("train", state.model)


def _run_step(step: Any, context: StepContext, state: ModelState) -> tuple[ModelState, dict]:
    return run_step(step, state, context)


def variant_task(
    recipe: Recipe, variant: Variant, seed: int, teacher: ModelState, folder: Path, run_dir: Path,
    *, log: Log,
) -> list[dict[str, Any]]:  # fmt: skip
    """The stages of ``variant`` (each resumable), then its exports, measurements and map."""
    from tfhsi.recipes.deploy import export_rows, keras_row

    settings = _settings(recipe, teacher.prepared.scene)
    if variant.student is None:
        state = teacher
    else:
        state = student_state(variant.student, teacher, seed=seed)
        if state.prepared is not teacher.prepared:  # its own transform (e.g. other PCA), same split
            state.prepared.save(folder)
        trains_it = bool(variant.steps) and METHODS.get(variant.steps[0].method).needs_student
        if not trains_it and not variant.student.pretrained:
            stage, section = folder / "0_train", variant.student.train
            state = run_stage(
                state, stage, stage_key(variant, 0), log,
                lambda s: (train_student(s, section, stage, seed=seed, log=log), {}),
            )  # fmt: skip
    lower = variant.lower == "auto"
    for index, step in enumerate(variant.steps, start=1):
        stage = folder / f"{index}_{step.method}"
        context = StepContext(teacher=teacher, stage_dir=stage, seed=seed, lower=lower, log=log)
        state = run_stage(
            state, stage, stage_key(variant, index), log,
            partial(_run_step, step, context),
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
            state,
            list(variant.export),
            folder / "export",
            settings,
            lower=lower,
            log=log,
            keep_int8=variant.keep_int8,
        )
    ]
    if seed == recipe.seeds[0]:
        report = write_quant_report(
            state, list(variant.export), variant.keep_int8, folder, run_dir, log
        )
        if report:
            for row in rows:
                if row["format"] in AEQ_PRESETS:
                    row[QUANT_REPORT] = report
    if recipe.maps and seed == recipe.seeds[0]:
        map_deployed(state, rows, folder, run_dir, pixels=recipe.map_pixels)
    return rows
