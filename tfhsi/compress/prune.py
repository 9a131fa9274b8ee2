"""Magnitude pruning with TF-MOT: prepare (wrap) → train with the callbacks → finalize (strip).

The rhythm::

    pruned = prepare_pruning(model, PruningConfig(target_sparsity=0.8),
                             steps_per_epoch=steps, epochs=epochs)
    train_model(pruned, ..., callbacks=pruning_callbacks())
    stripped = finalize_pruning(pruned)
    report = measure_sparsity(stripped, layers=plan_pruning(model, config))

Mask-update frequency: TF-MOT recomputes masks every ``frequency`` *steps* (default 100).
A small HSI training set has a few steps per epoch, so that default prunes nothing at
all. Here the frequency is derived from the epoch length:
``frequency = max(1, steps_per_epoch // frequency_per_epoch)`` (``frequency_steps``
overrides it), i.e. masks are updated ``frequency_per_epoch`` times per epoch.
Pruning runs from step ``begin_epoch · steps_per_epoch`` to the end step
``end_epoch · steps_per_epoch``, rounded down to the last mask update, so the final
update applies exactly the target sparsity; later epochs fine-tune with frozen masks.

Pruned layers: Conv1D, Conv2D, Conv3D and Dense kernels (biases stay dense), and the
weights a custom layer returns from ``get_prunable_weights`` when it implements TF-MOT's
``tfmot.sparsity.keras.PrunableLayer`` (it also needs a ``get_config`` that rebuilds it,
since the model is cloned; other custom layers stay dense). TF-MOT
registers DepthwiseConv2D with no prunable weights (its 9-tap filters are few and
sensitive), so depthwise kernels stay dense. No layer is skipped by default: on the
zoo's 3-D models the logits layer holds up to a third of the weights, and skipping it
caps the size gain; add ``skip=("logits",)`` (or the first conv) when accuracy suffers.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tfhsi import keras_checks
from tfhsi._keras import keras, tfmot
from tfhsi.atomic import atomic_path
from tfhsi.errors import ConfigError, ModelFileNotFoundError, SetupError, UnsupportedError

_sparsity = tfmot.sparsity.keras
# TF-MOT does not export its wrapper class; take it from a throw-away wrapped layer.
PruneWrapper: type = type(_sparsity.prune_low_magnitude(keras.layers.Dense(1)))

#: Layer classes whose kernels are pruned (DepthwiseConv2D is not: see the module doc).
PRUNABLE_LAYERS: tuple[type, ...] = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Dense,
)
_NOT_PRUNED: tuple[type, ...] = (
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
)
_SAVE_SUFFIXES = (".keras", ".h5")


@dataclass(frozen=True)
class PruningConfig:
    """What to prune and how fast.

    Attributes:
        target_sparsity: Fraction of zeros in each pruned kernel at the end, in [0, 1).
        schedule: ``polynomial`` ramps from ``initial_sparsity`` to the target
            (TF-MOT's PolynomialDecay, power 3); ``constant`` prunes to the target at
            every update.
        initial_sparsity: Start of the polynomial ramp.
        begin_epoch: First epoch (0-based) with mask updates.
        end_epoch: Epoch at whose start the target is reached and masks freeze;
            ``None`` = ``ceil(0.7 · epochs)`` (the rest fine-tunes with fixed masks).
        frequency_per_epoch: Mask updates per epoch (see the module doc).
        frequency_steps: Mask-update period in steps; overrides ``frequency_per_epoch``.
        layer_targets: Per-layer target sparsity by layer name or fnmatch pattern
            (exact names win, then the first matching pattern); 0 leaves a layer dense.
        skip: fnmatch patterns of layer names left dense.
        block: ``"2:4"``: exactly 2 zeros in every group of 4 consecutive input
            channels of each kernel (TF-MOT's ``sparsity_m_by_n=(2, 4)``), 50 % sparsity
            fixed at the first training step, so ``target_sparsity``, ``schedule`` and
            the frequency do not apply. Only rank-2/4 kernels (Dense, Conv2D): Conv1D
            and Conv3D layers must be skipped. When the input channels are not a
            multiple of 4, the last partial group keeps up to 2 values.
    """

    target_sparsity: float = 0.8
    schedule: Literal["polynomial", "constant"] = "polynomial"
    initial_sparsity: float = 0.0
    begin_epoch: int = 0
    end_epoch: int | None = None
    frequency_per_epoch: int = 1
    frequency_steps: int | None = None
    layer_targets: Mapping[str, float] = field(default_factory=dict)
    skip: tuple[str, ...] = ()
    block: Literal["2:4"] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "skip", tuple(self.skip))
        object.__setattr__(self, "layer_targets", dict(self.layer_targets))
        _check_fraction("target_sparsity", self.target_sparsity)
        _check_fraction("initial_sparsity", self.initial_sparsity)
        for name, value in self.layer_targets.items():
            _check_fraction(f"layer_targets[{name!r}]", value)
        if self.schedule not in ("polynomial", "constant"):
            raise ConfigError(
                f"pruning schedule must be 'polynomial' or 'constant'; got {self.schedule!r}."
            )
        if self.begin_epoch < 0:
            raise ConfigError(f"begin_epoch must be >= 0; got {self.begin_epoch}.")
        if self.end_epoch is not None and self.end_epoch <= self.begin_epoch:
            raise ConfigError(
                f"end_epoch ({self.end_epoch}) must be after begin_epoch ({self.begin_epoch})."
            )
        if self.frequency_per_epoch < 1:
            raise ConfigError(f"frequency_per_epoch must be >= 1; got {self.frequency_per_epoch}.")
        if self.frequency_steps is not None and self.frequency_steps < 1:
            raise ConfigError(f"frequency_steps must be >= 1; got {self.frequency_steps}.")
        if self.block not in (None, "2:4"):
            raise ConfigError(f"block must be None or '2:4'; got {self.block!r}.")
        if self.block and self.layer_targets:
            raise ConfigError(
                "layer_targets cannot be combined with block='2:4' (2:4 is always 50 %); "
                "use skip to leave layers dense."
            )


@dataclass(frozen=True)
class PruningSteps:
    """The step numbers TF-MOT sees (steps count training batches from 1)."""

    begin: int
    end: int
    frequency: int


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"{name} must be in [0, 1) (a fraction of zeros); got {value}.")


def pruning_steps(config: PruningConfig, *, steps_per_epoch: int, epochs: int) -> PruningSteps:
    """Begin and end step and mask-update frequency for a run (rule in the module doc)."""
    if steps_per_epoch < 1 or epochs < 1:
        raise ConfigError(
            f"steps_per_epoch and epochs must be >= 1; got {steps_per_epoch} and {epochs}."
        )
    end_epoch = config.end_epoch or max(config.begin_epoch + 1, math.ceil(0.7 * epochs))
    if config.begin_epoch >= epochs or end_epoch > epochs:
        raise ConfigError(
            f"pruning epochs [{config.begin_epoch}, {end_epoch}) do not fit into {epochs} "
            "training epochs; lower begin_epoch/end_epoch or train longer."
        )
    frequency = config.frequency_steps or max(1, steps_per_epoch // config.frequency_per_epoch)
    begin = config.begin_epoch * steps_per_epoch
    span = end_epoch * steps_per_epoch - begin
    # End on a mask update so the last update applies exactly the target.
    end = begin + (span // frequency) * frequency if span >= frequency else begin + span
    return PruningSteps(begin=begin, end=end, frequency=frequency)


def require_functional(model: Any, *, method: str) -> None:
    """Raises UnsupportedError unless ``model`` is a flat functional or Sequential tf_keras model.

    The rule lives in :func:`tfhsi.keras_checks.require_functional`; ``method`` names the caller.
    """
    keras_checks.require_functional(model, what=method)


def _is_prunable(layer: Any) -> bool:
    """A standard prunable layer, or a custom one implementing TF-MOT's ``PrunableLayer``."""
    if isinstance(layer, _sparsity.PrunableLayer):
        return bool(layer.get_prunable_weights())
    return isinstance(layer, PRUNABLE_LAYERS) and not isinstance(layer, _NOT_PRUNED)


def _prunable_weights(layer: Any) -> list[Any]:
    if isinstance(layer, _sparsity.PrunableLayer):
        return list(layer.get_prunable_weights())
    return [layer.kernel]


def _matches(name: str, pattern: str) -> bool:
    return name == pattern or fnmatch.fnmatchcase(name, pattern)


def plan_pruning(model: keras.Model, config: PruningConfig) -> dict[str, float]:
    """Layer name → target sparsity of every layer that will be pruned (in model order).

    Raises:
        ConfigError: a skip or layer_targets pattern matches no prunable layer.
        UnsupportedError: ``block="2:4"`` on a layer whose kernel is not rank 2 or 4.
    """
    require_functional(model, method="pruning")
    if pruning_wrappers(model):
        raise UnsupportedError(
            f"{model.name!r} is already wrapped for pruning; call finalize_pruning first."
        )
    prunable: list[Any] = [layer for layer in model.layers if _is_prunable(layer)]
    names = [layer.name for layer in prunable]
    for what, patterns in (("skip", config.skip), ("layer_targets", tuple(config.layer_targets))):
        for pattern in patterns:
            if not any(_matches(name, pattern) for name in names):
                raise ConfigError(
                    f"pruning {what} pattern {pattern!r} matches no prunable layer of "
                    f"{model.name!r}; prunable layers: {', '.join(names) or 'none'}."
                )
    plan: dict[str, float] = {}
    for layer in prunable:
        if any(_matches(layer.name, p) for p in config.skip):
            continue
        target = config.target_sparsity
        if layer.name in config.layer_targets:
            target = config.layer_targets[layer.name]
        else:
            for pattern, value in config.layer_targets.items():
                if fnmatch.fnmatchcase(layer.name, pattern):
                    target = value
                    break
        if config.block == "2:4":
            target = 0.5
        if target > 0:
            plan[layer.name] = float(target)
    if not plan:
        raise ConfigError(
            f"pruning would leave every layer of {model.name!r} dense (prunable layers: "
            f"{', '.join(names) or 'none'}); check target_sparsity, layer_targets and skip."
        )
    if config.block == "2:4":
        bad = [
            f"{layer.name} ({type(layer).__name__})"
            for layer in prunable
            if layer.name in plan
            and any(len(w.shape) not in (2, 4) for w in _prunable_weights(layer))
        ]
        if bad:
            raise UnsupportedError(
                f"2:4 sparsity works on Dense and Conv2D kernels only (TF-MOT groups the "
                f"input channels of rank-2/4 kernels); {', '.join(bad)} cannot be pruned 2:4. "
                f"Leave them dense with skip=({', '.join(repr(b.split()[0]) for b in bad)},) "
                "or use block=None."
            )
    return plan


def _schedule(config: PruningConfig, target: float, steps: PruningSteps) -> Any:
    if config.block == "2:4":
        # TF-MOT sets 2:4 masks at step 1 and ignores the schedule, but a model reloaded
        # without its m-by-n setting (TF-MOT does not serialise it) would fall back to the
        # schedule: one that never fires keeps the saved 2:4 masks frozen.
        return _sparsity.ConstantSparsity(0.5, begin_step=0, end_step=0, frequency=1)
    if config.schedule == "constant":
        return _sparsity.ConstantSparsity(
            target, begin_step=steps.begin, end_step=steps.end, frequency=steps.frequency
        )
    return _sparsity.PolynomialDecay(
        initial_sparsity=min(config.initial_sparsity, target),
        final_sparsity=target,
        begin_step=steps.begin,
        end_step=steps.end,
        frequency=steps.frequency,
    )


def prepare_pruning(
    model: keras.Model, config: PruningConfig, *, steps_per_epoch: int, epochs: int
) -> keras.Model:
    """A copy of ``model`` whose planned layers are wrapped for magnitude pruning.

    ``model`` itself is left untouched (layers are cloned and weights copied). The
    result is uncompiled; train it with :func:`pruning_callbacks` for ``epochs``
    epochs of ``steps_per_epoch`` batches.

    Raises:
        UnsupportedError: a Keras 3, subclassed or nested model, or 2:4 on Conv3D.
        ConfigError: invalid epochs or patterns.
    """
    plan = plan_pruning(model, config)
    keras_checks.require_rebuildable(model, what="pruning")
    steps = pruning_steps(config, steps_per_epoch=steps_per_epoch, epochs=epochs)
    clones: dict[str, keras.layers.Layer] = {}

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        fresh = type(layer).from_config(layer.get_config())
        clones[layer.name] = fresh
        if layer.name not in plan:
            return fresh
        return _sparsity.prune_low_magnitude(
            fresh,
            pruning_schedule=_schedule(config, plan[layer.name], steps),
            sparsity_m_by_n=(2, 4) if config.block == "2:4" else None,
        )

    wrapped = keras.models.clone_model(model, clone_function=clone)
    for name, fresh in clones.items():
        fresh.set_weights(model.get_layer(name).get_weights())
    return wrapped


def pruning_callbacks(*, log_dir: str | os.PathLike[str] | None = None) -> list[Any]:
    """The callbacks a pruning run needs: ``UpdatePruningStep`` (+ summaries if asked).

    Args:
        log_dir: Write TF-MOT's per-layer sparsity summaries there (needs TensorBoard,
            which TensorFlow 2.21 no longer installs).
    """
    callbacks: list[Any] = [_sparsity.UpdatePruningStep()]
    if log_dir is not None:
        if importlib.util.find_spec("tensorboard") is None:
            raise SetupError(
                "pruning summaries were asked for (log_dir), but they need TensorBoard, which "
                "TensorFlow 2.21 no longer installs: `pip install tensorboard`, or drop log_dir."
            )
        callbacks.append(_sparsity.PruningSummaries(log_dir=str(log_dir)))
    return callbacks


def pruning_wrappers(model: keras.Model) -> list[Any]:
    """The TF-MOT pruning wrappers among ``model``'s layers."""
    return [layer for layer in model.layers if isinstance(layer, PruneWrapper)]


def finalize_pruning(model: keras.Model) -> keras.Model:
    """A plain copy of a pruned model: masks applied to the weights, wrappers removed.

    The copy shares nothing with ``model``; its layers have the original names.
    """
    require_functional(model, method="finalize_pruning")
    for wrapper in pruning_wrappers(model):
        for weight, mask, _threshold in wrapper.pruning_vars:
            weight.assign(weight * mask)
    stripped = _sparsity.strip_pruning(model)
    fresh = keras.models.clone_model(stripped)
    fresh.set_weights(stripped.get_weights())
    return fresh


def _check_suffix(path: Path) -> None:
    if path.suffix not in _SAVE_SUFFIXES:
        raise ConfigError(
            f"pruned models are saved as .keras or .h5; got {str(path)!r}. Change the file suffix."
        )


def save_pruned(model: keras.Model, path: str | os.PathLike[str]) -> Path:
    """Saves a (wrapped) pruned model atomically as ``.keras`` or ``.h5``; returns the path.

    The file holds the weights, masks and pruning step, so training can go on after
    :func:`load_pruned`.
    """
    path = Path(path)
    _check_suffix(path)
    with atomic_path(path) as tmp:
        model.save(str(tmp))
    return path


def load_pruned(path: str | os.PathLike[str]) -> keras.Model:
    """Loads a model saved by :func:`save_pruned` inside TF-MOT's ``prune_scope`` (uncompiled)."""
    path = Path(path)
    _check_suffix(path)
    if not path.is_file():
        raise ModelFileNotFoundError(f"pruned model file {str(path)!r} does not exist.")
    with _sparsity.prune_scope():
        return keras.models.load_model(str(path), compile=False)
