"""Saved ``.keras`` / ``.h5`` models: read the config without TensorFlow, refuse code, load.

Both formats are checked the same way before loading: a file saved by Keras 3 is refused,
and so is one holding a ``Lambda`` layer unless ``unsafe`` (Keras 2 loads ``.h5`` files
without any safe mode, so the config is read first). ``.keras`` files then load with
``safe_mode=not unsafe``.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfhsi.errors import DataFormatError, TfhsiError, UnsafeModelFileError, UnsupportedError
from tfhsi.keras_checks import KERAS2_FIX
from tfhsi.models._user_code import one_line

if TYPE_CHECKING:
    from tfhsi._keras import keras

UNSAFE_OPT_IN = "recipe `unsafe: true` in the model section, CLI `--unsafe-deserialization`"


def saved_config(path: str) -> tuple[str, dict[str, Any]]:
    """``(keras_version, model config)`` read from a ``.keras`` or ``.h5`` file without TensorFlow."""
    name = os.path.basename(path)
    try:
        if path.lower().endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                metadata = json.loads(archive.read("metadata.json"))
                config = json.loads(archive.read("config.json"))
            return str(metadata.get("keras_version", "")), config
        import h5py

        with h5py.File(path, "r") as f:
            version = f.attrs.get("keras_version", b"")
            raw = f.attrs.get("model_config")
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise DataFormatError(
            f"{name} is not a saved Keras model ({one_line(exc)}); save one with "
            f"model.save('{Path(name).stem}.keras')."
        ) from None
    if raw is None:
        raise DataFormatError(
            f"{name} holds weights only, no model; give the builder as `file.py:function` and "
            "load the weights into it, or save the whole model with model.save(...)."
        )
    decode = (lambda v: v.decode("utf-8")) if isinstance(raw, bytes) else str
    return decode(version), json.loads(decode(raw))


def walk_layers(config: Any) -> list[dict[str, Any]]:
    """Every dict with a ``class_name`` in a saved model config, nested ones included."""
    found: list[dict[str, Any]] = []
    if isinstance(config, dict):
        if "class_name" in config:
            found.append(config)
        for value in config.values():
            found.extend(walk_layers(value))
    elif isinstance(config, list):
        for value in config:
            found.extend(walk_layers(value))
    return found


def check_saved(path: str, *, unsafe: bool) -> dict[str, Any]:
    """The file's model config, after refusing Keras 3 files and (unless ``unsafe``) Lambda layers."""
    version, config = saved_config(path)
    name = os.path.basename(path)
    if version.startswith("3"):
        raise UnsupportedError(
            f"{name} was saved by Keras {version} (Keras 3); tfhsi needs tf_keras (Keras 2) "
            f"models. Fix: {KERAS2_FIX}, save it again, or give its builder as `file.py:function`."
        )
    lambdas = sorted(
        {
            str(c.get("config", {}).get("name", "?"))
            for c in walk_layers(config)
            if c.get("class_name") == "Lambda"
        }
    )
    if lambdas and not unsafe:
        raise UnsafeModelFileError(
            f"{name} holds Python code (Lambda layer(s) {', '.join(lambdas)}) that loading would "
            "execute; tfhsi loads models in safe mode and did not run it. If you trust the file, "
            f"opt in ({UNSAFE_OPT_IN}); or give the builder as `file.py:function`."
        )
    return config


def input_shape_from_config(config: dict[str, Any]) -> tuple[Any, ...] | None:
    """Per-sample input shape from the config's single input layer, or None."""
    inputs = [
        c
        for c in walk_layers(config)
        if c.get("class_name") == "InputLayer" or "batch_input_shape" in c.get("config", {})
    ]
    if len(inputs) != 1:
        return None
    shape = inputs[0].get("config", {}).get("batch_input_shape")
    return tuple(shape[1:]) if isinstance(shape, list) else None


def load_saved(path: str, *, unsafe: bool) -> keras.Model:
    """Loads a checked saved model (uncompiled, weights included); failures in one line."""
    from tfhsi._keras import keras

    check_saved(path, unsafe=unsafe)
    name = os.path.basename(path)
    try:
        if path.lower().endswith(".keras"):
            return keras.models.load_model(path, compile=False, safe_mode=not unsafe)
        return keras.models.load_model(path, compile=False)
    except TfhsiError:
        raise
    except Exception as exc:
        message = one_line(exc)
        unknown = re.search(r"Unknown (?:layer|object|class)[^']*'([^']+)'", message)
        if unknown:
            raise UnsupportedError(
                f"{name} uses the custom class {unknown.group(1)!r}, which is not registered; "
                "give the model's builder as `file.py:function` instead, or decorate the class "
                "with @keras.saving.register_keras_serializable() in a module imported first."
            ) from None
        raise DataFormatError(f"cannot load {name}: {type(exc).__name__}: {message}") from None
