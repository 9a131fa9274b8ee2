"""The search space: what a trial may choose, and the one-variant recipe a choice defines.

A space is a mapping of dimensions; each dimension is a fixed value (not searched), a list of
choices, or a range ``{low, high[, log][, step]}``. The default (:data:`DEFAULT_SPACE`) covers
the zoo students, width, patch, PCA, distillation (α, T, transfer-set size), class weights,
pruning, clustering, QAT vs PTQ and the precision; a YAML file overrides any dimension it names::

    model: [student2d, student3d, my_models.py:tiny]   # zoo names or model references
    width: [0.5, 1.0, 1.5]
    distill: {enabled: [true], alpha: {low: 0.1, high: 0.9}}
    prune: [0.0, 0.5]

A trial's choices become a recipe :class:`~tfhsi.recipes.schema.Variant` (a fresh student,
its steps, one int8-style export), so it runs through the recipe machinery: the teacher
cache, stage checkpoints, stage sharing between trials and the one export path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tfhsi.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Strict):
    """A numeric range: floats unless ``low``, ``high`` (and ``step``) are integers."""

    low: int | float
    high: int | float
    log: bool = False
    step: int | float | None = Field(None, gt=0)

    @property
    def integral(self) -> bool:
        return all(isinstance(v, int) for v in (self.low, self.high, self.step or 1))

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("give log or step, not both")
        return self


def _dimension(value: Any) -> Any:
    """A fixed value, a list of choices, or a :class:`Range` (from a mapping)."""
    if isinstance(value, Range):
        return value
    if isinstance(value, dict):
        try:
            return Range.model_validate(value)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                at = ".".join(str(p) for p in err["loc"])
                msg = err["msg"].removeprefix("Value error, ")
                problems.append(f"{at}: {msg}" if at else msg)
            raise ValueError("a range " + ", ".join(problems)) from None
    items = value if isinstance(value, list) else [value]
    for item in items:
        if item is not None and not isinstance(item, bool | int | float | str):
            raise ValueError(f"{item!r} is not a value (number, string, true/false or null)")
    return value


Dimension = Annotated[Any, PlainValidator(_dimension)]


class Suggester(Protocol):
    """What a space needs from an Optuna trial (``optuna.trial.Trial`` is one)."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...
    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = ..., log: bool = ...
    ) -> float: ...
    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = ..., log: bool = ...
    ) -> int: ...


_NUMBERS: dict[str, tuple[Any, str]] = {
    "width": (lambda v: _num(v) and v > 0, "a width is a number > 0"),
    "patch": (lambda v: isinstance(v, int) and v >= 1, "a patch is an integer ≥ 1"),
    "pca": (
        lambda v: v is None or (isinstance(v, int) and v >= 1),
        "PCA components: an integer ≥ 1, or null for the model's default",
    ),
    "prune": (lambda v: _num(v) and 0 <= v < 1, "a sparsity in [0, 1); 0 = no pruning"),
    "cluster": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and (v == 0 or 2 <= v <= 256),
        "centroids per layer: 0 (no clustering) or 2..256",
    ),
}


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _extremes(dim: Any) -> list[Any]:
    if isinstance(dim, Range):
        return [dim.low, dim.high]
    return list(dim) if isinstance(dim, list) else [dim]


def _check_choices(value: Any, allowed: tuple[Any, ...] | None = None) -> Any:
    choices = value if isinstance(value, list) else [value] if not isinstance(value, Range) else []
    if isinstance(value, list) and not value:
        raise ValueError("an empty list of choices; give at least one value")
    if allowed is not None:
        bad = [c for c in choices if c not in allowed]
        if bad:
            raise ValueError(f"{bad} not allowed; choose from {list(allowed)}")
    return value


