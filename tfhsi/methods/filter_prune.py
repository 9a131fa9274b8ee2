"""Structured filter pruning: drop the filters of smallest L1 norm (Li et al. 2017, "Pruning
Filters for Efficient ConvNets"), then fine-tune the smaller dense model."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tfhsi.methods._registry import StepOptions, register_method
from tfhsi.methods.state import ModelState, StepContext, fine_tune


class FilterPruneStep(StepOptions):
    method: Literal["filter_prune"]
    ratio: float = Field(0.5, gt=0, lt=1)
    by: Literal["params", "filters"] = Field(
        "params", description="ratio of parameters or of filters per layer"
    )
    epochs: int = Field(20, ge=1)
    lr: float = Field(5e-4, gt=0)


@register_method(
    "filter_prune",
    options=FilterPruneStep,
    summary="remove whole filters (a smaller dense model), then fine-tune",
)
def run(
    state: ModelState, step: FilterPruneStep, context: StepContext
) -> tuple[ModelState, dict[str, Any]]:
    from tfhsi.compress.filter_prune import filter_prune as shrink

    before = int(state.model.count_params())
    model, _ = shrink(state.model, ratio=step.ratio, by=step.by)
    fine_tune(model, state, context, epochs=step.epochs, lr=step.lr)
    return state.after("filter_prune", model), {
        "parameters_before": before,
        "parameters_after": int(model.count_params()),
    }
