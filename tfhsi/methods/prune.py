"""Magnitude pruning with TF-MOT (Zhu & Gupta 2017, "To prune, or not to prune"), optionally
2:4 structured: wrap → fine-tune with the pruning callbacks → strip."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tfhsi.methods._registry import StepOptions, register_method
from tfhsi.methods.state import ModelState, StepContext, fine_tune


class PruneStep(StepOptions):
    method: Literal["prune"]
    target: float = Field(0.8, gt=0, lt=1)
    schedule: Literal["polynomial", "constant"] = "polynomial"
    block: Literal["2:4"] | None = None
    skip: list[str] = Field(default_factory=list)
    epochs: int = Field(20, ge=1)
    lr: float = Field(
        1e-3,
        gt=0,
        description="constant fine-tuning LR; 1e-4 left hamida3d at 88 % (80 %) and 50 % (90 %) "
        "OA on Indian Pines where 1e-3 gives 95 % and 91 %",
    )


@register_method(
    "prune",
    options=PruneStep,
    summary="zero the smallest weights up to a target sparsity (TF-MOT), fine-tuning meanwhile",
    preserves="sparsity",
)
def run(
    state: ModelState, step: PruneStep, context: StepContext
) -> tuple[ModelState, dict[str, Any]]:
    from tfhsi._keras import keras
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
    fine_tune(
        wrapped, state, context, epochs=step.epochs, lr=step.lr, callbacks=pruning_callbacks(),
        schedule="constant", best_after=min(reached, step.epochs - 1),
    )  # fmt: skip
    model = finalize_pruning(wrapped)
    pruned = measure_sparsity(model, layers=plan_pruning(state.model, config))
    return state.after("prune", model), {"sparsity": pruned.to_dict()}
