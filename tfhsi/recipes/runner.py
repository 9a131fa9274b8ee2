"""Running a recipe: teacher (cached) → variants → deploy rows → results.json → report.

Layout of a run::

    runs/<recipe>/<stamp>/
      recipe.yaml            the resolved recipe (defaults, overrides, --quick applied)
      environment.json       versions, CPU, threads; input sha256
      seed_<s>/teacher.json  where the cached teacher lives, its metrics
      seed_<s>/<variant>/<i>_<method>/   stage checkpoints and done.json
      seed_<s>/<variant>/export/<format>.tflite, <format>.row.json
      results.json, results.csv, report.md, report.html, plots/

Resume is stage by stage: a finished stage has ``done.json``, a measured export has its
``.row.json``; ``--resume`` skips both. Teachers live in a cache keyed by a hash of what
defines them (scene files, split, seed, model, training), shared by all recipes and
guarded by a file lock.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

from tfhsi.atomic import write_json, write_text
from tfhsi.data.datasets import open_dataset
from tfhsi.data.scene_data import SceneData
from tfhsi.env import environment
from tfhsi.errors import ConfigError, TfhsiError
from tfhsi.recipes.resolve import apply_quick, resolved_yaml, stable_hash
from tfhsi.recipes.schema import ModelSection, Recipe, Variant

Log = Callable[[str], None]
CACHE_ENV = "TFHSI_CACHE_DIR"


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


def ensure_teacher(recipe: Recipe, seed: int, scene: SceneData, *, data_dir: Any, log: Log) -> Path:
    """The cached teacher run directory for ``seed``, trained (or resumed) if needed."""
    from tfhsi.experiment import METRICS_FILE, train_experiment

    spec = teacher_spec(recipe, recipe.teacher, seed).resolved(scene.n_bands)
    key = stable_hash(
        {"spec": spec.to_dict(), "scene": scene.name, "sources": scene.sources, "format": 1}
    )
    folder = cache_dir() / "teachers" / f"{spec.model}-{key[:16]}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if (folder / METRICS_FILE).is_file():
            log(f"teacher {spec.model} seed {seed}: cached ({folder})")
            return folder
        log(f"teacher {spec.model} seed {seed}: training → {folder}")
        train_experiment(
            spec, out_dir=folder, data_dir=data_dir, resume=folder.exists(), report=log
        )
    return folder


def new_run_dir(recipe: Recipe, out: Path | None, resume: bool) -> Path:
    if out is not None:
        if out.exists() and any(out.iterdir()) and not resume:
            raise ConfigError(
                f"{out} is not empty; pass --resume to continue that run or choose another --out."
            )
        return out
    base = Path("runs") / recipe.name
    if resume:
        existing = (
            sorted(p for p in base.glob("*") if (p / "recipe.yaml").is_file())
            if base.is_dir()
            else []
        )
        if not existing:
            raise ConfigError(
                f"--resume: no earlier run of {recipe.name} under {base}; run without --resume."
            )
        return existing[-1]
    return base / datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


def run_recipe(
    recipe: Recipe,
    *,
    quick: bool = False,
    out: Path | None = None,
    resume: bool = False,
    data_dir: Any = None,
    log: Log = print,
    command: str | None = None,
) -> Path:
    """Runs ``recipe`` and writes its results and report; returns the run directory."""
    started = time.perf_counter()
    effective = apply_quick(recipe) if quick else recipe
    # Fail before creating anything: a missing scene stops here with its download command.
    scene = open_dataset(effective.dataset, data_dir=data_dir)
    run_dir = new_run_dir(effective, out, resume)
    saved = run_dir / "recipe.yaml"
    if (
        resume
        and saved.is_file()
        and saved.read_text(encoding="utf-8") != resolved_yaml(recipe, quick=quick)
    ):
        raise ConfigError(
            f"--resume: {saved} differs from this recipe; resume with the same recipe, overrides and --quick."
        )
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "recipe.yaml", resolved_yaml(recipe, quick=quick))
        write_json(run_dir / "environment.json", {**environment(), "inputs": scene.sources})
        rows = []
        for seed in effective.seeds:
            rows += _run_seed(effective, seed, scene, run_dir, data_dir=data_dir, log=log)
        results = _results(effective, scene, rows, quick=quick, started=started, command=command)
        _finish(run_dir, results, log)
    except BaseException:
        if created and not (run_dir / "seed_0").exists() and not any(run_dir.glob("seed_*")):
            shutil.rmtree(
                run_dir, ignore_errors=True
            )  # nothing worth resuming: leave no half-made run
        raise
    return run_dir


def _run_seed(
    recipe: Recipe, seed: int, scene: SceneData, run_dir: Path, *, data_dir: Any, log: Log
) -> list[dict[str, Any]]:
    from tfhsi.experiment import load_run
    from tfhsi.models import MODELS
    from tfhsi.recipes.deploy import DeploySettings, export_rows, keras_row
    from tfhsi.recipes.stages import ModelState

    seed_dir = run_dir / f"seed_{seed}"
    teacher_dir = ensure_teacher(recipe, seed, scene, data_dir=data_dir, log=log)
    loaded = load_run(teacher_dir, data_dir=data_dir)
    from tfhsi._keras import keras

    teacher_model = keras.models.load_model(str(teacher_dir / "model.keras"), compile=False)
    teacher = ModelState(
        teacher_model,
        loaded.spec.model,
        MODELS.get(loaded.spec.model).layout,
        loaded.patch_size,
        loaded.prepared,
    )
    write_json(
        seed_dir / "teacher.json",
        {
            "cache": str(teacher_dir),
            "metrics": json.loads((teacher_dir / "metrics.json").read_text()),
        },
    )
    settings = DeploySettings(
        targets=tuple(recipe.targets),
        latency_runs=recipe.profile.latency_runs,
        threads=recipe.profile.threads[0],
        tflm=recipe.profile.tflm,
        class_names=scene.class_names,
    )
    base = {"seed": seed, "variant": "teacher", "model": teacher.name, "stage": "teacher"}
    rows = [{**base, **keras_row(teacher, settings)}]
    rows += [
        {**base, **r}
        for r in export_rows(
            teacher, ["fp32"], seed_dir / "teacher" / "export", settings, lower=False, log=log
        )
    ]
    for variant in recipe.variants:
        log(f"seed {seed} · variant {variant.name}")
        try:
            rows += _run_variant(
                recipe, variant, seed, teacher, seed_dir / variant.name, settings, log
            )
        except TfhsiError as exc:  # recorded as a failed row; the sweep goes on
            rows.append({"seed": seed, "variant": variant.name, "format": "-", "error": str(exc)})
    return rows


def _run_variant(
    recipe: Recipe, variant: Variant, seed: int, teacher, folder: Path, settings, log: Log
) -> list[dict[str, Any]]:
    from tfhsi.recipes.deploy import export_rows, keras_row
    from tfhsi.recipes.stages import load_state, run_step, student_state, train_student

    if variant.student is None:
        state = teacher
    else:
        state = student_state(variant.student, teacher, seed=seed)
        distilled = bool(variant.steps) and variant.steps[0].method == "distill"
        if not distilled:
            stage = folder / "0_train"
            state = load_state(state, stage) or _save(
                train_student(state, variant.student.train, stage, seed=seed, log=log), stage, {}
            )
    lower = variant.lower == "auto"
    for index, step in enumerate(variant.steps, start=1):
        stage = folder / f"{index}_{step.method}"
        restored = load_state(state, stage)
        if restored is not None:
            state = restored
            continue
        state, info = run_step(step, state, teacher, stage, seed=seed, lower=lower, log=log)
        _save(state, stage, info)
    base = {
        "seed": seed,
        "variant": variant.name,
        "model": state.name,
        "stage": "+".join(state.history) or "teacher",
    }
    rows = [{**base, **keras_row(state, settings)}]
    rows += [
        {**base, **r}
        for r in export_rows(
            state, list(variant.export), folder / "export", settings, lower=lower, log=log
        )
    ]
    return rows


def _save(state, stage: Path, info: dict[str, Any]):
    from tfhsi.recipes.stages import save_state

    save_state(state, stage, info)
    return state


def _results(
    recipe: Recipe,
    scene: SceneData,
    rows: list[dict[str, Any]],
    *,
    quick: bool,
    started: float,
    command: str | None,
) -> dict[str, Any]:
    return {
        "recipe": recipe.name,
        "description": recipe.description,
        "quick": quick,
        "dataset": {
            "name": scene.name,
            "display": scene.display_name,
            "synthetic": scene.synthetic,
            "shape": list(scene.shape),
            "sources": scene.sources,
        },
        "split": recipe.split,
        "seeds": list(recipe.seeds),
        "class_names": list(scene.class_names),
        "targets": list(recipe.targets),
        "environment": environment(),
        "command": command or f"tfhsi recipe run {recipe.name}" + (" --quick" if quick else ""),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": time.perf_counter() - started,
        "rows": rows,
    }


def _finish(run_dir: Path, results: dict[str, Any], log: Log) -> None:
    from tfhsi.report.build import build_report

    write_json(run_dir / "results.json", results)
    build_report(run_dir)
