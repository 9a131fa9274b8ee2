"""Weight clustering with TF-MOT (Han, Mao & Dally 2016, "Deep Compression"): each kernel keeps
``clusters`` distinct values, fine-tuned, then stripped."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tfhsi.methods._registry import StepOptions, register_method
from tfhsi.methods.state import ModelState, StepContext, fine_tune


class ClusterStep(StepOptions):
    method: Literal["cluster"]
    clusters: int = Field(16, ge=2, le=256)
    preserve_sparsity: bool = False
    skip: list[str] = Field(
        ["logits"],
        description="layers left unclustered; [] clusters the classifier too (most of a 3-D "
        "CNN's weights, but its accuracy suffers first)",
    )
    epochs: int = Field(10, ge=1)
    lr: float = Field(1e-4, gt=0)


@register_method(
    "cluster",
    options=ClusterStep,
    summary="share weights: each kernel keeps a few distinct values (TF-MOT), fine-tuned",
    preserves="clusters",
)
def run(
    state: ModelState, step: ClusterStep, context: StepContext
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
    fine_tune(wrapped, state, context, epochs=step.epochs, lr=step.lr)
    model = finalize_clustering(wrapped)
    return state.after("cluster", model), {
        "unique_weights": unique_weights_per_kernel(model, skip=tuple(step.skip))
    }
