"""Importing and calling the user's builder code, with one-line errors that point into it.

A builder file is imported under a module name made from its absolute path (two
``model.py`` files do not clash), with its folder on ``sys.path`` only while it is
imported (so import its neighbour modules at the top of the file; they are then dropped
from ``sys.modules``, so another folder's ``blocks.py`` does not clash either), and
imported again only when the file changes.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from tfhsi.errors import ModelRefError, UserCodeError

builders: dict[tuple[str, int], ModuleType] = {}


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) as one space."""
    return " ".join(str(text).split())


def top_level_names(tree: ast.Module) -> set[str] | None:
    """Names a module binds (``None`` when it may bind names we cannot see)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
    return None if "__getattr__" in names else names


def no_such_function(where: str, function: str, candidates: list[str]) -> ModelRefError:
    """The error for a missing builder, with close matches among ``candidates``."""
    public = sorted(n for n in candidates if not n.startswith("_"))
    close = difflib.get_close_matches(function, public, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    listed = ", ".join(public[:8]) + (" ..." if len(public) > 8 else "")
    return ModelRefError(
        f"{where} has no function {function!r}.{hint} Functions there: {listed or 'none'}."
    )


def location(exc: BaseException, user_file: str | None) -> str:
    """``file:line`` of the user's code where ``exc`` happened."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    if user_file is not None:
        mine = [f for f in frames if os.path.abspath(f.filename) == user_file]
        if mine:
            return f"{mine[-1].filename}:{mine[-1].lineno}"
    skip = (os.path.dirname(os.path.dirname(__file__)), sys.prefix, sys.base_prefix)
    theirs = [f for f in frames if not f.filename.startswith(skip) and "<frozen" not in f.filename]
    chosen = theirs or list(frames)
    return f"{chosen[-1].filename}:{chosen[-1].lineno}" if chosen else "unknown location"


def user_error(what: str, exc: BaseException, user_file: str | None) -> UserCodeError:
    """A one-line UserCodeError: the user's exception type, message and file:line."""
    return UserCodeError(
        f"{what} {type(exc).__name__}: {one_line(exc)} (at {location(exc, user_file)})."
    )


def _forget_neighbours(names: set[str], folder: str) -> None:
    """Drops the builder's neighbour modules from ``sys.modules`` (the builder keeps them).

    So another builder folder with its own ``blocks.py`` imports its own, not this one.
    """
    inside = os.path.join(folder, "")
    for name in names:
        file = getattr(sys.modules.get(name), "__file__", None) or ""
        if os.path.abspath(file).startswith(inside):
            sys.modules.pop(name, None)


def import_file(path: str) -> ModuleType:
    """The module of a builder file, imported once per file version (see the module doc)."""
    mtime = os.stat(path).st_mtime_ns
    cached = builders.get((path, mtime))
    if cached is not None:
        return cached
    digest = hashlib.sha1(path.encode("utf-8")).hexdigest()[:12]
    stem = re.sub(r"\W", "_", Path(path).stem)
    name = f"tfhsi_user_model_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has one
        raise ModelRefError(f"builder file {path} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(path)
    sys.modules[name] = module  # dataclasses, pickling by reference, typing need it there
    before = set(sys.modules)
    sys.path.insert(0, folder)  # the file may import its neighbours, as when run as a script
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise user_error(f"cannot import builder file {path}:", exc, path) from None
    finally:
        with contextlib.suppress(ValueError):  # unless the user's code removed it
            sys.path.remove(folder)
        _forget_neighbours(set(sys.modules) - before, folder)
    for key in [k for k in builders if k[0] == path]:
        del builders[key]
    builders[(path, mtime)] = module
    return module


def import_module(name: str) -> ModuleType:
    """An importable module holding a builder; missing modules and import errors in one line."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise ModelRefError(
                f"no module named {exc.name!r} is importable (for {name}); install the package "
                "or add its folder to PYTHONPATH (or give `path/to/file.py:function`)."
            ) from None
        raise user_error(f"cannot import module {name}:", exc, None) from None
    except Exception as exc:
        raise user_error(f"cannot import module {name}:", exc, None) from None


def builder_kwargs(
    function: Callable[..., Any], base: dict[str, Any], extra: dict[str, Any], what: str
) -> dict[str, Any]:
    """``base`` plus those of ``extra`` the builder's signature takes; refuses signatures that cannot take ``base``."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):  # no signature (a C function): pass what it needs
        return base
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    kwargs = dict(base)
    kwargs.update({k: v for k, v in extra.items() if open_ended or k in parameters})
    try:
        inspect.signature(function).bind(**kwargs)
    except TypeError as exc:
        raise ModelRefError(
            f"{what} cannot be called as fn(bands=..., n_classes=..., patch_size=...[, width=..., "
            f"seed=...]): {one_line(exc)}. Give it keyword parameters bands, n_classes and "
            "patch_size (width and seed are optional)."
        ) from None
    return kwargs
