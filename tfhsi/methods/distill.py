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

    def pair(subset: str, training: bool):
        # Same seed: both streams visit the same centres with the same flips/rotations.
        def stream(of: ModelState):
            return of.stream(
                subset,
                batch_size=context.batch_size,
                training=training,
                seed=seed,
                augment=step.augment,
                unlabelled=transfer if training else None,
            )

        return paired_dataset(stream(teacher), stream(state))

    selection = state.prepared.selection_subset()
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
        None if selection is None else pair(selection, False),
        config=fine_tune_config(step.epochs, step.lr, seed),
        out_dir=context.stage_dir,
        resume=True,
        compile=False,
        report=context.log,
    )
    return state.after("distill", finalize_distillation(distiller)), {}


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
