"""What flows between compression steps: the model, how to feed it, and what was done to it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tfhsi.data.patches import Layout
from tfhsi.data.prepared import PreparedScene

if TYPE_CHECKING:
    from tfhsi._keras import keras
    from tfhsi.train.config import TrainConfig

Log = Callable[[str], None]


@dataclass(frozen=True)
class ModelState:
    """A model between stages, with how to feed it.

    Attributes:
        model: The current ``tf_keras`` model (possibly wrapped, e.g. QAT).
        name: Its architecture (a zoo name or the user's model reference), for reports.
        layout: Input layout of its patches ("3d", "2d" or "1d").
        patch: Spatial patch size (1 for "1d").
        prepared: The scene, split and fitted transform that feed it.
        history: Names of the methods applied so far (``"train"`` for plain training).
        saved_by: The method whose save/load hooks checkpoint this model (None: ``.keras``).
        preserves: Structure in the weights (sparsity, clusters) a later QAT must keep.
        exports: The presets this model may be exported with (None: any).
        lowered: Conv3D has been lowered to Conv2D.
    """

    model: keras.Model
    name: str
    layout: Layout
    patch: int
    prepared: PreparedScene
    history: tuple[str, ...] = ()
    saved_by: str | None = None
    preserves: str | None = None
    exports: tuple[str, ...] | None = None
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
        """Batches of (patch, label) of ``subset``; shuffled and augmented when ``training``."""
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

    def selection_stream(self, batch_size: int = 256):
        """The pixels that choose the best epoch (validation; never test), or None."""
        subset = self.prepared.selection_subset()
        return None if subset is None else self.stream(subset, batch_size=batch_size)

    def after(self, method: str, model: keras.Model, **changes: Any) -> ModelState:
        """This state with ``model`` produced by ``method`` (appended to the history); what the
        method registered (preserves, save hooks, exports) is applied by ``run_step``."""
        return replace(self, model=model, history=(*self.history, method), **changes)


@dataclass(frozen=True)
class StepContext:
    """What a method's run function gets besides the state and its options."""

    teacher: ModelState
    stage_dir: Path
    seed: int
    lower: bool
    log: Log
    batch_size: int = 64


def has_conv3d(model: keras.Model) -> bool:
    """True when ``model`` has a Conv3D layer."""
    from tfhsi.compress.lower import has_conv3d as conv3d_in

    return conv3d_in(model)


def lower_state(state: ModelState) -> ModelState:
    """The same model with Conv3D lowered to Conv2D (fed 2-D patches of the same pixels)."""
    from tfhsi.compress.lower import lower_conv3d

    lowered, _ = lower_conv3d(state.model)
    return replace(state, model=lowered, layout="2d", lowered=True)


def fine_tune_config(
    epochs: int,
    lr: float,
    seed: int,
    *,
    schedule: Literal["cosine", "constant"] = "cosine",
    best_after: int = 0,
) -> TrainConfig:
    """Fine-tuning: no early stopping (the schedules of pruning and QAT need every epoch)."""
    from tfhsi.train.config import TrainConfig

    return TrainConfig(
        epochs=epochs,
        learning_rate=lr,
        schedule=schedule,
        patience=None,
        seed=seed,
        best_after=best_after,
    )  # type: ignore[arg-type]


def fine_tune(
    model: keras.Model,
    state: ModelState,
    context: StepContext,
    *,
    epochs: int,
    lr: float,
    callbacks: Sequence[Any] = (),
    schedule: Literal["cosine", "constant"] = "cosine",
    best_after: int = 0,
) -> None:
    """Fits ``model`` on the state's training pixels (resumable in the stage folder)."""
    from tfhsi.train.fit import train_model

    train_model(
        model,
        state.stream("train", training=True, seed=context.seed),
        state.selection_stream(),
        config=fine_tune_config(epochs, lr, context.seed, schedule=schedule, best_after=best_after),
        out_dir=context.stage_dir,
        resume=True,
        callbacks=list(callbacks),
        report=context.log,
    )
