"""The run record: ``<run_dir>/results.json`` as dataclasses, read with clear errors, written atomically.

The runner builds :class:`RunResults` from :class:`ResultRow` s (one per seed × variant × format)
and calls :func:`write_results`; reports call :func:`load_results`. Accuracy figures are
fractions in ``[0, 1]``; ``None`` means "not measured". A row whose ``error`` is set failed
and is reported as such. Keys this version does not know are kept in ``extra`` and written
back unchanged, so an older report can read a newer record.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfhsi.atomic import write_json
from tfhsi.errors import DataFormatError

__all__ = [
    "LEGACY_FORMATS",
    "RESULTS_FILE",
    "DatasetInfo",
    "ResultRow",
    "RunResults",
    "TargetFit",
    "current_format",
    "load_results",
    "write_results",
]

RESULTS_FILE = "results.json"

LEGACY_FORMATS = {"int8-lowered": "int8", "int16x8-lowered": "int16x8"}
"""Export labels of older records → today's preset: the Conv3D-lowered files are today's
``int8`` / ``int16x8`` (those presets lower Conv3D themselves)."""


def current_format(fmt: str, precision: str | None) -> str:
    """Today's name of an export recorded as ``fmt``: ``int8-lowered`` → ``int8``; an ``int8``
    row whose audit found float islands (the converter's default, as older versions named
    it) → ``int8-mixed``; anything else unchanged."""
    if fmt == "int8" and precision == "mixed":
        return "int8-mixed"
    return LEGACY_FORMATS.get(fmt, fmt)


@dataclass
class TargetFit:
    """Whether one deployment target (e.g. ``cortex-m4``) can hold and run a model."""

    fits: bool | None = None
    reasons: list[str] = field(default_factory=list)
    estimated_latency_ms: float | None = None


@dataclass
class DatasetInfo:
    """The scene a run used; ``synthetic`` marks generated data in every report."""

    name: str
    display: str = ""
    synthetic: bool = False
    shape: list[int] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return self.display or self.name


@dataclass
class ResultRow:
    """One measured model: a seed, a variant (teacher, student, ...) and a format.

    ``format`` is ``"keras"`` for the Keras model or the export preset that was asked for
    (``fp32``, ``fp16``, ``dynamic``, ``int8``, ``int8-mixed``, ``int16x8``); ``precision`` is
    what the audit of the file found (``int8``, ``mixed``, ``dynamic-range`` ...). Records of
    older versions are read with today's names (:func:`current_format`). Paths are relative
    to the run directory.
    """

    seed: int
    variant: str
    format: str
    precision: str | None = None
    model: str = ""
    stage: str = ""
    oa: float | None = None
    aa: float | None = None
    kappa: float | None = None
    per_class_accuracy: list[float | None] = field(default_factory=list)
    confusion: list[list[int]] | None = None
    parameters: int | None = None
    macs: int | None = None
    size_bytes: int | None = None
    gzip_bytes: int | None = None
    sparsity: float | None = None
    latency_ms: float | None = None
    latency_threads: int | None = None
    arena_bytes: int | None = None
    full_int8: bool | None = None
    targets: dict[str, TargetFit] = field(default_factory=dict)
    tflite: str | None = None
    map: str | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def is_teacher(self) -> bool:
        return self.stage == "teacher" or self.variant == "teacher"


@dataclass
class RunResults:
    """Everything one run measured, plus what is needed to reproduce it."""

    recipe: str
    dataset: DatasetInfo
    rows: list[ResultRow] = field(default_factory=list)
    description: str = ""
    quick: bool = False
    split: str = ""
    seeds: list[int] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    started: str = ""
    wall_time_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def random_split(self) -> bool:
        """Pixel-random splits leak (train and test patches overlap)."""
        return self.split.split(":", 1)[0].strip().lower() == "random"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in the documented layout (NaN becomes ``None``)."""
        out: dict[str, Any] = {
            "recipe": self.recipe,
            "description": self.description,
            "quick": self.quick,
            "dataset": _plain(self.dataset),
            "split": self.split,
            "seeds": list(self.seeds),
            "class_names": list(self.class_names),
            "targets": list(self.targets),
            "environment": self.environment,
            "command": self.command,
            "started": self.started,
            "wall_time_s": _finite(self.wall_time_s),
            "rows": [_row_dict(row) for row in self.rows],
        }
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Any, *, source: str = RESULTS_FILE) -> RunResults:
        """Validates a parsed ``results.json``; errors name ``source`` and the bad field."""
        return _parse_run(_Reader(source), data)