class DistillSpace(_Strict):
    """Distillation from the teacher: on/off, hard-label weight α, temperature T, and the
    transfer set (unlabelled pixels per training pixel)."""

    enabled: Dimension = [True, False]
    alpha: Dimension = Range(low=0.1, high=0.9)
    temperature: Dimension = [1.0, 2.0, 4.0, 8.0]
    unlabelled: Dimension = [0.0, 2.0, 4.0]
    augment: Dimension = True


class EpochsSpace(_Strict):
    """Training lengths (fixed, not searched): ``--quick`` caps them."""

    train: int = Field(100, ge=1)
    prune: int = Field(20, ge=1)
    cluster: int = Field(10, ge=1)
    qat: int = Field(10, ge=1)


class SearchSpace(_Strict):
    """Every dimension a trial chooses (see the module docstring for the grammar)."""

    model: Dimension = ["student2d", "student3d"]
    width: Dimension = [0.5, 0.75, 1.0, 1.5, 2.0]
    patch: Dimension = [5, 7, 9, 11]
    pca: Dimension = [None, 15, 30]
    distill: DistillSpace = DistillSpace()
    prune: Dimension = [0.0, 0.5, 0.75]
    cluster: Dimension = [0, 16]
    quantize: Dimension = ["ptq", "qat"]
    precision: Dimension = ["int8"]
    augment: Dimension = True
    class_weights: Dimension = [False, True]
    """Inverse-frequency class weights for a student trained alone (not with distillation):
    rare classes (a few training pixels each) are what AA is made of."""
    epochs: EpochsSpace = EpochsSpace()

    @field_validator("model")
    @classmethod
    def _models(cls, value: Any) -> Any:
        from tfhsi.models import check_model_ref

        _check_choices(value)
        for ref in value if isinstance(value, list) else [value]:
            if not isinstance(ref, str):
                raise ValueError(f"a model is a zoo name or a model reference, got {ref!r}")
            check_model_ref(ref)
        return value

    @field_validator("quantize")
    @classmethod
    def _quantize(cls, value: Any) -> Any:
        return _check_choices(value, ("ptq", "qat"))

    @field_validator("precision")
    @classmethod
    def _precision(cls, value: Any) -> Any:
        return _check_choices(value, ("int8", "int16x8"))

    @field_validator("augment", "class_weights")
    @classmethod
    def _switches(cls, value: Any) -> Any:
        return _check_choices(value, (True, False))

    @field_validator("width", "patch", "pca", "prune", "cluster")
    @classmethod
    def _numbers(cls, value: Any, info: ValidationInfo) -> Any:
        _check_choices(value)
        ok, what = _NUMBERS[info.field_name or ""]
        bad = [v for v in _extremes(value) if not ok(v)]
        if bad:
            raise ValueError(f"{bad} out of range: {what}")
        return value

    def capped(self, epochs: int) -> SearchSpace:
        """This space with every training length capped at ``epochs`` (``--quick``)."""
        capped = {k: min(v, epochs) for k, v in self.epochs.model_dump().items()}
        return self.model_copy(update={"epochs": EpochsSpace(**capped)})


DEFAULT_SPACE = SearchSpace()


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(space)"


def space_error(source: str, exc: ValidationError) -> ConfigError:
    """One line: the file, each wrong field and what it accepts."""
    problems: dict[str, str] = {}
    for err in exc.errors():
        where = _where(tuple(err["loc"]))
        if err["type"] == "extra_forbidden":
            parent = where.rsplit(".", 1)[0] if "." in where else None
            fields = (
                SearchSpace.model_fields
                if parent is None
                else type(getattr(DEFAULT_SPACE, parent)).model_fields
            )
            problems.setdefault(where, f"unknown field {where!r} (allowed: {', '.join(fields)})")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            problems.setdefault(where, f"field {where!r}: {msg}")
    return ConfigError(
        f"search space {source}: " + "; ".join(problems.values()) + " — a dimension is a value, "
        "a list of choices or {low, high, log, step}."
    )


