"""Code registered at run time from outside tfhsi (a user's method or model module), carried to
worker processes.

A ``spawn`` process-pool worker or a Ray worker starts a fresh interpreter: it does not see what
the parent registered. Registries call :func:`remember` for objects defined outside tfhsi; the
executors pass :func:`sources` to each worker, which calls :func:`load` before its task.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

_SOURCES: dict[str, str | None] = {}


def remember(obj: Any) -> None:
    """Records the module defining ``obj`` when it is not part of tfhsi."""
    module = getattr(obj, "__module__", None)
    if not module or module == "tfhsi" or module.startswith("tfhsi."):
        return
    _SOURCES.setdefault(module, getattr(sys.modules.get(module), "__file__", None))


def sources() -> list[tuple[str, str | None]]:
    """(module name, file) of every remembered module, in registration order."""
    return list(_SOURCES.items())


def load(modules: list[tuple[str, str | None]] | list[list[Any]]) -> None:
    """Imports each module (by name, else from its file) unless this process has it already."""
    for name, file in modules:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
            continue
        except ImportError:
            if not file:
                raise
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
            raise ImportError(f"cannot load plugin module {name!r} from {file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
