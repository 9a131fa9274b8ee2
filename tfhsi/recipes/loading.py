"""Finding, safely parsing, overriding and validating recipes, with one-line errors.

YAML is parsed with the safe loader only, after a scan that refuses aliases (no
"billion laughs"), documents over 1 MiB and nesting deeper than 32 levels.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tfhsi.errors import RecipeError, TfhsiError
from tfhsi.recipes.schema import Recipe

MAX_BYTES = 1 << 20
MAX_DEPTH = 32
ENV_VAR = "TFHSI_RECIPES_DIR"


def recipe_dirs() -> list[Path]:
    """Where named recipes are looked up: ``$TFHSI_RECIPES_DIR``, then the shipped ``recipes/``."""
    dirs = [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    shipped = Path(__file__).resolve().parents[2] / "recipes"
    return [*dirs, shipped]


def list_recipes() -> dict[str, Path]:
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
    return validate(data, source=str(path)), path


def validate(data: dict[str, Any], *, source: str) -> Recipe:
    try:
        return Recipe.model_validate(data)
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
    from tfhsi.recipes.schema import STEP_TYPES

    parts = [str(p) for p in loc]
    return [
        p for i, p in enumerate(parts) if not (p in STEP_TYPES and i > 0 and parts[i - 1].isdigit())
    ]


def describe_error(error: Mapping[str, Any]) -> str:
    """One line: the field path, what is wrong and how to fix it."""
    from tfhsi.recipes.schema import METHODS

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
        return f"{field}: unknown method {given!r}; valid methods: {', '.join(METHODS)}."
    if kind == "union_tag_not_found":
        return f"{field}: each step needs 'method: <{'|'.join(METHODS)}>'."
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
    from tfhsi.recipes.schema import STEP_TYPES

    model: type[BaseModel] = Recipe
    for part in loc:
        if part.isdigit():
            continue
        if part in STEP_TYPES and part not in model.model_fields:
            model = STEP_TYPES[part]
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
