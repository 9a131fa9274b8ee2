"""Model specs, the model registry, argument validation and :func:`build_model`.

Nothing here imports TensorFlow: the specs (and so ``tfhsi models list --no-params``)
are available instantly; builders import ``tf_keras`` when they run.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from tfhsi.errors import ConfigError
from tfhsi.registry import Registry

if TYPE_CHECKING:
    from tfhsi._keras import keras

Kind = Literal["1d", "2d", "3d"]
Layout = Literal["1d", "2d", "3d"]
Role = Literal["teacher", "baseline", "student"]

#: The builder contract: keyword-only sizes, returns an uncompiled functional model
#: whose final layer is a Dense named "logits" (no softmax).
Builder = Callable[..., "keras.Model"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model family and what a caller needs to know to feed it.

    Attributes:
        name: Registry name (also the Keras model's name).
        builder: ``builder(*, bands, n_classes, patch_size, width, seed) -> keras.Model``.
        kind: Convolution type that dominates the model ("3d" models contain Conv3D).
        layout: Input layout: "3d" = (k, k, B, 1), "2d" = (k, k, B), "1d" = (B, 1).
        default_patch: Spatial patch size k the paper used (1 for "1d" models).
        default_bands: Spectral bands the paper fed (e.g. 30 PCA components), or
            ``None`` for all the scene's bands.
        paper: Short citation of the architecture followed.
        description: One line on the architecture and any deviation from the paper.
        role: "teacher" (large, accurate), "baseline" or "student" (MCU-sized).
        min_bands: Fewest bands the architecture accepts.
        min_patch: Smallest (odd) patch the architecture accepts.
        jit_compile: Train with XLA-compiled steps (``tools/bench_train.py`` measured them
            faster for this model on CPU; slower for others, e.g. hamida3d).
    """

    name: str
    builder: Builder
    kind: Kind
    layout: Layout
    default_patch: int
    default_bands: int | None
    paper: str
    description: str
    role: Role
    min_bands: int = 1
    min_patch: int = 1
    jit_compile: bool = False

    def input_size(
        self, scene_bands: int, *, patch: int | None = None, pca: int | None = None
    ) -> tuple[int, int | None]:
        """(patch, PCA components or None) this model is fed on a scene with ``scene_bands``.

        The one rule: an unset patch is the paper's; an unset PCA is the paper's band count
        when the scene has more bands; PCA is dropped when it would keep every band; a "1d"
        model sees one pixel.
        """
        if pca is None and self.default_bands is not None and scene_bands > self.default_bands:
            pca = self.default_bands
        if pca is not None and pca >= scene_bands:
            pca = None
        return (1 if self.layout == "1d" else patch or self.default_patch), pca


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(
    name: str,
    *,
    kind: Kind,
    layout: Layout,
    default_patch: int,
    default_bands: int | None,
    paper: str,
    description: str,
    role: Role,
    min_bands: int = 1,
    min_patch: int = 1,
    jit_compile: bool = False,
) -> Callable[[Builder], Builder]:
    """Decorator registering a builder in :data:`MODELS` with its metadata.

    Returns the builder unchanged, so it can still be called directly.
    """
    if layout == "1d" and default_patch != 1:
        raise ValueError(f"model {name!r}: layout '1d' takes one pixel, so default_patch must be 1")
    if layout != "1d" and (default_patch % 2 == 0 or default_patch < min_patch):
        raise ValueError(f"model {name!r}: default_patch must be odd and >= min_patch={min_patch}")

    def decorate(builder: Builder) -> Builder:
        MODELS.add(
            name,
            ModelSpec(
                name=name,
                builder=builder,
                kind=kind,
                layout=layout,
                default_patch=default_patch,
                default_bands=default_bands,
                paper=paper,
                description=description,
                role=role,
                min_bands=min_bands,
                min_patch=min_patch,
                jit_compile=jit_compile,
            ),
        )
        return builder

    return decorate


XLA_MIN_EPOCHS = 10
"""XLA's compilation (about 10 s for student3d on a laptop CPU) pays back only over this many
epochs or more; shorter runs (``--quick``) train with plain steps."""


def trains_with_xla(model: keras.Model, epochs: int | None = None) -> bool:
    """Whether ``model`` trains with XLA-compiled steps (the one rule): when its registry entry
    says so (:attr:`ModelSpec.jit_compile`; a zoo model's Keras name is its registry name), it
    holds no TF-MOT wrapper (pruning, clustering and QAT keep state XLA does not see) and the
    run has at least :data:`XLA_MIN_EPOCHS` ``epochs`` (when given)."""
    if epochs is not None and epochs < XLA_MIN_EPOCHS:
        return False
    spec = MODELS.get(model.name) if model.name in MODELS else None
    wrapped = any(
        type(layer).__module__.startswith("tensorflow_model_optimization")
        for layer in model.submodules
    )
    return spec is not None and spec.jit_compile and not wrapped


