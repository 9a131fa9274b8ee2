"""The recipe schema: strict (unknown keys rejected), typed, with registry-checked names.

A recipe names a scene and split, a teacher, and variants: each variant starts from the
teacher (or a fresh student) and applies compression steps in order, then exports presets.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from tfhsi.data.datasets import check_dataset_ref
from tfhsi.export.presets import PRESETS
from tfhsi.methods import METHODS, StepOptions
from tfhsi.models import check_model_ref

if TYPE_CHECKING:
    from tfhsi.train.config import TrainConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainSection(_Strict):
    """How a model is (re)trained."""

    epochs: int = Field(100, ge=1)
    lr: float = Field(1e-3, gt=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    patience: int | None = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    augment: bool = False
    class_weights: bool = False

    def config(self, *, seed: int, jit_compile: bool = False) -> TrainConfig:
        """The training configuration this section asks for (the one conversion);
        ``jit_compile`` comes from the model (:func:`tfhsi.models.trains_with_xla`)."""
        from tfhsi.train.config import TrainConfig

        return TrainConfig(
            epochs=self.epochs,
            learning_rate=self.lr,
            schedule=self.schedule,
            patience=self.patience,
            seed=seed,
            jit_compile=jit_compile,
        )


def base_dir(info: ValidationInfo) -> str | None:
    """The folder relative paths in a recipe are read from (the recipe file's), if known."""
    context = info.context or {}
    return context.get("base_dir")


class ModelSection(_Strict):
    """A model (zoo name, ``file.py:function``, ``package.module:function`` or a saved
    ``.keras``/``.h5``), its input size and its training."""

    model: str
    patch: int | None = Field(None, ge=1)
    pca: int | None = Field(None, ge=1)
    width: float = Field(1.0, gt=0)
    train: TrainSection = TrainSection()
    pretrained: bool = Field(
        False,
        description="a saved model used as given: not trained (still evaluated, exported and "
        "profiled on this recipe's split)",
    )
    unsafe: bool = Field(
        False,
        description="let a saved model run the code stored in it (Lambda layers); only for "
        "files you trust",
    )

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str, info: ValidationInfo) -> str:
        return check_model_ref(value, base_dir=base_dir(info))

    @model_validator(mode="after")
    def _pretrained_is_saved(self) -> ModelSection:
        if self.pretrained and not self.model.endswith((".keras", ".h5")):
            raise ValueError(
                f"pretrained: true needs a saved model (.keras or .h5), not {self.model!r}; "
                "drop `pretrained` to train it."
            )
        return self


def _steps(value: Any) -> list[StepOptions]:
    """Each step validated by the options class its ``method`` registered (see
    :mod:`tfhsi.methods`), with pydantic's error locations and union-tag error types."""
    if not isinstance(value, list):
        raise ValueError(f"steps must be a list of steps, got {type(value).__name__}")
    steps: list[StepOptions] = []
    errors: list[InitErrorDetails] = []
    for i, item in enumerate(value):
        if isinstance(item, StepOptions):
            steps.append(item)
            continue
        name = item.get("method") if isinstance(item, dict) else None
        if not isinstance(name, str) or name not in METHODS:
            tag_ctx = {"discriminator": "'method'", "tag": str(name)}
            tag_ctx["expected_tags"] = ", ".join(repr(m) for m in METHODS.registered())
            errors.append(
                InitErrorDetails(
                    type="union_tag_invalid" if name is not None else "union_tag_not_found",
                    loc=(i,),
                    input=item,
                    ctx=tag_ctx if name is not None else {"discriminator": "'method'"},
                )
            )
            continue
        try:
            steps.append(METHODS.get(name).options.model_validate(item))
        except ValidationError as exc:
            errors.extend(
                InitErrorDetails(
                    type=e["type"],
                    loc=(i, name, *e["loc"]),  # the method tag, as a discriminated union has it
                    input=e["input"],
                    ctx=e.get("ctx", {}),
                )
                for e in exc.errors()
            )
    if errors:
        raise ValidationError.from_exception_data("steps", errors)
    return steps


