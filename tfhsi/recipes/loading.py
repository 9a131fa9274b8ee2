"""Finding, safely parsing, overriding and validating recipes, with one-line errors.

YAML is parsed with the safe loader only, after a scan that refuses aliases (no
"billion laughs"), documents over 1 MiB and nesting deeper than 32 levels.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tfhsi.errors import RecipeError, TfhsiError
from tfhsi.methods import METHODS
from tfhsi.recipes.schema import Recipe

MAX_BYTES = 1 << 20
MAX_DEPTH = 32
ENV_VAR = "TFHSI_RECIPES_DIR"
SHIPPED_PACKAGE = "tfhsi.builtin_recipes"  # recipes/ at build time, see pyproject.toml


def recipe_dirs() -> list[Path]:
    """Where named recipes are looked up: ``$TFHSI_RECIPES_DIR``, then the shipped recipes."""
    dirs = [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    return [*dirs, *shipped_recipe_dirs()]


def shipped_recipe_dirs() -> list[Path]:
    """The folders of the shipped recipes (the repository's top-level ``recipes/``).

    Installed (wheel or editable), they are the data package ``tfhsi.builtin_recipes``; in a
    source checkout that is imported without being installed, the ``recipes/`` folder beside
    the package.
    """
    try:
        root = resources.files(SHIPPED_PACKAGE)
    except ModuleNotFoundError:
        source = Path(__file__).resolve().parents[2] / "recipes"
        return [source] if source.is_dir() else []
    # A namespace package (no __init__.py) may span folders; pip installs them unzipped.
    folders = {Path(str(item)).parent for item in root.iterdir() if item.name.endswith(".yaml")}
    return sorted(folders)


def list_recipes() -> dict[str, Path]:
    """Recipe names → files; a user folder's recipe overrides a shipped one of the same name."""
    found: dict[str, Path] = {}
    for folder in reversed(recipe_dirs()):
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            found[path.stem] = path
    return dict(sorted(found.items()))


def find_recipe(name_or_path: str) -> Path:
    """A recipe file from a path or a shipped/user recipe name."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise RecipeError(f"recipe file {path} does not exist.")
        return path
    known = list_recipes()
    if name_or_path in known:
        return known[name_or_path]
    close = difflib.get_close_matches(name_or_path, list(known), n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise RecipeError(
        f"unknown recipe {name_or_path!r}.{hint} Shipped and user recipes: {', '.join(known) or 'none'} "
        f"(see `tfhsi recipe list`; a path to a .yaml file works too)."
    )


def safe_yaml(text: str, *, source: str) -> Any:
    """Parses YAML with the safe loader after refusing aliases, huge and deeply nested input."""
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise RecipeError(
            f"{source}: larger than {MAX_BYTES // 1024} KiB; a recipe is a few lines of YAML."
        )
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise RecipeError(
                    f"{source}: YAML aliases (*name) are not allowed in recipes; write values out."
                )
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise RecipeError(
                        f"{source}: nested deeper than {MAX_DEPTH} levels; not a recipe."
                    )
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"{source}:{where}: invalid YAML ({problem}).") from None


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Applies ``key.path=value`` (value parsed as YAML; list items by index)."""
    if "=" not in assignment:
        raise RecipeError(
            f"--set {assignment!r}: expected key.path=value, e.g. teacher.train.epochs=50."
        )
    path, raw = assignment.split("=", 1)
    keys = [k for k in path.strip().split(".") if k]
    if not keys:
        raise RecipeError(f"--set {assignment!r}: empty key path.")
    value = safe_yaml(raw, source=f"--set {_one_line(path)}")
    node: Any = data
    for i, key in enumerate(keys[:-1]):
        node = _child(node, key, _one_line(".".join(keys[: i + 1])), create=True)
    last = keys[-1]
    if isinstance(node, list):
        node[_index(node, last, _one_line(path))] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        parent = _one_line(".".join(keys[:-1]))
        raise RecipeError(f"--set {_one_line(path)}: {parent} is a value, not a section.")


def _one_line(text: str) -> str:
    """``text`` as typed, or quoted when it holds line breaks or control characters."""
    return text if text.isprintable() else repr(text)


def _index(node: list[Any], key: str, path: str) -> int:
    if not (key.isascii() and key.isdigit()) or int(key) >= len(node):
        raise RecipeError(f"--set {path}: {key!r} is not an index of a list of {len(node)} items.")
    return int(key)


def _child(node: Any, key: str, path: str, *, create: bool) -> Any:
    if isinstance(node, list):
        return node[_index(node, key, path)]
    if not isinstance(node, dict):
        raise RecipeError(f"--set {path}: the parent is a value, not a section.")
    if key not in node and create:
        node[key] = {}
    return node[key]


def load_recipe(name_or_path: str, *, overrides: tuple[str, ...] = ()) -> tuple[Recipe, Path]:
    """Finds, parses, overrides and validates a recipe."""
    path = find_recipe(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"cannot read recipe {path}: {exc}.") from None
    data = safe_yaml(text, source=str(path))
    if not isinstance(data, dict):
        raise RecipeError(
            f"{path}: a recipe is a YAML mapping (key: value lines), got {type(data).__name__}."
        )
    for assignment in overrides:
        apply_override(data, assignment)
    return validate(data, source=str(path), base_dir=path.parent), path


def validate(data: dict[str, Any], *, source: str, base_dir: Path | None = None) -> Recipe:
    """The recipe ``data`` (from ``source``) validated; relative paths of models and scene files
    are read from ``base_dir`` (the recipe's folder; default: the working directory)."""
    try:
        context = {"base_dir": str(base_dir.resolve())} if base_dir is not None else None
        return Recipe.model_validate(data, context=context)
    except ValidationError as exc:
        errors = exc.errors()
        first = describe_error(errors[0])
        more = (
            f" (+{len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
            if len(errors) > 1
            else ""
        )
        raise RecipeError(f"{source}: {first}{more}") from None
    except TfhsiError as exc:  # e.g. a malformed split spec raised by a validator
        raise RecipeError(f"{source}: {exc}") from None


def _clean_loc(loc: tuple[Any, ...]) -> list[str]:
    """The user's key path: pydantic's discriminator tags (``steps.0.prune``) dropped."""
    parts = [str(p) for p in loc]
    return [
        p for i, p in enumerate(parts) if not (p in METHODS and i > 0 and parts[i - 1].isdigit())
    ]


def describe_error(error: Mapping[str, Any]) -> str:
    """One line: the field path, what is wrong and how to fix it."""
    raw = [str(part) for part in error.get("loc", ())]
    loc = _clean_loc(tuple(raw))
    kind = error.get("type", "")
    field = ".".join(p if p.isprintable() else repr(p) for p in loc) or "recipe"  # one line
    if kind == "extra_forbidden":
        key = loc[-1]
        allowed = _allowed_keys(raw[:-1])
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else f"; allowed keys: {', '.join(allowed)}"
        return f"{field}: unknown key {key!r}{hint}"
    if kind == "missing":
        return f"{field}: required field is missing; add it."
    if kind == "union_tag_invalid":
        given = (
            error.get("input", {}).get("method") if isinstance(error.get("input"), dict) else None
        )
        return (
            f"{field}: unknown method {given!r}; valid methods: {', '.join(METHODS.registered())}."
        )
    if kind == "union_tag_not_found":
        return f"{field}: each step needs 'method: <{'|'.join(METHODS.registered())}>'."
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    given = error.get("input")
    shown = (
        ""
        if isinstance(given, dict | list) or kind.startswith("value_error")
        else f" (got {given!r})"
    )
    return f"{field}: {message}{shown}"


def _allowed_keys(loc: list[str]) -> list[str]:
    """Field names of the schema section at ``loc`` (for 'did you mean')."""
    model: type[BaseModel] = Recipe
    for part in loc:
        if part.isdigit():
            continue
        if part in METHODS and part not in model.model_fields:  # a step's method tag
            model = METHODS.get(part).options
            continue
        nested = (
            _model_in(model.model_fields[part].annotation) if part in model.model_fields else None
        )
        if nested is None:
            break
        model = nested
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
