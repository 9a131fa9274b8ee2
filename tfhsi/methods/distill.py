"""Knowledge distillation of a fresh student from the teacher (Hinton, Vinyals & Dean 2015,
"Distilling the Knowledge in a Neural Network"), optionally on a transfer set of unlabelled
scene pixels."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from tfhsi.methods._registry import StepOptions, register_method
from tfhsi.methods.state import ModelState, StepContext, fine_tune_config


class DistillStep(StepOptions):
    method: Literal["distill"]
    alpha: float = Field(0.1, ge=0, le=1, description="weight of the hard-label cross-entropy")
    temperature: float = Field(4.0, gt=0)
    epochs: int = Field(60, ge=1)
    lr: float = Field(1e-3, gt=0)
    augment: bool = Field(
        False,
        description="flip/rotate teacher and student patches alike; only for teachers trained with augmentation",
    )
    unlabelled: float = Field(
        0.0,
        ge=0,
        description="unlabelled scene pixels added to the training pixels, per training pixel "
        "(soft targets only; never pixels whose patch touches a test or validation pixel)",
    )


@register_method(
    "distill",
    options=DistillStep,
    summary="train the variant's student on the teacher's soft targets",
    first_only=True,
    needs_student=True,
)
def run(
    state: ModelState, step: DistillStep, context: StepContext
) -> tuple[ModelState, dict[str, Any]]:
    from tfhsi._keras import keras
    from tfhsi.compress.distill import (
        Distiller,
        compile_distiller,
        finalize_distillation,
        paired_dataset,
    )
    from tfhsi.train.fit import train_model

    teacher, seed = context.teacher, context.seed
    transfer = _transfer_pixels(step, state, teacher, seed=seed, log=context.log)
    selection = state.prepared.selection_subset()
    table = None
    if soft_targets_once(step):
        subsets = [("train", transfer, step.augment)]
        if selection is not None:
            subsets.append((selection, None, False))
        tables, offsets, start = [], {}, 0
        for subset, extra, augment in subsets:  # the teacher's logits, once per patch (and flip)
            offsets[subset] = start
            tables.append(_teacher_logits(teacher, subset, extra, augment=augment))
            start += len(tables[-1])
        table = np.concatenate(tables)

    def pair(subset: str, training: bool):
        # Same seed: teacher and student visit the same centres, order and flips/rotations;
        # with a table the student's stream carries each patch's row in it instead.
        options: dict[str, Any] = {
            "batch_size": context.batch_size,
            "training": training,
            "seed": seed,
            "augment": step.augment,
            "unlabelled": transfer if training else None,
        }
        if table is None:
            return paired_dataset(
                teacher.stream(subset, **options), state.stream(subset, **options)
            )
        return _keyed_stream(state, subset, offset=offsets[subset], **options)

    distiller = Distiller(
        teacher.model,
        state.model,
        alpha=step.alpha,
        temperature=step.temperature,
        teacher_logits=table,
    )
    steps = int(pair("train", True).cardinality().numpy())
    schedule = keras.optimizers.schedules.CosineDecay(
        step.lr, decay_steps=max(1, step.epochs * steps)
    )
    # Plain steps: under XLA student3d's distillation step measured no faster (about 30
    # samples/s on 2 cores, docs/PERFORMANCE.md), unlike its training alone.
    compile_distiller(distiller, learning_rate=schedule)
    train_model(
        distiller,
        pair("train", True),
        None if selection is None else pair(selection, False),
        config=fine_tune_config(step.epochs, step.lr, seed),
        out_dir=context.stage_dir,
        resume=True,
        compile=False,
        report=context.log,
    )
    return state.after("distill", finalize_distillation(distiller)), {}


def soft_targets_once(step: DistillStep) -> bool:
    """Whether the teacher's logits are computed once per patch (and flip/rotation) before
    training, or by a teacher pass at every step: once costs ``8·N`` teacher passes with
    augmentation (``N`` without), every step ``epochs·N``, so a table pays from 8 epochs on."""
    from tfhsi.data.pipeline import AUGMENTATIONS

    return step.epochs >= (AUGMENTATIONS if step.augment else 1)


def _transfer_pixels(
    step: DistillStep, state: ModelState, teacher: ModelState, *, seed: int, log
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


def _centers(state: ModelState, subset: str, unlabelled: np.ndarray | None):
    """The centres and labels ``ModelState.stream`` feeds for ``subset`` (transfer pixels last)."""
    from tfhsi.data.pipeline import UNLABELLED

    prepared = state.prepared
    centers, targets = prepared.centers(subset), prepared.targets(subset)
    if unlabelled is not None and len(unlabelled):
        centers = np.concatenate([centers, np.asarray(unlabelled, np.int32)])
        targets = np.concatenate([targets, np.full(len(unlabelled), UNLABELLED, np.int32)])
    return centers, targets


_TABLES: dict[str, np.ndarray] = {}  # the last teacher tables of this process (variants share)


def _teacher_logits(
    teacher: ModelState, subset: str, unlabelled: np.ndarray | None, *, augment: bool
) -> np.ndarray:
    """The teacher's logits for every patch of ``subset`` (under every augmentation with
    ``augment``), in the order of the keys of :func:`_keyed_stream`."""
    import hashlib

    from tfhsi.compress.distill import teacher_logit_table
    from tfhsi.data.pipeline import augmented_patches

    centers, _ = _centers(teacher, subset, unlabelled)
    digest = hashlib.sha256()
    for part in (centers, teacher.prepared.cube, *teacher.model.get_weights()):
        digest.update(np.ascontiguousarray(part).tobytes())
    digest.update(f"{teacher.patch}/{teacher.layout}/{augment}".encode())
    key = digest.hexdigest()
    if key not in _TABLES:
        patches = augmented_patches(
            teacher.prepared.cube,
            centers,
            patch_size=teacher.patch,
            layout=teacher.layout,  # type: ignore[arg-type]
            augment=augment,
        )
        if len(_TABLES) >= 4:
            _TABLES.pop(next(iter(_TABLES)))
        _TABLES[key] = teacher_logit_table(teacher.model, patches)
    return _TABLES[key]


def _keyed_stream(
    state: ModelState,
    subset: str,
    *,
    batch_size: int,
    training: bool,
    seed: int,
    augment: bool,
    unlabelled: np.ndarray | None,
    offset: int,
):
    """``state.stream(...)`` with each patch's row in the teacher's table: ``((key, x), y)``."""
    from tfhsi.data.pipeline import patch_dataset

    centers, targets = _centers(state, subset, unlabelled)
    ds = patch_dataset(
        state.prepared.cube,
        centers,
        targets,
        patch_size=state.patch,
        layout=state.layout,  # type: ignore[arg-type]
        batch_size=batch_size,
        shuffle=training,
        seed=seed,
        augment=training and augment,
        unlabelled_ok=unlabelled is not None,
        keys=True,
    )
    return ds.map(lambda x, y: ((x[0] + offset, x[1]), y)) if offset else ds
