"""The model-changing stages of a variant: train a student, distil, prune, filter-prune,
cluster, QAT — each prepare → train → finalize, saved so a resumed run skips it.

This is where methods are combined (the methods never import each other): a QAT step after
pruning uses prune-preserving QAT, after clustering cluster-preserving QAT, and a 3-D model
is lowered to Conv2D before QAT (TFLite has no int8 CONV_3D), so the QAT'd graph is the one
deployed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tfhsi._keras import keras
from tfhsi.atomic import atomic_path, write_json
from tfhsi.data.patches import Layout
from tfhsi.data.prepared import PreparedScene, prepare
from tfhsi.models import MODELS, build_model
from tfhsi.recipes.schema import (
    ClusterStep,
    DistillStep,
    FilterPruneStep,
    ModelSection,
    PruneStep,
    QatStep,
    Step,
    TrainSection,
)
from tfhsi.train.config import TrainConfig
from tfhsi.train.fit import train_model

Log = Callable[[str], None]
DONE = "done.json"
QAT_MODEL = "model.h5"  # TF-MOT's quantize layers reload from HDF5 only


@dataclass(frozen=True)
class ModelState:
    """A model between stages, with how to feed it."""

    model: keras.Model
    name: str  # zoo architecture
    layout: Layout
    patch: int
    prepared: PreparedScene
    history: tuple[str, ...] = ()  # methods applied so far
    qat: bool = False
    lowered: bool = False

    def stream(
        self,
        subset: str,
        *,
        batch_size: int = 64,
        training: bool = False,
        seed: int = 0,
        augment: bool = False,
        unlabelled: np.ndarray | None = None,
    ):
        return self.prepared.dataset(
            subset,
            patch_size=self.patch,
            layout=self.layout,  # type: ignore[arg-type]
            batch_size=batch_size,
            shuffle=training,
            seed=seed,
            unlabelled=unlabelled,
            augment=training and augment,
        )

    def val_stream(self, batch_size: int = 256):
        subset = "val" if self.prepared.split.val.any() else "test"
        return self.stream(subset, batch_size=batch_size)


def has_conv3d(model: keras.Model) -> bool:
    return any(isinstance(layer, keras.layers.Conv3D) for layer in model.layers)


def _config(
    epochs: int,
    lr: float,
    seed: int,
    *,
    schedule: Literal["cosine", "constant"] = "cosine",
    best_after: int = 0,
) -> TrainConfig:
    """Fine-tuning: no early stopping (the schedules of pruning and QAT need every epoch)."""
    return TrainConfig(
        epochs=epochs,
        learning_rate=lr,
        schedule=schedule,
        patience=None,
        seed=seed,
        best_after=best_after,
    )  # type: ignore[arg-type]


def student_state(section: ModelSection, teacher: ModelState, *, seed: int) -> ModelState:
    """A freshly built student on the teacher's split (its own transform, fitted on the same train pixels)."""
    spec = MODELS.get(section.model)
    scene = teacher.prepared.scene
    bands = scene.n_bands
    pca = (
        section.pca
        if section.pca is not None
        else (spec.default_bands if spec.default_bands and bands > spec.default_bands else None)
    )
    same = pca == (
        teacher.prepared.transform.out_bands
        if teacher.prepared.transform.pca_components is not None
        else None
    )
    prepared = (
        teacher.prepared if same else prepare(scene, teacher.prepared.split, pca_components=pca)
    )
    patch = section.patch or spec.default_patch
    model = build_model(
        section.model,
        bands=prepared.bands,
        n_classes=scene.n_classes,
        patch_size=patch,
        width=section.width,
        seed=seed,
    )
    return ModelState(
        model, section.model, spec.layout, patch if spec.layout != "1d" else 1, prepared
    )


def train_student(
    state: ModelState, train: TrainSection, stage_dir: Path, *, seed: int, log: Log
) -> ModelState:
    config = TrainConfig(
        epochs=train.epochs,
        learning_rate=train.lr,
        schedule=train.schedule,
        patience=train.patience,
        seed=seed,
    )
    train_model(
        state.model,
        state.stream(
            "train", batch_size=train.batch_size, training=True, seed=seed, augment=train.augment
        ),
        state.val_stream(),
        config=config,
        out_dir=stage_dir,
        resume=True,
        report=log,
    )
    return replace(state, history=(*state.history, "train"))


