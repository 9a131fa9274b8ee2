"""Quantisation-aware training (Jacob et al. 2018, "Quantization and Training of Neural
Networks for Efficient Integer-Arithmetic-Only Inference") with TF-MOT.

The scheme follows what the previous step left in the weights: prune-preserving QAT after
pruning, cluster-preserving QAT after clustering (collaborative optimisation), plain QAT
otherwise. A 3-D model is lowered to Conv2D first (TFLite has no int8 CONV_3D), so the graph
trained is the one deployed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from tfhsi.methods._registry import StepOptions, register_method
from tfhsi.methods.state import ModelState, StepContext, fine_tune, has_conv3d, lower_state


class QatStep(StepOptions):
    method: Literal["qat"]
    epochs: int = Field(10, ge=1)
    lr: float = Field(1e-4, gt=0)


def _save(model: Any, path: Path) -> None:
    from tfhsi.compress.quantize import save_qat

    save_qat(model, path)


def _load(path: Path) -> Any:
    from tfhsi.compress.quantize import load_qat

    return load_qat(path)


@register_method(
    "qat",
    options=QatStep,
    summary="fine-tune with simulated int8 (TF-MOT); keeps earlier sparsity or clusters",
    save=_save,
    load=_load,
    model_file="model.h5",  # TF-MOT's quantize layers reload from HDF5 only
    exports=("int8",),  # trained for int8: other presets would discard that
)
def run(
    state: ModelState, step: QatStep, context: StepContext
) -> tuple[ModelState, dict[str, Any]]:
    from tfhsi.compress.quantize import prepare_qat

    info: dict[str, Any] = {}
    if has_conv3d(state.model) and context.lower:
        state = lower_state(state)
        info["lowered"] = True
    three_d = has_conv3d(state.model)  # TF-MOT's preserving schemes know no Conv3D
    if state.preserves == "sparsity" and not three_d:
        from tfhsi.compress.cluster import prepare_prune_preserving_qat as prepare_fn

        info["scheme"] = "prune-preserving QAT"
    elif state.preserves == "clusters" and not three_d:
        from tfhsi.compress.cluster import prepare_cluster_preserving_qat as prepare_fn  # type: ignore[assignment]

        info["scheme"] = "cluster-preserving QAT"
    else:
        info["scheme"] = "QAT (activation ranges calibrated on training patches)"
        calibration = state.stream("train", batch_size=64).take(8)

        def prepare_fn(model: Any) -> Any:
            return prepare_qat(model, calibration=calibration)

    model = prepare_fn(state.model)
    fine_tune(model, state, context, epochs=step.epochs, lr=step.lr)
    return state.after("qat", model), info
