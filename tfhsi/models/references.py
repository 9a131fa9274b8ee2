"""Models from the user's code or files: one reference string for every place that needs a model.

A reference is one of

* a zoo name (``hybridsn``, see ``tfhsi models list``);
* ``path/to/file.py:function`` - a builder in a file anywhere on disk;
* ``package.module:function`` - a builder in an importable module;
* ``path/to/model.keras`` or ``.h5`` - a saved ``tf_keras`` model, weights included.

:func:`check_model_ref` checks the syntax and that the file or package exists, without
importing TensorFlow or the user's code (for recipe validation); :func:`resolve_model`
imports the builder (or reads the file's config) and returns a :class:`ModelSource`,
whose ``ref`` has absolute file paths, so a process-pool or Ray worker resolves the
same model from it. ``ModelSource.build`` makes the model and checks that it is a flat
functional tf_keras model taking the run's patches and scoring its classes.

Builders are called as ``fn(bands=..., n_classes=..., patch_size=...)``, plus ``width``
and ``seed`` when their signature takes them (or ``**kwargs``); before the call the
global seeds are set (``keras.utils.set_random_seed(seed)``), so a builder that takes no
seed still gives the same weights for the same seed. A builder file is imported under a
module name made from its absolute path (two ``model.py`` files do not clash), with its
folder on ``sys.path`` only while it is imported (so it can import its neighbours at the
top), and imported again only when the file changes (see :mod:`tfhsi.models._user_code`).

Saved files load in safe mode: a model file holding code (a ``Lambda`` layer) is refused
unless ``unsafe=True`` (recipe ``unsafe: true``, CLI ``--unsafe-deserialization``). The
rule is the same for ``.h5`` files, which Keras 2 loads without any safe mode: tfhsi
reads the file's config first and refuses any ``Lambda`` layer in it. Files saved by
Keras 3 are refused with the fix.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tfhsi.errors import (
    ConfigError,
    ModelRefError,
    TfhsiError,
    UnsupportedError,
    UserCodeError,
)
from tfhsi.keras_checks import KERAS2_FIX, is_keras3_object, require_functional
from tfhsi.layouts import infer_layout, layout_shape
from tfhsi.models import _saved_files, _user_code
from tfhsi.models._registry import MODELS, Layout, build_model

if TYPE_CHECKING:
    from tfhsi._keras import keras

__all__ = ["ModelSource", "SourceKind", "check_model_ref", "resolve_model"]

SourceKind = Literal["zoo", "builder", "saved"]
#: ``(layout, patch, bands)``; bands ``None`` = all the scene's bands (zoo defaults).
InputSpec = tuple[Layout, int, int | None]

_SAVED_SUFFIXES = (".keras", ".h5")
_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_FORMS = (
    "a zoo name (`tfhsi models list`), `path/to/file.py:function`, "
    "`package.module:function` or a saved `.keras` / `.h5` file"
)


# ---------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Parsed:
    kind: SourceKind
    target: str  # zoo name, absolute file path or module name
    function: str = ""

    @property
    def ref(self) -> str:
        return f"{self.target}:{self.function}" if self.kind == "builder" else self.target

    @property
    def is_file(self) -> bool:
        return self.kind == "saved" or self.target.endswith(".py")


def _absolute(path: str, base_dir: str | os.PathLike[str] | None) -> str:
    path = os.path.expanduser(path)
    if base_dir is not None and not os.path.isabs(path):
        path = os.path.join(os.fspath(base_dir), path)
    return os.path.abspath(path)


def _parse(ref: object, base_dir: str | os.PathLike[str] | None = None) -> _Parsed:
    if not isinstance(ref, str) or not ref.strip():
        raise ModelRefError(
            f"a model reference must be a non-empty string; got {ref!r}. Give {_FORMS}."
        )
    ref = ref.strip()
    if ref.lower().endswith(_SAVED_SUFFIXES):
        return _Parsed("saved", _absolute(ref, base_dir))
    if ":" in ref and not re.fullmatch(r"[A-Za-z]:[\\/][^:]*", ref):  # not a bare Windows path
        left, function = ref.rsplit(":", 1)
        if not _IDENTIFIER.fullmatch(function):
            raise ModelRefError(
                f"model reference {ref!r}: {function!r} after the ':' is not a function name; "
                f"give {_FORMS}."
            )
        if left.endswith(".py"):
            return _Parsed("builder", _absolute(left, base_dir), function)
        if _MODULE.fullmatch(left):
            return _Parsed("builder", left, function)
        raise ModelRefError(
            f"model reference {ref!r}: {left!r} is neither a .py file nor a dotted module "
            f"name; give {_FORMS}."
        )
    if ref.endswith(".py"):
        raise ModelRefError(
            f"model reference {ref!r} names a file but no function; add the builder's name, "
            f"e.g. `{ref}:build_model`."
        )
    if ref not in MODELS:
        if "/" in ref or os.sep in ref or Path(ref).suffix:
            raise ModelRefError(
                f"model reference {ref!r} is not a model tfhsi can use ({Path(ref).suffix or 'a path'}); "
                f"give {_FORMS}."
            )
        raise ModelRefError(
            f"{MODELS.unknown_message(ref)} Or give `path/to/file.py:function`, "
            "`package.module:function` or a saved `.keras` / `.h5` file."
        )
    return _Parsed("zoo", ref)


def _check_exists(parsed: _Parsed) -> None:
    if parsed.is_file:
        path = Path(parsed.target)
        if not path.is_file():
            what = "model file" if parsed.kind == "saved" else "builder file"
            folder = "" if path.parent.is_dir() else f" (nor does its folder {path.parent})"
            raise ModelRefError(f"{what} {parsed.target} does not exist{folder}; check the path.")
        return
    if parsed.kind == "builder":
        top = parsed.target.split(".")[0]
        if importlib.util.find_spec(top) is None:
            raise ModelRefError(
                f"model reference {parsed.ref!r}: no module named {top!r} is importable; install "
                "the package or add its folder to PYTHONPATH (or give `path/to/file.py:function`)."
            )


def check_model_ref(value: str, *, base_dir: str | os.PathLike[str] | None = None) -> str:
    """Checks a model reference's syntax and existence; returns it normalised (absolute paths).

    Cheap enough for a recipe validator: it imports neither TensorFlow nor the user's
    code (a builder file is parsed, not run, to check that it defines the function).

    Args:
        value: The reference (see the module doc).
        base_dir: Folder that relative file paths are relative to (e.g. the recipe's);
            ``None`` = the current directory.

    Raises:
        ModelRefError: unknown zoo name (with suggestions), malformed reference, missing
            file or package, or a builder file that does not define the function.
        UserCodeError: the builder file has a syntax error.
    """
    parsed = _parse(value, base_dir)
    _check_exists(parsed)
    if parsed.kind == "builder" and parsed.is_file:
        source = Path(parsed.target).read_text(encoding="utf-8", errors="replace")
        try:
            tree = ast.parse(source, filename=parsed.target)
        except SyntaxError as exc:
            raise UserCodeError(
                f"cannot import builder file {parsed.target}: SyntaxError: {exc.msg} "
                f"(at {parsed.target}:{exc.lineno})."
            ) from None
        names = _user_code.top_level_names(tree)
        if names is not None and parsed.function not in names:
            defs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
            raise _user_code.no_such_function(
                f"builder file {parsed.target}", parsed.function, defs
            )
    return parsed.ref


def _load_builder(parsed: _Parsed) -> Callable[..., Any]:
    if parsed.is_file:
        _check_exists(parsed)
        module = _user_code.import_file(parsed.target)
        where = f"builder file {parsed.target}"
    else:
        module = _user_code.import_module(parsed.target)
        where = f"module {parsed.target}"
    function = getattr(module, parsed.function, None)
    if function is None:
        candidates = [n for n, v in vars(module).items() if callable(v)]
        raise _user_code.no_such_function(where, parsed.function, candidates)
    if not callable(function):
        raise ModelRefError(
            f"{parsed.function!r} in {where} is a {type(function).__name__}, not a function; "
            "name the function that builds the model."
        )
    return function  # type: ignore[no-any-return]


# ---------------------------------------------------------------- checks


def _check_fits(
    model: Any, *, what: str, bands: int, n_classes: int, patch_size: int, builder: bool
) -> None:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedError(
            f"{what} has {len(model.inputs)} input(s) and {len(model.outputs)} output(s); tfhsi "
            "needs one patch input and one logits output."
        )
    shape = tuple(model.inputs[0].shape[1:])
    found = infer_layout(shape)
    if found is None:
        raise UnsupportedError(
            f"{what} takes inputs of shape {shape}; tfhsi feeds static (patch, patch, bands) "
            "('2d'), (patch, patch, bands, 1) ('3d') or (bands, 1) ('1d') samples. Fix: start "
            "the model with keras.Input(shape=(patch_size, patch_size, bands)) or one of the others."
        )
    expected = layout_shape(found[0], patch_size=patch_size, bands=bands)
    if shape != expected:
        fix = (
            f"build keras.Input(shape={expected}) from the bands/patch_size arguments"
            if builder
            else "set the recipe's patch and pca (bands) to match the file, or re-save the "
            "model for this data"
        )
        raise ConfigError(
            f"{what} takes inputs of shape {shape}, but the run feeds {expected} "
            f"(bands={bands}, patch_size={patch_size}). Fix: {fix}."
        )
    out = tuple(model.outputs[0].shape[1:])
    if out != (n_classes,):
        fix = (
            "end it with keras.layers.Dense(n_classes) using the n_classes argument"
            if builder
            else "give a model trained for this scene's classes"
        )
        raise ConfigError(
            f"{what} outputs shape {out}, but the scene has {n_classes} classes (expected "
            f"({n_classes},)). Fix: {fix}."
        )
    last = model.outputs[0]._keras_history.layer
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    if type(last).__name__ == "Softmax" or activation == "softmax":
        raise UnsupportedError(
            f"{what} ends in a softmax ({last.name!r}); tfhsi trains and distils on logits. "
            "Fix: end the model with keras.layers.Dense(n_classes) with no activation."
        )


# ---------------------------------------------------------------- the source


@dataclass(frozen=True)
class ModelSource:
    """A resolved model reference; picklable, so workers can build the same model.

    Attributes:
        ref: The normalised reference (absolute file paths).
        kind: ``"zoo"``, ``"builder"`` or ``"saved"``.
        name: A short display name (zoo name, ``stem.function``, file stem).
        unsafe: Whether a saved file may run code stored in it (Lambda layers).
    """

    ref: str
    kind: SourceKind
    name: str
    unsafe: bool = False

    def build(
        self,
        *,
        bands: int,
        n_classes: int,
        patch_size: int,
        width: float = 1.0,
        seed: int | None = 0,
    ) -> keras.Model:
        """The model for ``bands``-band ``patch_size`` patches and ``n_classes`` classes.

        Zoo models are built by :func:`~tfhsi.models.build_model`; builders are called
        (see the module doc); saved files are loaded with their weights (``width`` and
        ``seed`` do not apply). The result is checked: a flat functional or Sequential
        tf_keras model taking the run's patches and ending in ``n_classes`` logits.

        Raises:
            UserCodeError: the builder raised (its exception and file:line in the message).
            UnsupportedError: not a tf_keras functional model (e.g. Keras 3), or its
                inputs/outputs are not a patch and logits.
            ConfigError: its input or output shape does not match the run's.
        """
        parsed = _parse(self.ref)
        what = f"model {self.ref}"
        if parsed.kind == "zoo":
            return build_model(
                self.ref,
                bands=bands,
                n_classes=n_classes,
                patch_size=patch_size,
                width=width,
                seed=seed,
            )
        if parsed.kind == "saved":
            model = _saved_files.load_saved(parsed.target, unsafe=self.unsafe)
            require_functional(model, what=what)
            _check_fits(
                model,
                what=what,
                bands=bands,
                n_classes=n_classes,
                patch_size=patch_size,
                builder=False,
            )
            return model
        from tfhsi._keras import keras

        what = f"builder {self.ref}"
        function = _load_builder(parsed)
        base = {"bands": int(bands), "n_classes": int(n_classes), "patch_size": int(patch_size)}
        kwargs = _user_code.builder_kwargs(
            function, base, {"width": float(width), "seed": seed}, what
        )
        if seed is not None:
            keras.utils.set_random_seed(int(seed))
        try:
            model = function(**kwargs)
        except TfhsiError:
            raise
        except Exception as exc:
            user_file = parsed.target if parsed.is_file else None
            raise _user_code.user_error(f"{what} raised", exc, user_file) from None
        if is_keras3_object(model):
            raise UnsupportedError(
                f"{what} returned a Keras 3 {type(model).__name__}; tfhsi needs tf_keras (Keras 2) "
                f"models. Fix: in the builder file, {KERAS2_FIX}."
            )
        if not isinstance(model, keras.Model):
            raise UnsupportedError(
                f"{what} returned a {type(model).__module__}.{type(model).__qualname__}, not a "
                "tf_keras model. Fix: return keras.Model(inputs, outputs) built with "
                "`from tfhsi import keras`."
            )
        require_functional(model, what=what)
        _check_fits(
            model, what=what, bands=bands, n_classes=n_classes, patch_size=patch_size, builder=True
        )
        return model

    @property
    def file(self) -> Path | None:
        """The user's file this model is read from (a builder's ``.py`` or a saved model)."""
        parsed = _parse(self.ref)
        return Path(parsed.target) if parsed.is_file else None

    def input_size(
        self, scene_bands: int, *, patch: int | None = None, pca: int | None = None
    ) -> tuple[int, int | None]:
        """(patch, PCA components or None) this model is fed on a scene with ``scene_bands``
        bands: the zoo's rule (:meth:`ModelSpec.input_size`), a builder's asked patch, or what a
        saved model's input says (a differing ``patch``/``pca`` names both sides).

        Raises:
            ConfigError: a builder without a patch size, or a saved model that cannot take
                this scene's bands or the patch asked for.
        """
        if self.kind == "zoo":
            return MODELS.get(self.ref).input_size(scene_bands, patch=patch, pca=pca)
        if self.kind == "builder":
            if patch is None:
                raise ConfigError(
                    f"model {self.ref}: a model built by your code needs its patch size; set "
                    "`patch:` in the recipe's model section (or --patch), e.g. patch: 9."
                )
            return patch, (None if pca is None or pca >= scene_bands else pca)
        layout, k, bands = self.input_spec()  # type: ignore[misc]
        if patch is not None and layout != "1d" and patch != k:
            raise ConfigError(
                f"model {self.ref} takes {k}×{k} patches but patch: {patch} was asked; drop "
                f"`patch` or set it to {k}."
            )
        wanted = None if bands is None or bands == scene_bands else bands
        if bands is not None and bands > scene_bands:
            raise ConfigError(
                f"model {self.ref} takes {bands} bands but the scene has {scene_bands}; use the "
                "scene it was made for, or a model built for this one."
            )
        if pca is not None and pca != (wanted or scene_bands):
            raise ConfigError(
                f"model {self.ref} takes {bands} bands but pca: {pca} was asked; drop `pca` "
                f"(its input gives {'no PCA' if wanted is None else f'pca: {wanted}'})."
            )
        return k, wanted

    def input_spec(self) -> InputSpec | None:
        """``(layout, patch, bands)`` the model takes, when known before building.

        Zoo models give their spec's defaults (bands ``None`` = all the scene's bands);
        saved files are read from the model's input (without loading TensorFlow when the
        file's config says); builders give ``None`` (their input depends on the arguments).

        Raises:
            UnsupportedError: a saved model whose input is not a patch tfhsi can feed.
        """
        parsed = _parse(self.ref)
        if parsed.kind == "zoo":
            spec = MODELS.get(self.ref)
            return spec.layout, spec.default_patch, spec.default_bands
        if parsed.kind == "builder":
            return None
        config = _saved_files.check_saved(parsed.target, unsafe=self.unsafe)
        shape = _saved_files.input_shape_from_config(config)
        if shape is None:
            shape = tuple(
                _saved_files.load_saved(parsed.target, unsafe=self.unsafe).inputs[0].shape[1:]
            )
        found = infer_layout(shape)
        if found is None:
            raise UnsupportedError(
                f"model {self.ref} takes inputs of shape {shape}; tfhsi feeds static (patch, "
                "patch, bands) ('2d'), (patch, patch, bands, 1) ('3d') or (bands, 1) ('1d') samples."
            )
        return found


def resolve_model(
    ref: str, *, unsafe: bool = False, base_dir: str | os.PathLike[str] | None = None
) -> ModelSource:
    """Resolves a model reference (see the module doc) to a :class:`ModelSource`.

    Builders are imported (once per file version) and saved files' configs read, so a
    bad reference fails here, in one line, before any training.

    Args:
        ref: Zoo name, ``file.py:function``, ``package.module:function`` or a ``.keras`` /
            ``.h5`` path (relative paths are made absolute).
        unsafe: Let a saved file run the code stored in it (Lambda layers); only for
            files you trust.
        base_dir: Folder that relative file paths are relative to; ``None`` = the
            current directory.

    Raises:
        ModelRefError: malformed reference, unknown zoo name, missing file or module,
            no such function.
        UserCodeError: the builder's module fails to import (its error and file:line).
        UnsafeModelFileError: a saved file holds code and ``unsafe`` is False.
        UnsupportedError: a file saved by Keras 3.
    """
    parsed = _parse(check_model_ref(ref, base_dir=base_dir))
    if parsed.kind == "zoo":
        return ModelSource(ref=parsed.ref, kind="zoo", name=parsed.ref)
    if parsed.kind == "saved":
        _saved_files.check_saved(parsed.target, unsafe=unsafe)
        return ModelSource(
            ref=parsed.ref, kind="saved", name=Path(parsed.target).stem, unsafe=unsafe
        )
    _load_builder(parsed)
    stem = Path(parsed.target).stem if parsed.is_file else parsed.target.rsplit(".", 1)[-1]
    return ModelSource(
        ref=parsed.ref, kind="builder", name=f"{stem}.{parsed.function}", unsafe=unsafe
    )