def distill(
    state: ModelState,
    teacher: ModelState,
    step: DistillStep,
    stage_dir: Path,
    *,
    seed: int,
    batch_size: int,
    log: Log,
) -> ModelState:
    from tfhsi.compress.distill import (
        Distiller,
        compile_distiller,
        finalize_distillation,
        paired_dataset,
    )

    transfer = _transfer_pixels(step, state, teacher, seed=seed, log=log)

    def pair(subset: str, training: bool):
        # Same seed: both streams visit the same centres with the same flips/rotations.
        def stream(of: ModelState):
            return of.stream(
                subset,
                batch_size=batch_size,
                training=training,
                seed=seed,
                augment=step.augment,
                unlabelled=transfer if training else None,
            )

        return paired_dataset(stream(teacher), stream(state))

    val_subset = "val" if state.prepared.split.val.any() else "test"
    distiller = Distiller(
        teacher.model, state.model, alpha=step.alpha, temperature=step.temperature
    )
    steps = int(pair("train", True).cardinality().numpy())
    schedule = keras.optimizers.schedules.CosineDecay(
        step.lr, decay_steps=max(1, step.epochs * steps)
    )
    compile_distiller(distiller, learning_rate=schedule)
    train_model(
        distiller,
        pair("train", True),
        pair(val_subset, False),
        config=_config(step.epochs, step.lr, seed),
        out_dir=stage_dir,
        resume=True,
        compile=False,
        report=log,
    )
    return replace(
        state, model=finalize_distillation(distiller), history=(*state.history, "distill")
    )


