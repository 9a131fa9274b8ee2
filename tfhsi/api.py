"""Verbs for a notebook: train, evaluate and compress any functional ``tf_keras`` model on a
:class:`~tfhsi.data.prepared.PreparedScene` (scene, split, transform fitted on its training
pixels), e.g. ``tfhsi.prune(model, data, target=0.8)``.

Each compression verb runs the registered method a recipe step runs (same options, defaults
and code); training and evaluation use the trainer and metrics the runner uses. The model's
input shape says how its patches are cut (:func:`tfhsi.layouts.infer_layout`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfhsi.errors import ConfigError
from tfhsi.methods import METHODS, ModelState, StepContext, run_step

if TYPE_CHECKING:
    from tfhsi._keras import keras
    from tfhsi.data.prepared import PreparedScene
    from tfhsi.train.metrics import Metrics


def model_state(model: keras.Model, data: PreparedScene, *, name: str | None = None) -> ModelState:
    """``model`` with the patches of ``data`` that fit its input shape.

    Raises:
        DataFormatError: the input is no ``(k, k, B)``, ``(k, k, B, 1)`` or ``(B, 1)`` shape.
        ConfigError: it takes another band count than the data has.
    """
    from tfhsi.experiment.folders import ModelInput

    given = ModelInput.of(model, source=f"model {model.name!r}")
    if given.bands != data.bands:
        raise ConfigError(
            f"model {model.name!r} takes {given.bands} bands; this data feeds {data.bands} "
            "(after its PCA). Build the model for the data's band count."
        )
    layout, patch = given.layout, given.patch
    return ModelState(model, name or model.name, layout, patch, data)


def fit(
    model: keras.Model,
    data: PreparedScene,
    *,
    epochs: int = 100,
    lr: float = 1e-3,
    batch_size: int = 64,
    patience: int | None = 20,
    augment: bool = False,
    seed: int = 0,
    out_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> keras.Model:
    """Trains ``model`` on the training pixels of ``data``; the validation pixels (never the
    test pixels) pick the best epoch and stop early. Returns the model, best weights loaded."""
    from tfhsi.models import trains_with_xla
    from tfhsi.train.config import TrainConfig
    from tfhsi.train.fit import seed_everything, train_model

    seed_everything(seed)
    state = model_state(model, data)
    config = TrainConfig(
        epochs=epochs, learning_rate=lr, patience=patience, seed=seed,
        jit_compile=trains_with_xla(model, epochs),
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="tfhsi-train-") as scratch:
        train_model(
            model,
            state.stream("train", batch_size=batch_size, training=True, seed=seed, augment=augment),
            state.selection_stream(),
            config=config,
            out_dir=Path(out_dir) if out_dir is not None else Path(scratch),
            resume=out_dir is not None,
            report=log,
        )
    return model


def evaluate(
    model: keras.Model | str | Path, data: PreparedScene, *, subset: str = "test"
) -> Metrics:
    """OA, AA, Kappa, per-class accuracy and confusion of a Keras model, or of a ``.tflite`` /
    ``.keras`` file, on ``subset`` of ``data`` (the same code the runner measures files with)."""
    from tfhsi.train.evaluate import evaluate as measure

    if isinstance(model, str | Path):
        from tfhsi.experiment.prediction import evaluate_file

        return evaluate_file(Path(model), data, subset=subset)
    state = model_state(model, data)
    return measure(
        model.predict_on_batch,
        state.stream(subset, batch_size=256),
        class_names=data.scene.class_names,
    )


def apply(
    method: str,
    model: keras.Model,
    data: PreparedScene,
    *,
    teacher: keras.Model | None = None,
    seed: int = 0,
    lower: bool = True,
    out_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    **options: Any,
) -> keras.Model:
    """Runs compression ``method`` on ``model`` and returns the resulting model.

    Args:
        method: A registered method (``tfhsi.methods.METHODS``).
        model: A functional ``tf_keras`` model (for ``distill``: the fresh student).
        data: The prepared scene whose training pixels train it.
        teacher: The trained teacher (``distill`` only).
        seed: Seeds the fine-tuning.
        lower: Lower Conv3D to Conv2D where the method needs it (QAT of a 3-D model).
        out_dir: Where checkpoints and history go (default: a temporary folder, removed).
        log: Receives progress lines (default: silent).
        **options: The method's step options (as in a recipe step), e.g. ``target=0.8``.
    """
    spec = METHODS.get(method)
    step = spec.options.model_validate({"method": method, **options})
    if spec.needs_student and teacher is None:
        raise ConfigError(f"{method} needs teacher=<the trained teacher model>.")
    state = model_state(model, data)
    teacher_state = model_state(teacher, data) if teacher is not None else state
    with tempfile.TemporaryDirectory(prefix=f"tfhsi-{method}-") as scratch:
        folder = Path(out_dir) if out_dir is not None else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        context = StepContext(
            teacher=teacher_state,
            stage_dir=folder,
            seed=seed,
            lower=lower,
            log=log or (lambda _: None),
        )
        result, _ = run_step(step, state, context)
    return result.model


def _verb(method: str) -> Callable[..., Any]:
    def verb(model: keras.Model, data: PreparedScene, **kwargs: Any) -> keras.Model:
        return apply(method, model, data, **kwargs)

    options = METHODS.get(method).options
    fields = ", ".join(
        f"{k}={v.default!r}" for k, v in options.model_fields.items() if k != "method"
    )
    verb.__name__ = verb.__qualname__ = method
    verb.__doc__ = (
        f"{METHODS.get(method).summary.capitalize()}; returns the new model.\n\n"
        f"``tfhsi.{method}(model, data, **options)`` is ``apply({method!r}, ...)`` (see "
        f":func:`tfhsi.methods.api.apply`); options and defaults: {fields}."
    )
    return verb


prune = _verb("prune")
filter_prune = _verb("filter_prune")
cluster = _verb("cluster")
qat = _verb("qat")
distill = _verb("distill")
