"""tfhsi: model optimisation for hyperspectral image classification with TensorFlow.

Importing the package is cheap: TensorFlow is loaded only by :mod:`tfhsi._keras`, and only
when something that needs it is used. The verbs below are looked up on first access from
:data:`_VERBS` (name → ``"module:attribute"``), so ``import tfhsi`` imports none of them.

Example:
    >>> import tfhsi
    >>> scene = tfhsi.load_scene("synthetic:16x16x8x3")
    >>> model = tfhsi.build_model("cnn1d", bands=8, n_classes=3)  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

__version__ = "0.1.0"

# The public verbs: one line each. ``attribute`` may be dotted (an attribute of an object).
_VERBS: dict[str, str] = {
    # TensorFlow handles (tf.keras is tf_keras: Keras 2, which TF-MOT needs)
    "keras": "tfhsi._keras:keras",
    "tf": "tfhsi._keras:tf",
    # data
    "load_scene": "tfhsi.data.datasets:open_dataset",
    "list_scenes": "tfhsi.data.scenes:SCENES.names",
    "make_split": "tfhsi.data.splits:make_split",
    "prepare": "tfhsi.data.prepared:prepare",
    # models and training
    "build_model": "tfhsi.models:build_model",
    "list_models": "tfhsi.models:MODELS.names",
    "fit": "tfhsi.api:fit",
    "evaluate": "tfhsi.api:evaluate",
    "train_model": "tfhsi.train.fit:train_model",
    # compression (each runs the registered method a recipe step runs)
    "prune": "tfhsi.api:prune",
    "filter_prune": "tfhsi.api:filter_prune",
    "cluster": "tfhsi.api:cluster",
    "qat": "tfhsi.api:qat",
    "distill": "tfhsi.api:distill",
    "apply_method": "tfhsi.api:apply",
    "list_methods": "tfhsi.methods:METHODS.names",
    "lower_conv3d": "tfhsi.compress.lower:lower_conv3d",
    # export and deployment
    "export_tflite": "tfhsi.deployment:export_tflite",
    "list_presets": "tfhsi.export.presets:PRESETS.names",
    "convert": "tfhsi.export.tflite:convert",
    "write_tflite": "tfhsi.export.tflite:write_tflite",
    "audit": "tfhsi.export.inspect:audit",
    "measure": "tfhsi.deployment:measure",
    "find_min_arena": "tfhsi.profile.mcu:find_min_arena",
    # recipes
    "load_recipe": "tfhsi.recipes.loading:load_recipe",
    "run_recipe": "tfhsi.recipes.runner:run_recipe",
}

__all__ = [*_VERBS, "__version__"]


def __getattr__(name: str) -> Any:
    """Imports the module behind a verb on first access and caches the verb."""
    target = _VERBS.get(name)
    if target is None:
        close = difflib.get_close_matches(name, list(_VERBS), n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise AttributeError(f"module 'tfhsi' has no attribute {name!r}.{hint}", name=name)
    module_name, _, attribute = target.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_VERBS})