def load_results(run_dir: str | Path) -> RunResults:
    """Reads ``<run_dir>/results.json`` (or a path to the JSON file itself).

    Raises:
        DataFormatError: the file is missing, not JSON, or a field has the wrong type;
            the message names the file and the field.
    """
    path = Path(run_dir)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        hint = (
            "it is written by `tfhsi recipe run` at the end of a run; pass the run directory "
            "(runs/<recipe>/<stamp>)"
        )
        raise DataFormatError(f"no run record at {path}: {hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(
            f"{path} is not valid JSON ({exc}); re-run or repair the file"
        ) from None
    return RunResults.from_dict(data, source=str(path))


def write_results(run_dir: str | Path, results: RunResults) -> Path:
    """Atomically writes ``results`` to ``<run_dir>/results.json`` and returns the path."""
    return write_json(Path(run_dir) / RESULTS_FILE, results.to_dict())


# --- writing -------------------------------------------------------------------------------


def _finite(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _plain(obj: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(obj).items() if k != "extra"}


def _row_dict(row: ResultRow) -> dict[str, Any]:
    out = _plain(row)
    for key in ("oa", "aa", "kappa", "sparsity", "latency_ms"):
        out[key] = _finite(out[key])
    out["per_class_accuracy"] = [_finite(v) for v in row.per_class_accuracy]
    out["targets"] = {name: _plain(fit) for name, fit in row.targets.items()}
    out.update(row.extra)
    return out


# --- reading -------------------------------------------------------------------------------

_FIX = "fix the file or re-run the recipe to write it again"


@dataclass
class _Reader:
    source: str

    def fail(self, where: str, expected: str, value: Any) -> DataFormatError:
        shown = json.dumps(value)[:60] if _jsonable(value) else repr(value)[:60]
        return DataFormatError(
            f"{self.source}: field '{where}' must be {expected}, got {shown}; {_FIX}"
        )

    def obj(self, data: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(data, Mapping):
            raise self.fail(where or "(top level)", "a JSON object", data)
        return data

    def get(
        self, data: Mapping[str, Any], key: str, where: str, kind: str, *, default: Any = ...
    ) -> Any:
        path = f"{where}.{key}" if where else key
        if key not in data:
            if default is ...:
                raise DataFormatError(f"{self.source}: required field '{path}' is missing; {_FIX}")
            return default
        return self.value(data[key], path, kind)

    def items(self, data: Mapping[str, Any], key: str, where: str, kind: str) -> list[Any]:
        """An optional list field (null = empty) whose every item is ``kind``."""
        path = f"{where}.{key}" if where else key
        values = self.get(data, key, where, "list?", default=None) or []
        return [self.value(v, f"{path}[{i}]", kind) for i, v in enumerate(values)]

    def value(self, value: Any, path: str, kind: str) -> Any:
        nullable = kind.endswith("?")
        kind = kind.rstrip("?")
        if value is None:
            if nullable:
                return None
            raise self.fail(path, _KINDS[kind], value)
        ok = {
            "str": isinstance(value, str),
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "num": isinstance(value, (int, float)) and not isinstance(value, bool),
            "frac": isinstance(value, (int, float)) and not isinstance(value, bool),
            "list": isinstance(value, list),
            "dict": isinstance(value, Mapping),
        }[kind]
        if not ok:
            raise self.fail(path, _KINDS[kind], value)
        if kind == "frac" and not -1.0 <= value <= 1.0:  # kappa may be negative
            raise self.fail(path, "a fraction in [0, 1] (not a percentage)", value)
        return float(value) if kind in ("num", "frac") else value


_KINDS = {
    "str": "a string",
    "bool": "true or false",
    "int": "an integer",
    "num": "a number",
    "frac": "a fraction in [0, 1]",
    "list": "a list",
    "dict": "a JSON object",
}


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _parse_run(r: _Reader, data: Any) -> RunResults:
    d = r.obj(data, "")
    ds = r.obj(r.get(d, "dataset", "", "dict"), "dataset")
    dataset = DatasetInfo(
        name=r.get(ds, "name", "dataset", "str"),
        display=r.get(ds, "display", "dataset", "str?", default="") or "",
        synthetic=r.get(ds, "synthetic", "dataset", "bool", default=False),
        shape=r.items(ds, "shape", "dataset", "int"),
        sources={
            str(k): str(v)
            for k, v in (r.get(ds, "sources", "dataset", "dict?", default={}) or {}).items()
        },
    )
    class_names = r.items(d, "class_names", "", "str")
    rows = [
        _parse_row(r, row, f"rows[{i}]", len(class_names))
        for i, row in enumerate(r.get(d, "rows", "", "list"))
    ]
    known = set(RunResults.__dataclass_fields__) - {"extra"}
    wall = r.get(d, "wall_time_s", "", "num?", default=None)
    return RunResults(
        recipe=r.get(d, "recipe", "", "str"),
        dataset=dataset,
        rows=rows,
        description=r.get(d, "description", "", "str?", default="") or "",
        quick=r.get(d, "quick", "", "bool", default=False),
        split=r.get(d, "split", "", "str?", default="") or "",
        seeds=r.items(d, "seeds", "", "int"),
        class_names=class_names,
        targets=r.items(d, "targets", "", "str"),
        environment=dict(r.get(d, "environment", "", "dict?", default={}) or {}),
        command=r.get(d, "command", "", "str?", default="") or "",
        started=r.get(d, "started", "", "str?", default="") or "",
        wall_time_s=wall,
        extra={k: v for k, v in d.items() if k not in known},
    )


_ROW_KINDS = {
    "model": "str?", "stage": "str?", "oa": "frac?", "aa": "frac?", "kappa": "frac?",
    "parameters": "int?", "macs": "int?", "size_bytes": "int?", "gzip_bytes": "int?",
    "sparsity": "frac?", "latency_ms": "num?", "latency_threads": "int?", "arena_bytes": "int?",
    "full_int8": "bool?", "tflite": "str?", "map": "str?", "error": "str?",
}  # fmt: skip


def _parse_row(r: _Reader, data: Any, where: str, n_classes: int) -> ResultRow:
    d = r.obj(data, where)
    precision = r.get(d, "precision", where, "str?", default=None)
    values: dict[str, Any] = {
        "seed": r.get(d, "seed", where, "int"),
        "variant": r.get(d, "variant", where, "str"),
        "format": current_format(r.get(d, "format", where, "str"), precision),
        "precision": precision,
    }
    for key, kind in _ROW_KINDS.items():
        values[key] = r.get(d, key, where, kind, default=None)
    values["model"] = values["model"] or ""
    values["stage"] = values["stage"] or ""
    per_class = r.get(d, "per_class_accuracy", where, "list?", default=None) or []
    values["per_class_accuracy"] = [
        r.value(v, f"{where}.per_class_accuracy[{i}]", "frac?") for i, v in enumerate(per_class)
    ]
    if per_class and n_classes and len(per_class) != n_classes:
        raise r.fail(
            f"{where}.per_class_accuracy",
            f"a list of {n_classes} entries (one per class name)",
            per_class,
        )
    values["confusion"] = _parse_confusion(r, d.get("confusion"), f"{where}.confusion")
    targets = r.get(d, "targets", where, "dict?", default=None) or {}
    values["targets"] = {
        str(name): _parse_fit(r, fit, f"{where}.targets.{name}") for name, fit in targets.items()
    }
    values["notes"] = r.items(d, "notes", where, "str")
    values["extra"] = {k: v for k, v in d.items() if k not in ResultRow.__dataclass_fields__}
    return ResultRow(**values)


def _parse_confusion(r: _Reader, value: Any, where: str) -> list[list[int]] | None:
    if value is None or value == []:
        return None
    rows = r.value(value, where, "list")
    out = [
        [
            r.value(v, f"{where}[{i}][{j}]", "int")
            for j, v in enumerate(r.value(row, f"{where}[{i}]", "list"))
        ]
        for i, row in enumerate(rows)
    ]
    if any(len(row) != len(out) for row in out):
        raise r.fail(where, f"a square matrix ({len(out)} rows of {len(out)} counts)", value)
    return out


def _parse_fit(r: _Reader, value: Any, where: str) -> TargetFit:
    d = r.obj(value, where)
    return TargetFit(
        fits=r.get(d, "fits", where, "bool?", default=None),
        reasons=r.items(d, "reasons", where, "str"),
        estimated_latency_ms=r.get(d, "estimated_latency_ms", where, "num?", default=None),
    )
