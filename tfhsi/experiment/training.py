"""Training one model on one scene: split, transform, fit, evaluate, all in a run folder."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tfhsi.atomic import atomic_path, write_json
from tfhsi.data.datasets import open_dataset
from tfhsi.data.prepared import PreparedScene, load_prepared, prepare
from tfhsi.data.scene_data import SceneData
from tfhsi.data.splits import make_split
from tfhsi.env import environment
from tfhsi.errors import ConfigError
from tfhsi.experiment.folders import METRICS_FILE, MODEL_FILE, RUN_FILE, ModelInput
from tfhsi.experiment.spec import ExperimentSpec


def prepare_experiment(
    spec: ExperimentSpec, scene: SceneData, *, run_dir: Path | None = None
) -> PreparedScene:
    """The split and transform of a run: reloaded from ``run_dir`` if saved there, else made."""
    if run_dir is not None and (run_dir / "split.npz").is_file():
        return load_prepared(scene, run_dir)
    patch = spec.patch_size or 1
    split = make_split(
        scene.labels,
        spec.split,
        seed=spec.seed,
        patch_size=patch,
        val_fraction=spec.val_fraction,
        class_names=scene.class_names,
        test_pixels=spec.test_pixels,
    )
    return prepare(scene, split, pca_components=spec.pca)


def train_experiment(
    spec: ExperimentSpec,
    *,
    out_dir: str | Path,
    data_dir: str | Path | None = None,
    resume: bool = False,
    report: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Trains ``spec.model`` on ``spec.dataset`` and evaluates it on the test set.

    A new run that fails before its first epoch leaves nothing behind (nothing to resume);
    later failures and interruptions leave a run that ``resume=True`` continues.

    Returns the metrics record (also written to ``metrics.json``).
    """
    from tfhsi.train.evaluate import evaluate

    out = Path(out_dir)
    if (out / RUN_FILE).is_file() and not resume:
        raise ConfigError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out."
        )
    scene = open_dataset(spec.dataset, data_dir=data_dir)
    spec = spec.resolved(scene.n_bands)
    if resume and (out / RUN_FILE).is_file():
        saved = ExperimentSpec.from_dict(json.loads((out / RUN_FILE).read_text())["spec"])
        if saved != spec:
            raise ConfigError(
                f"--resume in {out}: the options differ from the interrupted run's ({RUN_FILE}); "
                "resume with the same options or choose another --out."
            )
    started = time.perf_counter()
    prepared = prepare_experiment(spec, scene, run_dir=out)
    notes = data_notes(prepared)
    for note in notes:
        if report:
            report(f"note: {note}")
    model = build_seeded(spec, prepared)  # a bad model fails here, before anything is written
    model_input = ModelInput.of(model, source=spec.model)
    record = {
        "kind": "train",
        "spec": spec.to_dict(),
        "dataset": {
            "name": scene.name,
            "synthetic": scene.synthetic,
            "shape": list(scene.shape),
            "sources": scene.sources,
        },
        "input": model_input.to_dict(),
        "zero_variance_bands": prepared.transform.zero_variance_bands.tolist(),
        "notes": notes,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
    }
    fresh, created = not (out / RUN_FILE).is_file(), not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        prepared.save(out)
        write_json(out / RUN_FILE, record)
        result, stream = _fit(
            spec, prepared, model, model_input, out=out, resume=resume, report=report
        )
    except BaseException:
        from tfhsi.train.fit import HISTORY

        if fresh and not (out / HISTORY).is_file():
            _discard_unstarted(out, created=created)  # nothing to resume: no half-made run
        raise
    with atomic_path(out / MODEL_FILE) as tmp:
        model.save(str(tmp))
    metrics = evaluate(model.predict_on_batch, stream("test"), class_names=scene.class_names)
    summary = {
        "dataset": scene.display_name,
        "model": spec.model,
        "split": spec.split,
        "seed": spec.seed,
        "parameters": int(model.count_params()),
        "leakage": prepared.split.leakage(),
        "pixels": {s: int(prepared.split.mask(s).sum()) for s in ("train", "val", "test")},
        "epochs_run": result.epochs_run if result else 0,
        "best_epoch": result.best_epoch if result else None,
        "train_time_s": result.wall_time_s if result else 0.0,
        "wall_time_s": time.perf_counter() - started,
        "keras": metrics.to_dict(),
    }
    write_json(out / METRICS_FILE, summary)
    return summary


