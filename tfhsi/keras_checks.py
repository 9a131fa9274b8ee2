"""The one rule for "a model tfhsi can work on": a flat functional or Sequential tf_keras model.

Used by :mod:`tfhsi.models` (models from the user's code or files) and by every
compression method, so each refusal reads the same wherever it happens.
"""

from __future__ import annotations

from typing import Any

from tfhsi.errors import UnsupportedError

#: How the error messages tell users to build Keras 2 models.
KERAS2_FIX = (
    "build it with `from tfhsi import keras` (or `import tf_keras as keras`), not `import keras`"
)


def is_keras3_object(obj: object) -> bool:
    """True when ``obj`` comes from the Keras 3 package (``keras``), not from ``tf_keras``.

    Looks at the class's module only, so Keras 3 is never imported.
    """
    module = type(obj).__module__ or ""
    return module == "keras" or module.startswith("keras.")


def require_functional(model: Any, *, what: str, allow_nested: bool = False) -> None:
    """Raises UnsupportedError unless ``model`` is a flat functional or Sequential tf_keras model.

    Args:
        model: The object to check.
        what: What needs the model, for the message ("pruning", "builder net.py:build").
        allow_nested: Accept models used as layers (for callers that handle them).

    Raises:
        UnsupportedError: a Keras 3 object, not a model, a subclassed model, or a model
            with nested models; the message says how to fix it.
    """
    from tfhsi._keras import keras

    if not isinstance(model, keras.Model):
        cls = f"{type(model).__module__}.{type(model).__qualname__}"
        if is_keras3_object(model):
            raise UnsupportedError(
                f"{what} needs a tf_keras (Keras 2) model, but got a Keras 3 "
                f"{type(model).__name__} ({cls}): TF-MOT and tfhsi work with Keras 2 only. "
                f"Fix: {KERAS2_FIX}, then load the weights into it."
            )
        raise UnsupportedError(
            f"{what} needs a tf_keras.Model (functional or Sequential); got {cls}. "
            "Fix: return keras.Model(inputs, outputs) built with `from tfhsi import keras`."
        )
    if not (isinstance(model, keras.Sequential) or getattr(model, "_is_graph_network", False)):
        distiller = "Distiller" in type(model).__name__
        fix = (
            "take finalize_distillation(distiller) first"
            if distiller
            else "rebuild it with keras.Input(...) and keras.Model(inputs, outputs)"
        )
        raise UnsupportedError(
            f"{what} needs a functional or Sequential model; {model.name!r} is a subclassed "
            f"{type(model).__name__}. Fix: {fix}."
        )
    nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    if nested and not allow_nested:
        raise UnsupportedError(
            f"{what} does not descend into nested models ({', '.join(nested)} in "
            f"{model.name!r}); build the model flat (call the inner layers directly)."
        )


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _is_custom(layer: Any) -> bool:
    module = type(layer).__module__ or ""
    return not module.startswith(("tf_keras.", "tensorflow_model_optimization."))


def require_rebuildable(model: Any, *, what: str) -> None:
    """Raises UnsupportedError naming each custom layer that ``from_config(get_config())`` cannot rebuild.

    Pruning, clustering, QAT and the Conv3D lowering clone the model layer by layer, so a
    custom layer must re-create itself from its config with weights of the same shapes.
    Standard tf_keras layers are not checked.
    """
    problems = []
    for layer in getattr(model, "layers", ()):
        if not _is_custom(layer):
            continue
        cls = type(layer).__name__
        try:
            fresh = type(layer).from_config(layer.get_config())
        except Exception as exc:  # the user's code: any error means "cannot rebuild"
            problems.append(f"{layer.name!r} ({cls}: {_brief(exc)})")
            continue
        if not layer.built or not layer.weights:
            continue
        try:
            fresh.build(layer.input_shape)
        except Exception as exc:
            problems.append(f"{layer.name!r} ({cls}: building the copy fails, {_brief(exc)})")
            continue
        old = [tuple(w.shape) for w in layer.weights]
        new = [tuple(w.shape) for w in fresh.weights]
        if old != new:
            problems.append(f"{layer.name!r} ({cls}: rebuilt, its weights are {new}, not {old})")
    if problems:
        raise UnsupportedError(
            f"{what} clones the model, but custom layer(s) cannot be re-created from their "
            f"config: {'; '.join(problems)}. Fix: give the layer a get_config() returning every "
            "__init__ argument ({**super().get_config(), 'units': self.units, ...})."
        )