def _spec(spec_or_name: ModelSpec | str) -> ModelSpec:
    return spec_or_name if isinstance(spec_or_name, ModelSpec) else MODELS.get(spec_or_name)


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_bands(spec: ModelSpec, bands: object) -> int:
    if not _is_int(bands) or int(bands) < 1:  # type: ignore[call-overload]
        raise ConfigError(f"model {spec.name!r}: bands must be a positive integer; got {bands!r}.")
    if int(bands) < spec.min_bands:  # type: ignore[call-overload]
        hint = (
            f" (the paper used {spec.default_bands}; raise the number of PCA components)"
            if spec.default_bands
            else " (feed more bands, e.g. fewer or no PCA components)"
        )
        raise ConfigError(
            f"model {spec.name!r} needs at least {spec.min_bands} spectral bands for its "
            f"spectral kernels and strides; got bands={bands}{hint}."
        )
    return int(bands)  # type: ignore[call-overload]


def _check_patch(spec: ModelSpec, patch_size: object) -> int:
    if spec.layout == "1d":
        return 1  # a "1d" model sees the centre pixel's spectrum whatever the patch
    if patch_size is None:
        return spec.default_patch
    if not _is_int(patch_size) or int(patch_size) < 1 or int(patch_size) % 2 == 0:  # type: ignore[call-overload]
        raise ConfigError(
            f"model {spec.name!r}: patch_size must be a positive odd integer (the label is the "
            f"centre pixel's); got {patch_size!r}. Try {spec.default_patch} (the default)."
        )
    if int(patch_size) < spec.min_patch:  # type: ignore[call-overload]
        raise ConfigError(
            f"model {spec.name!r} needs a patch of at least {spec.min_patch}x{spec.min_patch} "
            f"(its valid convolutions shrink the patch); got patch_size={patch_size}. "
            f"Use an odd patch >= {spec.min_patch}, e.g. {spec.default_patch} (the default)."
        )
    return int(patch_size)  # type: ignore[call-overload]


def _check_width(spec: ModelSpec, width: object) -> float:
    if (
        isinstance(width, bool)
        or not isinstance(width, numbers.Real)
        or not math.isfinite(float(width))
        or float(width) <= 0
    ):
        raise ConfigError(
            f"model {spec.name!r}: width must be a finite number > 0 (a channel multiplier, "
            f"1.0 = the paper's widths, 0.5 = half the channels); got width={width!r}."
        )
    return float(width)


def input_shape(
    spec_or_name: ModelSpec | str, *, bands: int, patch_size: int | None
) -> tuple[int, ...]:
    """Per-sample input shape (no batch axis) of a model for ``bands`` and ``patch_size``.

    ``patch_size=None`` means the model's default patch; "1d" models ignore it.
    """
    spec = _spec(spec_or_name)
    b = _check_bands(spec, bands)
    k = _check_patch(spec, patch_size)
    if spec.layout == "3d":
        return (k, k, b, 1)
    if spec.layout == "2d":
        return (k, k, b)
    return (b, 1)


def build_model(
    name: str,
    *,
    bands: int,
    n_classes: int,
    patch_size: int | None = None,
    width: float = 1.0,
    seed: int | None = None,
) -> keras.Model:
    """Builds registered model ``name`` as an uncompiled functional ``tf_keras`` model.

    Args:
        name: Registry name, see ``tfhsi models list``.
        bands: Spectral bands of the input (after any PCA).
        n_classes: Number of classes (labels 0..n_classes-1); the output is
            ``(batch, n_classes)`` logits.
        patch_size: Odd spatial patch size; ``None`` = the model's default.
            Ignored by "1d" models, which see the centre pixel only.
        width: Channel multiplier applied to every hidden layer (>= 1 channel each).
        seed: Seeds every initializer and dropout for reproducible weights.

    Raises:
        UnknownNameError: ``name`` is not registered.
        ConfigError: a size the architecture cannot take; the message says the fix.
    """
    spec = MODELS.get(name)
    b = _check_bands(spec, bands)
    k = _check_patch(spec, patch_size)
    w = _check_width(spec, width)
    if not _is_int(n_classes) or int(n_classes) < 2:
        raise ConfigError(f"model {name!r}: n_classes must be an integer >= 2; got {n_classes!r}.")
    if seed is not None and not _is_int(seed):
        raise ConfigError(f"model {name!r}: seed must be an integer or None; got {seed!r}.")
    return spec.builder(
        bands=b,
        n_classes=int(n_classes),
        patch_size=k,
        width=w,
        seed=None if seed is None else int(seed),
    )
