"""Compression methods as plug-ins: distill, prune, filter_prune, cluster, qat, and yours.

Each method is one module that registers its step options, its run function and, where it
needs them, save/load hooks and the presets its result may be exported with
(:func:`register_method`). The recipe schema, the runner's dispatch, stage checkpoints and
export filtering read :data:`METHODS`; combining methods (KD → prune → QAT) is the caller's
job, not the methods'. Importing this package imports no TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from tfhsi.atomic import atomic_path, write_json

# Registration order is the order help texts list the methods in (a typical chain).
# isort: off
from tfhsi.methods import distill  # noqa: F401
from tfhsi.methods import prune  # noqa: F401
from tfhsi.methods import filter_prune  # noqa: F401
from tfhsi.methods import qat  # noqa: F401
from tfhsi.methods import cluster  # noqa: F401

# isort: on
from tfhsi.methods._registry import METHODS, Method, StepOptions, register_method
from tfhsi.methods.state import ModelState, StepContext, fine_tune, has_conv3d, lower_state

__all__ = [
    "DONE",
    "METHODS",
    "Method",
    "ModelState",
    "StepContext",
    "StepOptions",
    "fine_tune",
    "has_conv3d",
    "load_state",
    "lower_state",
    "register_method",
    "run_step",
    "save_state",
]

DONE = "done.json"
"""A finished stage's marker (what ``--resume`` looks for), written last."""


def run_step(
    step: StepOptions, state: ModelState, context: StepContext
) -> tuple[ModelState, dict[str, Any]]:
    """Runs one step; seeded first, so its result does not depend on what ran before in this
    process."""
    from tfhsi.train.fit import seed_everything

    seed_everything(context.seed)
    method = METHODS.get(step.method)
    after, info = method.run(state, step, context)
    return _declared(after, method), info


def _declared(state: ModelState, method: Method) -> ModelState:
    """The state with what ``method`` registered: the structure it leaves (a method that
    declares none leaves none to preserve), its save hooks and its export presets."""
    return replace(
        state,
        preserves=method.preserves,
        saved_by=method.name if method.save is not None else state.saved_by,
        exports=tuple(method.exports) if method.exports is not None else state.exports,
    )


def _saver(state: ModelState) -> Method | None:
    return METHODS.get(state.saved_by) if state.saved_by else None


def save_state(state: ModelState, stage_dir: Path, info: dict[str, Any]) -> None:
    """Writes the stage's model (with its method's save hook) and, last, its done marker."""
    method = _saver(state)
    if method is not None and method.save is not None:
        with atomic_path(stage_dir / method.model_file) as tmp:
            method.save(state.model, tmp)
    else:
        with atomic_path(stage_dir / "model.keras") as tmp:
            state.model.save(str(tmp))
    meta = {
        "history": list(state.history),
        "saved_by": state.saved_by,
        "preserves": state.preserves,
        "exports": None if state.exports is None else list(state.exports),
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
    saved_by = meta.get("saved_by", "qat" if meta.get("qat") else None)  # runs made before
    exports = meta.get("exports", ["int8"] if meta.get("qat") else None)
    method = METHODS.get(saved_by) if saved_by else None
    if method is not None and method.load is not None:
        model = method.load(stage_dir / method.model_file)
    else:
        from tfhsi._keras import keras

        model = keras.models.load_model(str(stage_dir / "model.keras"), compile=False)
    history = tuple(meta["history"])
    preserves = meta.get("preserves", _preserved_by(history))
    return replace(
        state,
        model=model,
        layout=meta["layout"],
        saved_by=saved_by,
        preserves=preserves,
        exports=None if exports is None else tuple(exports),
        lowered=meta["lowered"],
        history=history,
    )


def _preserved_by(history: tuple[str, ...]) -> str | None:
    """What the last method of ``history`` left to preserve (stages saved before this field)."""
    last = METHODS.get(history[-1]) if history and history[-1] in METHODS else None
    return None if last is None else last.preserves