def build_seeded(spec: ExperimentSpec, prepared: PreparedScene) -> Any:
    """The run's model, built (or loaded) right after seeding everything."""
    from tfhsi.train.fit import seed_everything

    # Seed before the model and the datasets exist: their shuffle and augmentation seeds
    # combine with the global seed when they are built, so a second run in one process must
    # not inherit the first one's (same options and seed → same run, in a fresh process or not).
    seed_everything(spec.seed, deterministic=spec.train.deterministic)
    return spec.source().build(
        bands=prepared.bands,
        n_classes=prepared.scene.n_classes,
        patch_size=spec.patch_size or 1,
        width=spec.width,
        seed=spec.seed,
    )


def _fit(
    spec: ExperimentSpec,
    prepared: PreparedScene,
    model: Any,
    model_input: ModelInput,
    *,
    out: Path,
    resume: bool,
    report: Callable[[str], None] | None,
) -> tuple[Any, Callable[..., Any]]:
    """Trains the model of a run (a pretrained one is used as given); returns (TrainResult or
    None, stream factory)."""
    from dataclasses import replace

    from tfhsi.models import trains_with_xla
    from tfhsi.train.fit import balanced_class_weights, train_model

    scene = prepared.scene

    def stream(subset: str, *, training: bool = False):
        return prepared.dataset(
            subset,
            patch_size=model_input.patch,
            layout=model_input.layout,
            batch_size=spec.batch_size,
            shuffle=training,
            seed=spec.seed,
            augment=training and spec.augment,
        )

    if spec.pretrained:
        if report:
            report(f"{spec.model}: pretrained, used as given (not trained)")
        return None, stream
    weights = (
        balanced_class_weights(prepared.targets("train"), scene.n_classes)
        if spec.class_weights
        else None
    )
    selection = prepared.selection_subset()  # never the test pixels
    result = train_model(
        model,
        stream("train", training=True),
        None if selection is None else stream(selection),
        config=replace(
            spec.train,
            jit_compile=spec.train.jit_compile or trains_with_xla(model, spec.train.epochs),
        ),
        out_dir=out,
        resume=resume,
        class_weight=weights,
        report=report,
    )
    return result, stream


def data_notes(prepared: PreparedScene) -> list[str]:
    """What the user should know about a run's data: split notes and constant bands."""
    notes = list(prepared.split.notes)
    constant = prepared.transform.zero_variance_bands.tolist()
    if constant:
        shown = ", ".join(map(str, constant[:20])) + (" …" if len(constant) > 20 else "")
        notes.append(
            f"{len(constant)} band(s) of {prepared.scene.display_name} are constant over the "
            f"training pixels (0-based: {shown}); they carry no information and are set to 0 "
            "after standardisation. Drop them from the cube if that is unexpected."
        )
    return notes


def _discard_unstarted(out: Path, *, created: bool) -> None:
    """Removes what a new run wrote before its first epoch (and ``out`` if it made it)."""
    import shutil

    from tfhsi.data.prepared import SPLIT_FILE, TRANSFORM_FILE
    from tfhsi.train.fit import BACKUP_DIR, BEST_WEIGHTS

    for name in (RUN_FILE, SPLIT_FILE, TRANSFORM_FILE, BEST_WEIGHTS):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / BACKUP_DIR, ignore_errors=True)
    if created:
        shutil.rmtree(out, ignore_errors=True)