def _transfer_pixels(
    step: DistillStep, state: ModelState, teacher: ModelState, *, seed: int, log: Log
) -> np.ndarray | None:
    """The unlabelled pixels distillation adds (``step.unlabelled`` per training pixel), drawn
    once with ``seed`` from those whose patch (teacher's or student's) touches no held-out pixel."""
    if step.unlabelled <= 0:
        return None
    pool = teacher.prepared.unlabelled_centers(max(teacher.patch, state.patch) // 2)
    wanted = round(step.unlabelled * len(teacher.prepared.centers("train")))
    n = min(wanted, len(pool))
    chosen = np.sort(np.random.default_rng(seed).choice(len(pool), n, replace=False))
    log(
        f"  distilling on {n:,} unlabelled pixels too ({len(pool):,} are far enough from "
        f"test and validation pixels{'' if n == wanted else f'; {wanted:,} asked'})"
    )
    return pool[chosen]


def _fine_tune(
    model: keras.Model,
    state: ModelState,
    epochs: int,
    lr: float,
    stage_dir: Path,
    *,
    seed: int,
    log: Log,
    callbacks=(),
    schedule: Literal["cosine", "constant"] = "cosine",
    best_after: int = 0,
) -> None:
    train_model(
        model,
        state.stream("train", training=True, seed=seed),
        state.val_stream(),
        config=_config(epochs, lr, seed, schedule=schedule, best_after=best_after),
        out_dir=stage_dir,
        resume=True,
        callbacks=callbacks,
        report=log,
    )


def prune(
    state: ModelState, step: PruneStep, stage_dir: Path, *, seed: int, log: Log
) -> tuple[ModelState, dict[str, Any]]:
    from tfhsi.compress.prune import (
        PruningConfig,
        finalize_pruning,
        plan_pruning,
        prepare_pruning,
        pruning_callbacks,
        pruning_steps,
    )
    from tfhsi.compress.sparsity import measure_sparsity

    skip = tuple(step.skip)
    if step.block == "2:4":  # TF-MOT's m-by-n sparsity covers Dense/Conv2D kernels only
        skip += tuple(
            layer.name
            for layer in state.model.layers
            if isinstance(layer, keras.layers.Conv3D | keras.layers.Conv1D)
        )
    config = PruningConfig(
        target_sparsity=step.target, schedule=step.schedule, block=step.block, skip=skip
    )
    steps = int(state.stream("train").cardinality().numpy())
    wrapped = prepare_pruning(state.model, config, steps_per_epoch=steps, epochs=step.epochs)
    # The best epoch may only come once the target sparsity is reached (else restoring
    # "best" weights would undo the pruning); a constant LR keeps fine-tuning the fixed masks.
    reached = -(-pruning_steps(config, steps_per_epoch=steps, epochs=step.epochs).end // steps)
    _fine_tune(
        wrapped, state, step.epochs, step.lr, stage_dir, seed=seed, log=log,
        callbacks=pruning_callbacks(), schedule="constant", best_after=min(reached, step.epochs - 1),
    )  # fmt: skip
    model = finalize_pruning(wrapped)
    pruned = measure_sparsity(model, layers=plan_pruning(state.model, config))
    return replace(state, model=model, history=(*state.history, "prune")), {
        "sparsity": pruned.to_dict()
    }


def filter_prune(
    state: ModelState, step: FilterPruneStep, stage_dir: Path, *, seed: int, log: Log
) -> tuple[ModelState, dict[str, Any]]:
    from tfhsi.compress.filter_prune import filter_prune as shrink

    before = int(state.model.count_params())
    model, _ = shrink(state.model, ratio=step.ratio, by=step.by)
    _fine_tune(model, state, step.epochs, step.lr, stage_dir, seed=seed, log=log)
    return replace(state, model=model, history=(*state.history, "filter_prune")), {
        "parameters_before": before,
        "parameters_after": int(model.count_params()),
    }


def cluster(
    state: ModelState, step: ClusterStep, stage_dir: Path, *, seed: int, log: Log
) -> tuple[ModelState, dict[str, Any]]:
    from tfhsi.compress.cluster import (
        finalize_clustering,
        prepare_clustering,
        unique_weights_per_kernel,
    )

    wrapped = prepare_clustering(
        state.model,
        n_clusters=step.clusters,
        preserve_sparsity=step.preserve_sparsity,
        skip=tuple(step.skip),
    )
    _fine_tune(wrapped, state, step.epochs, step.lr, stage_dir, seed=seed, log=log)
    model = finalize_clustering(wrapped)
    return replace(state, model=model, history=(*state.history, "cluster")), {
        "unique_weights": unique_weights_per_kernel(model, skip=tuple(step.skip))
    }


def qat(
    state: ModelState, step: QatStep, stage_dir: Path, *, seed: int, lower: bool, log: Log
) -> tuple[ModelState, dict[str, Any]]:
    from tfhsi.compress.quantize import prepare_qat

    info: dict[str, Any] = {}
    if has_conv3d(state.model) and lower:
        state = lower_state(state)
        info["lowered"] = True
    previous = state.history[-1] if state.history else None
    if previous == "prune" and not has_conv3d(state.model):
        from tfhsi.compress.cluster import prepare_prune_preserving_qat as prepare_fn

        info["scheme"] = "prune-preserving QAT"
    elif previous == "cluster" and not has_conv3d(state.model):
        from tfhsi.compress.cluster import prepare_cluster_preserving_qat as prepare_fn  # type: ignore[assignment]

        info["scheme"] = "cluster-preserving QAT"
    else:
        info["scheme"] = "QAT (activation ranges calibrated on training patches)"
        calibration = state.stream("train", batch_size=64).take(8)

        def prepare_fn(model: keras.Model) -> keras.Model:
            return prepare_qat(model, calibration=calibration)

    model = prepare_fn(state.model)
    _fine_tune(model, state, step.epochs, step.lr, stage_dir, seed=seed, log=log)
    return replace(state, model=model, qat=True, history=(*state.history, "qat")), info


def lower_state(state: ModelState) -> ModelState:
    """The same model with Conv3D lowered to Conv2D (fed 2-D patches of the same pixels)."""
    from tfhsi.compress.lower import lower_conv3d

    lowered, _ = lower_conv3d(state.model)
    return replace(state, model=lowered, layout="2d", lowered=True)


def run_step(
    step: Step,
    state: ModelState,
    teacher: ModelState,
    stage_dir: Path,
    *,
    seed: int,
    lower: bool,
    log: Log,
) -> tuple[ModelState, dict[str, Any]]:
    """Runs one step; seeded first, so its result does not depend on what ran before in this process."""
    from tfhsi.train.fit import seed_everything

    seed_everything(seed)
    if isinstance(step, DistillStep):
        return distill(state, teacher, step, stage_dir, seed=seed, batch_size=64, log=log), {}
    if isinstance(step, PruneStep):
        return prune(state, step, stage_dir, seed=seed, log=log)
    if isinstance(step, FilterPruneStep):
        return filter_prune(state, step, stage_dir, seed=seed, log=log)
    if isinstance(step, ClusterStep):
        return cluster(state, step, stage_dir, seed=seed, log=log)
    if isinstance(step, QatStep):
        return qat(state, step, stage_dir, seed=seed, lower=lower, log=log)
    raise TypeError(step)  # pragma: no cover - the schema admits no other step


def save_state(state: ModelState, stage_dir: Path, info: dict[str, Any]) -> None:
    """Writes the stage's model and, last, its done marker (what --resume looks for)."""
    if state.qat:
        from tfhsi.compress.quantize import save_qat

        save_qat(state.model, stage_dir / QAT_MODEL)
    else:
        with atomic_path(stage_dir / "model.keras") as tmp:
            state.model.save(str(tmp))
    meta = {
        "history": list(state.history),
        "qat": state.qat,
        "lowered": state.lowered,
        "layout": state.layout,
        **info,
    }
    write_json(stage_dir / DONE, meta)


def load_state(state: ModelState, stage_dir: Path) -> ModelState | None:
    """The state saved by a finished stage, or None if the stage has to run."""
    done = stage_dir / DONE
    if not done.is_file():
        return None
    meta = json.loads(done.read_text(encoding="utf-8"))
    if meta["qat"]:
        from tfhsi.compress.quantize import load_qat

        model = load_qat(stage_dir / QAT_MODEL)
    else:
        model = keras.models.load_model(str(stage_dir / "model.keras"), compile=False)
    return replace(
        state,
        model=model,
        layout=meta["layout"],
        qat=meta["qat"],
        lowered=meta["lowered"],
        history=tuple(meta["history"]),
    )