class Variant(_Strict):
    """One compressed model: a start (teacher or fresh student) and steps applied in order."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    student: ModelSection | None = None
    steps: list[SerializeAsAny[StepOptions]] = []
    export: list[str] = ["fp32", "int8"]
    lower: Literal["auto", "never"] = "auto"
    keep_int8: list[str] = []
    """Layer names or regexes (``re.fullmatch``) the ai-edge-quantizer presets (w4a8,
    auto-mixed) keep at int8 weights."""

    @field_validator("export")
    @classmethod
    def _known_presets(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in PRESETS:
                raise ValueError(PRESETS.unknown_message(name))
        return value

    @field_validator("keep_int8")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        import re

        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"{pattern!r} is not a regular expression ({exc}); give a layer name or a "
                    "pattern such as 'conv.*'"
                ) from None
        return value

    @field_validator("steps", mode="wrap")
    @classmethod
    def _registered_steps(cls, value: Any, handler: Any) -> list[StepOptions]:
        return handler(_steps(value))

    @model_validator(mode="after")
    def _step_order(self) -> Variant:
        for index, step in enumerate(self.steps):
            method = METHODS.get(step.method)
            if method.needs_student and self.student is None:
                raise ValueError(
                    f"variant {self.name!r}: a {step.method} step needs a 'student' model to train"
                )
            if method.first_only and index != 0:
                raise ValueError(f"variant {self.name!r}: {step.method} must be the first step")
        return self


class ProfileSection(_Strict):
    latency_runs: int = Field(50, ge=1)
    threads: list[int] = [1]
    tflm: bool = True


class QuickSection(_Strict):
    """What ``--quick`` changes: training stages capped to a few epochs, fewer seeds and timings."""

    epochs: int = Field(1, ge=1)
    seeds: int = Field(1, ge=1, description="how many of the recipe's seeds a quick run uses")
    latency_runs: int = Field(5, ge=1)
    test_pixels: int = Field(
        1000, ge=1, description="test pixels a quick run scores (a seeded, per-class subset)"
    )
    unlabelled: float = Field(
        1.0, ge=0, description="cap on a distillation step's transfer set (per training pixel)"
    )


class SearchSection(_Strict):
    """A search for the most accurate model that fits a target (``tfhsi search``; see
    :mod:`tfhsi.search`): the recipe's scene, split, first seed and teacher; the trials' space."""

    target: str
    max_arena: ByteSize | None = Field(None, description="e.g. 32KiB")
    max_flash: ByteSize | None = Field(None, description="the .tflite's bytes, e.g. 256KiB")
    max_latency: float | None = Field(None, gt=0, description="ms, the target's estimate")
    objective: Literal["oa", "aa"] = "oa"
    cost: Literal["arena", "latency", "flash"] = "arena"
    trials: int = Field(40, ge=1)
    timeout: float | None = Field(
        None, gt=0, description="minutes after which no trial is proposed (the batch finishes)"
    )
    space: str | dict[str, Any] | None = Field(
        None, description="a space YAML (relative to the recipe) or its dimensions inline"
    )

    @field_validator("target")
    @classmethod
    def _known_target(cls, value: str) -> str:
        from tfhsi.profile.targets import load_targets

        known = set(load_targets())
        if value not in known:
            raise ValueError(f"unknown target {value!r}; valid targets: {', '.join(sorted(known))}")
        return value

    @field_validator("space")
    @classmethod
    def _space_path(cls, value: Any, info: ValidationInfo) -> Any:
        folder = base_dir(info)
        if isinstance(value, str) and folder and not os.path.isabs(value):
            return os.path.join(folder, value)
        return value


class Recipe(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    dataset: str
    split: str = "random:0.1"
    seeds: list[int] = Field([0], min_length=1)
    val_fraction: float = Field(0.05, ge=0, lt=1)
    test_pixels: int | None = Field(
        None,
        ge=1,
        description="score this many test pixels (a seeded, per-class subset); all by default",
    )
    teacher: ModelSection
    variants: list[Variant] = []
    targets: list[str] = []
    profile: ProfileSection = ProfileSection()
    maps: bool = True
    map_pixels: Literal["auto", "scene", "labelled", "scored"] = Field(
        "auto",
        description="what a map predicts: every pixel (scene), labelled ones, the split's "
        "train/val/test pixels (scored; quick runs), or auto (scene up to 50,000 pixels, else labelled)",
    )
    quick: QuickSection = QuickSection()
    search: SearchSection | None = None

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str, info: ValidationInfo) -> str:
        """A registered scene, ``synthetic[:HxWxB[xC]]``, or a scene YAML (relative to the
        recipe's folder, made absolute so every worker opens the same file)."""
        folder = base_dir(info)
        if folder and value.endswith((".yaml", ".yml")) and not os.path.isabs(value):
            value = os.path.join(folder, value)
        return check_dataset_ref(value)

    @field_validator("split")
    @classmethod
    def _valid_split(cls, value: str) -> str:
        from tfhsi.data.splits import parse_split_spec

        parse_split_spec(value)  # raises ConfigError with the grammar
        return value

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value) or min(value) < 0:
            raise ValueError(f"seeds must be distinct integers ≥ 0, got {value}")
        return value

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, value: list[str]) -> list[str]:
        from tfhsi.profile.targets import load_targets

        known = set(load_targets())
        unknown = [t for t in value if t not in known]
        if unknown:
            raise ValueError(
                f"unknown target(s) {unknown}; valid targets: {', '.join(sorted(known))}"
            )
        return value

    @model_validator(mode="after")
    def _search_alone(self) -> Recipe:
        if self.search is not None and self.variants:
            raise ValueError(
                "a recipe with a search: section has no variants (its trials are generated); "
                "drop `variants` or the `search` section"
            )
        return self

    @model_validator(mode="after")
    def _unique_variants(self) -> Recipe:
        names = [v.name for v in self.variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"variant names must be unique; repeated: {duplicates}")
        return self