def load_space(source: str | Path | dict[str, Any] | None) -> SearchSpace:
    """The default space, with the dimensions a YAML file (or mapping) gives replaced.

    Raises:
        ConfigError: unreadable file, not a mapping, unknown field or bad value (one line,
            naming the file and the field).
    """
    if source is None:
        return DEFAULT_SPACE
    if isinstance(source, dict):
        data, where = source, "(recipe search.space)"
    else:
        where = str(source)
        try:
            data = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read search space {where}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"search space {where} is not valid YAML{at}; fix it") from None
        data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(
            f"search space {where} must be a mapping of dimensions (model, width, …), "
            f"got {type(data).__name__}"
        )
    try:
        return SearchSpace.model_validate(data)
    except ValidationError as exc:
        raise space_error(where, exc) from None


def _suggest(trial: Suggester, name: str, dim: Any) -> Any:
    if isinstance(dim, Range):
        if dim.integral:
            step = int(dim.step or 1)
            return trial.suggest_int(name, int(dim.low), int(dim.high), step=step, log=dim.log)
        return trial.suggest_float(name, dim.low, dim.high, step=dim.step, log=dim.log)
    if isinstance(dim, list):
        return dim[0] if len(dim) == 1 else trial.suggest_categorical(name, dim)
    return dim


def propose(trial: Suggester, space: SearchSpace) -> dict[str, Any]:
    """Asks ``trial`` for every dimension of ``space`` (conditional ones only when they apply)."""
    params: dict[str, Any] = {
        name: _suggest(trial, name, getattr(space, name))
        for name in ("model", "width", "patch", "pca", "augment")
    }
    params["distill"] = bool(_suggest(trial, "distill", space.distill.enabled))
    if params["distill"]:
        for name in ("alpha", "temperature", "unlabelled", "augment"):
            params[f"distill_{name}"] = _suggest(
                trial, f"distill_{name}", getattr(space.distill, name)
            )
    else:  # distillation's loss has no class weights
        params["class_weights"] = bool(_suggest(trial, "class_weights", space.class_weights))
    for name in ("prune", "cluster", "quantize"):
        params[name] = _suggest(trial, name, getattr(space, name))
    # QAT trains for int8 (its only export); the precision is a choice of PTQ.
    qat = params["quantize"] == "qat"
    params["precision"] = "int8" if qat else _suggest(trial, "precision", space.precision)
    return params


def variant_data(name: str, params: dict[str, Any], space: SearchSpace) -> dict[str, Any]:
    """The recipe variant (plain data) a trial's ``params`` define.

    Steps in chain order: distill → prune → cluster (keeping the sparsity) → QAT; the one
    export is ``params["precision"]`` (int8 end to end, checked by the export path).
    """
    epochs = space.epochs
    student: dict[str, Any] = {
        "model": params["model"],
        "patch": params["patch"],
        "pca": params["pca"],
        "width": params["width"],
        "train": {
            "epochs": epochs.train,
            "augment": bool(params.get("augment", False)),
            "class_weights": bool(params.get("class_weights", False)),
        },
    }
    steps: list[dict[str, Any]] = []
    if params.get("distill"):
        steps.append({
            "method": "distill",
            "alpha": params["distill_alpha"],
            "temperature": params["distill_temperature"],
            "unlabelled": params["distill_unlabelled"],
            "augment": bool(params["distill_augment"]),
            "epochs": epochs.train,
        })  # fmt: skip
    sparsity = float(params.get("prune") or 0.0)
    if sparsity > 0:
        steps.append({"method": "prune", "target": sparsity, "epochs": epochs.prune})
    clusters = int(params.get("cluster") or 0)
    if clusters:
        steps.append({
            "method": "cluster",
            "clusters": clusters,
            "preserve_sparsity": sparsity > 0,
            "epochs": epochs.cluster,
        })  # fmt: skip
    if params.get("quantize") == "qat":
        steps.append({"method": "qat", "epochs": epochs.qat})
    return {"name": name, "student": student, "steps": steps, "export": [params["precision"]]}


Objective = Literal["oa", "aa"]
