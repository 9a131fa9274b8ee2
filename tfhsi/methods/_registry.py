"""The compression-method registry: each method registers its step options, its run function
and, where it needs them, its save/load hooks and the presets its result can be exported with.

The recipe schema's ``steps``, the runner's dispatch, stage checkpoints and export filtering all
read :data:`METHODS`, so a method is one module (see ``CONTRIBUTING.md``). Nothing here imports
TensorFlow: a method's run function imports what it needs when it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from tfhsi import plugins
from tfhsi.registry import Registry

if TYPE_CHECKING:
    from tfhsi._keras import keras
    from tfhsi.methods.state import ModelState, StepContext

Preserves = Literal["sparsity", "clusters"]
"""Structure a method leaves in the weights that a later QAT step must keep."""


class StepOptions(BaseModel):
    """Base of every method's step options: strict (unknown keys rejected) and frozen.

    A subclass declares ``method: Literal["<name>"]`` and its options with defaults; an
    ``epochs`` field, where it has one, is what ``--quick`` caps.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str


RunFn = Callable[["ModelState", Any, "StepContext"], "tuple[ModelState, dict[str, Any]]"]
SaveFn = Callable[["keras.Model", Path], None]
LoadFn = Callable[[Path], "keras.Model"]


@dataclass(frozen=True)
class Method:
    """A registered compression method.

    Attributes:
        name: The ``method:`` value of a recipe step.
        options: Its :class:`StepOptions` subclass (the recipe schema of the step).
        run: ``run(state, options, context) -> (state, info)``: prepare → train → finalize;
            ``info`` is saved with the stage (e.g. measured sparsity).
        summary: One line for ``tfhsi recipe methods`` and error messages.
        preserves: What its result carries that a later QAT must preserve, if anything.
        first_only: Must be a variant's first step (distillation trains a fresh student).
        needs_student: Trains the variant's fresh ``student`` itself (so the variant needs a
            student section, and the student is not first trained alone).
        save, load: How its result is checkpointed (default: ``model.keras``).
        model_file: The checkpoint's file name inside the stage folder.
        exports: The presets its result may be exported with (``None``: any).
    """

    name: str
    options: type[StepOptions]
    run: RunFn
    summary: str
    preserves: Preserves | None = None
    first_only: bool = False
    needs_student: bool = False
    save: SaveFn | None = None
    load: LoadFn | None = None
    model_file: str = "model.keras"
    exports: Sequence[str] | None = None


METHODS: Registry[Method] = Registry("method")


def register_method(
    name: str,
    *,
    options: type[StepOptions],
    summary: str,
    preserves: Preserves | None = None,
    first_only: bool = False,
    needs_student: bool = False,
    save: SaveFn | None = None,
    load: LoadFn | None = None,
    model_file: str = "model.keras",
    exports: Sequence[str] | None = None,
) -> Callable[[RunFn], RunFn]:
    """Decorator registering ``run`` as compression method ``name`` (see :class:`Method`).

    Raises:
        ValueError: ``name`` is taken, or ``options.method`` does not accept ``name``.
    """
    field = options.model_fields.get("method")
    if field is None or getattr(field.annotation, "__args__", (None,)) != (name,):
        raise ValueError(
            f"method {name!r}: {options.__name__} must declare method: Literal[{name!r}]"
        )

    def decorate(run: RunFn) -> RunFn:
        METHODS.add(
            name,
            Method(
                name=name,
                options=options,
                run=run,
                summary=summary,
                preserves=preserves,
                first_only=first_only,
                needs_student=needs_student,
                save=save,
                load=load,
                model_file=model_file,
                exports=tuple(exports) if exports is not None else None,
            ),
        )
        plugins.remember(run)  # a method defined outside tfhsi reaches worker processes
        return run

    return decorate
