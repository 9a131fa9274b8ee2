"""Quantization-aware training (QAT) for every zoo model, the 3-D ones included.

The rhythm, as for the other compression methods: :func:`prepare_qat` → train (with
:func:`qat_callbacks`, none are needed) → :func:`finalize_qat` → convert. The QAT model
itself is what the TFLite converter takes (``Optimize.DEFAULT``, int8 input/output, no
representative dataset: the ranges come from the fake-quant nodes learned in training).

How layers are quantised:
    * Everything TF-MOT's default 8-bit registry supports (Conv2D, DepthwiseConv2D,
      Dense, ReLU, pooling 2-D, Flatten, Reshape, Dropout ...) gets exactly what
      ``tfmot.quantization.keras.quantize_model`` gives it, including the Conv2D/Dense
      + BatchNormalization (+ ReLU) transforms.
    * Conv3D, which ``quantize_model`` rejects, gets :class:`Conv3DQuantizeConfig`: the
      kernel per output channel, 8-bit symmetric narrow-range (as Conv2D's), and the
      output 8-bit after the layer's activation. TF-MOT's per-channel quantizer only
      handles 2-D/4-D tensors, so :class:`PerChannelKernelQuantizer` flattens the 5-D
      kernel while training and fake-quantises it unflattened for conversion.
    * Conv3D + BatchNormalization (+ ReLU): TF-MOT's BN folding patterns match only
      Conv2D/DepthwiseConv2D/Dense, and it never folds BN into the kernel while training
      anyway (it only removes the quantisation points between the layers). We do the
      same for Conv3D: no quantisation point after the Conv3D or the BN when a BN / ReLU
      follows; the BN output is quantised when no ReLU follows; the ReLU output always.
      A BN that follows neither a Conv2D/Dense nor a Conv3D is quantised at its output;
      the converter keeps it as a float MUL + ADD between DEQUANTIZE and QUANTIZE.
    * MaxPooling3D and ZeroPadding3D pass values through (no quantisation point);
      AveragePooling3D is quantised at its output. QAT trains with them, but MaxPool3D
      and AvgPool3D are not TFLite builtins: converting needs Select TF ops or lowering.
    * Anything else (Lambda, RNNs, nested models, Conv3DTranspose, activations TF-MOT
      cannot model such as ELU) raises :class:`~tfhsi.errors.UnsupportedError` naming the
      layers; the ways out are replacing the layer, a ``configs={name: QuantizeConfig}``
      entry (not for Lambda layers, which TF-MOT cannot clone), or post-training int8
      quantisation (PTQ), which needs no layer support.

What TFLite makes of it (measured with TF 2.21 / LiteRT 2.3, see
tests/compress/test_quantize.py): 2-D models convert to full int8 (every CONV_2D,
DEPTHWISE_CONV_2D and FULLY_CONNECTED has int8 inputs, weights and outputs). **TFLite
has no int8 CONV_3D kernel**, so the converter keeps every CONV_3D in float32 - float
input, float32 weights (holding the fake-quantised values, so no size saving), float
bias ADD and BatchNormalization MUL + ADD - with a DEQUANTIZE before and a QUANTIZE
after it (the ReLU disappears into the QUANTIZE's range). Only the layers between and
after the Conv3D layers (Reshape, Conv2D, Dense) run in int8, and every CONV_3D pays
a dequantise / quantise round trip. QAT still helps accuracy: the int8 boundaries between
the Conv3D layers and the int8 tail are what it trained for. To get an int8 model without
CONV_3D, lower the Conv3D layers to Conv2D first (``tfhsi.compress.lower``, the path to
microcontrollers) and quantise the lowered model. Post-training int8 quantisation of a
Conv3D model gives the same float-CONV_3D structure.

Activation ranges: TF-MOT starts them at [-6, 6] and moves them 0.1 % per step towards the
data (moving average, decay 0.999), so a short fine-tuning converts with ranges far from
the data. Pass ``calibration=`` (e.g. the representative dataset PTQ would use) to
:func:`prepare_qat` to start from measured ranges (:func:`calibrate_qat`); QAT is then a
fine-tuning of a trained float model (a few epochs, lower learning rate) that starts
where PTQ ends. Weight ranges are the kernels' last-step absolute maxima, per channel.

Save and load QAT models only with :func:`save_qat` / :func:`load_qat` (they register
the custom classes); the file is an HDF5 ``.h5`` Keras model without optimizer (tf_keras
cannot reload TF-MOT's quantize layers from ``.keras`` files).
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tfhsi._keras import keras, tfmot
from tfhsi.atomic import atomic_path
from tfhsi.compress._qat3d import (
    CUSTOM_OBJECTS,
    Conv3DQuantizeConfig,
    OutputQuantizeConfig,
    PerChannelKernelQuantizer,
    plan,
    unsupported_reason,
)
from tfhsi.errors import ConfigError, ModelFileNotFoundError, SetupError, UnsupportedError
from tfhsi.keras_checks import require_functional, require_rebuildable

__all__ = [
    "Conv3DQuantizeConfig",
    "OutputQuantizeConfig",
    "PerChannelKernelQuantizer",
    "calibrate_qat",
    "finalize_qat",
    "is_qat_model",
    "load_qat",
    "prepare_qat",
    "qat_callbacks",
    "qat_unsupported_layers",
    "save_qat",
]

_q = tfmot.quantization.keras
#: HDF5 only: tf_keras 2.21 cannot reload TF-MOT's QuantizeLayer from a ``.keras`` file
#: ("expected 5 variables, but received 3").
_SAVE_SUFFIX = ".h5"
_CALIBRATION_BATCH = 64

#: Calibration data: batches (arrays, or ``(x, y)`` / ``[x]`` items, e.g. a tf.data
#: dataset) or a TFLite representative-dataset function yielding ``[x]``.
Calibration = Iterable[Any] | Callable[[], Iterable[Any]]


def qat_unsupported_layers(
    model: keras.Model, *, configs: Mapping[str, Any] | None = None
) -> list[str]:
    """Layers neither TF-MOT's default registry nor tfhsi's configs can quantise.

    Args:
        model: A functional or Sequential ``tf_keras`` model.
        configs: Per-layer ``QuantizeConfig`` overrides (layer name -> config); these
            layers count as supported.

    Returns:
        ``"name (Class: reason)"`` for each unsupported layer, in model order; empty
        when :func:`prepare_qat` will accept the model.
    """
    configs = dict(configs or {})
    registry = _q.default_8bit.Default8BitQuantizeRegistry()
    chosen = plan(model, configs)
    found = []
    for layer in model.layers:
        if layer.name not in chosen or layer.name in configs:  # input layers, overrides
            continue
        reason = unsupported_reason(layer, chosen[layer.name], registry)
        if reason:
            found.append(f"{layer.name} ({type(layer).__name__}: {reason})")
    return found


def is_qat_model(model: keras.Model) -> bool:
    """True when ``model`` holds TF-MOT quantisation wrappers (e.g. from :func:`prepare_qat`)."""
    return any(
        isinstance(layer, (_q.QuantizeWrapper, _q.QuantizeWrapperV2))
        for layer in getattr(model, "layers", ())
    )


def _scope(extra: Mapping[str, Any] | None = None) -> Any:
    return _q.quantize_scope({**CUSTOM_OBJECTS, **dict(extra or {})})


def prepare_qat(
    model: keras.Model,
    *,
    calibration: Calibration | None = None,
    configs: Mapping[str, Any] | None = None,
) -> keras.Model:
    """A quantization-aware copy of ``model`` (its weights copied; the original is untouched).

    Args:
        model: A built functional or Sequential ``tf_keras`` model, ideally trained.
        calibration: Training inputs to start the activation ranges from (see
            :func:`calibrate_qat`); recommended, e.g. the representative dataset the
            PTQ export would use. ``None`` keeps TF-MOT's [-6, 6] start.
        configs: Optional ``{layer name: tfmot.quantization.keras.QuantizeConfig}`` to
            override how named layers are quantised (or to quantise layers tfhsi does not
            support). Their classes must be importable when loading (pass them to
            :func:`load_qat`).

    Returns:
        An uncompiled QAT model with the same inputs and outputs: compile and fine-tune
        it (a few epochs, lower learning rate), then :func:`finalize_qat` and convert.

    Raises:
        UnsupportedError: if layers cannot be quantised (the message lists them), or the
            model is subclassed.
        ConfigError: if ``model`` is already a QAT model or ``configs`` names no layer.
    """
    configs = dict(configs or {})
    require_functional(model, what="quantization-aware training")
    if is_qat_model(model):
        raise ConfigError(
            f"model {model.name!r} is already quantization-aware; train it, or start again "
            "from the float model"
        )
    require_rebuildable(model, what="quantization-aware training")
    unknown = sorted(set(configs) - {layer.name for layer in model.layers})
    if unknown:
        raise ConfigError(
            f"configs name layers that are not in model {model.name!r}: {', '.join(unknown)}"
        )
    unsupported = qat_unsupported_layers(model, configs=configs)
    if unsupported:
        raise UnsupportedError(_unsupported_message(model, unsupported))
    chosen = plan(model, configs)

    def annotate(layer: Any) -> Any:
        return _q.quantize_annotate_layer(layer, quantize_config=chosen.get(layer.name))

    extra = {type(c).__name__: type(c) for c in configs.values()}
    # The model's own custom layer classes, so TF-MOT's clone inside quantize_apply finds them.
    extra.update(
        {
            type(layer).__name__: type(layer)
            for layer in model.layers
            if not type(layer).__module__.startswith("tf_keras.")
        }
    )
    try:
        with _scope(extra):
            annotated = keras.models.clone_model(model, clone_function=annotate)
            qat = _q.quantize_apply(annotated)
    except (ValueError, RuntimeError) as exc:
        raise UnsupportedError(
            f"TF-MOT could not make model {model.name!r} quantization-aware: {exc}. "
            "Check the layers against qat_unsupported_layers(), or use post-training int8 "
            "quantisation instead"
        ) from exc
    if calibration is not None:
        calibrate_qat(qat, calibration)
    return qat


def _unsupported_message(model: keras.Model, unsupported: list[str]) -> str:
    """One line: the layers, how to annotate each one, and the way around QAT."""
    names = [entry.split(" (", 1)[0] for entry in unsupported]
    lambdas = [name for name in names if isinstance(model.get_layer(name), keras.layers.Lambda)]
    others = [name for name in names if name not in lambdas]
    fixes = []
    if others:
        example = ", ".join(f"{name!r}: OutputQuantizeConfig()" for name in others)
        fixes.append(
            f"annotate them with prepare_qat(..., configs={{{example}}}) "
            "(OutputQuantizeConfig from tfhsi.compress.quantize keeps the layer in float and "
            "quantises its output; a tfmot.quantization.keras.QuantizeConfig subclass of yours "
            "quantises it your way), or replace them with supported layers (Conv2D/3D, "
            "DepthwiseConv2D, Dense, BatchNormalization, ReLU, pooling, Reshape/Flatten, Dropout)"
        )
    if lambdas:
        fixes.append(
            f"Lambda layers ({', '.join(repr(n) for n in lambdas)}) cannot be annotated (TF-MOT "
            "cannot clone them): rewrite each as a keras.layers.Layer subclass with get_config(), "
            "then annotate it"
        )
    return (
        f"quantization-aware training cannot quantise {len(unsupported)} layer(s) of model "
        f"{model.name!r}: {'; '.join(unsupported)}. Fix: {'; '.join(fixes)}; or skip QAT and "
        "quantise the float model after training (post-training int8 with a representative "
        "dataset), which needs no layer support."
    )


def _ema_decay() -> float:
    """The decay TF-MOT's MovingAverageQuantizer uses (``MovingAvgQuantize``'s default)."""
    quant_ops: Any = sys.modules.get(
        "tensorflow_model_optimization.python.core.quantization.keras.quant_ops"
    )
    try:
        decay = inspect.signature(quant_ops.MovingAvgQuantize).parameters["ema_decay"].default
        return float(decay)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise SetupError(
            "cannot find TF-MOT's moving-average decay (quant_ops.MovingAvgQuantize); "
            "QAT calibration needs tensorflow-model-optimization 0.8.*, or prepare_qat "
            "without calibration"
        ) from exc


def _moving_average_ranges(model: keras.Model) -> list[tuple[Any, Any]]:
    """``(min_var, max_var)`` of every MovingAverageQuantizer in a QAT model (TF-MOT 0.8 layout)."""
    found = []
    for layer in model.layers:
        if not isinstance(layer, _q.QuantizeWrapper):
            continue
        for activation in getattr(layer, "_quantize_activations", ()):
            if isinstance(activation.quantizer, _q.quantizers.MovingAverageQuantizer):
                for attr in ("_pre_activation_vars", "_post_activation_vars"):
                    if hasattr(activation, attr):
                        found.append(getattr(activation, attr))
        output_quantizers = getattr(layer, "_output_quantizers", ())
        if output_quantizers and isinstance(
            output_quantizers[0], _q.quantizers.MovingAverageQuantizer
        ):
            found.append(layer._output_quantizer_vars)
    return [(v["min_var"], v["max_var"]) for v in found]


def _batches(calibration: Calibration) -> list[np.ndarray]:
    """Calibration items as float32 batches of at least 64 samples (small items grouped)."""
    items = calibration() if callable(calibration) else calibration
    batches: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    for item in items:
        x = item[0] if isinstance(item, (tuple, list)) else item
        pending.append(np.asarray(x, dtype=np.float32))
        if sum(len(p) for p in pending) >= _CALIBRATION_BATCH:
            batches.append(np.concatenate(pending))
            pending = []
    if pending:
        batches.append(np.concatenate(pending))
    if not batches:
        raise ConfigError("the QAT calibration data is empty; pass some training inputs")
    return batches


def calibrate_qat(model: keras.Model, calibration: Calibration, *, rounds: int = 2) -> int:
    """Sets the moving-average activation ranges of a QAT model from real inputs.

    TF-MOT starts every activation range at [-6, 6] and moves it by 0.1 % per training
    step, so a short fine-tuning converts with ranges far from the data (wasted int8
    levels, clipped logits). Calibration measures each range on ``calibration`` - the
    minimum and maximum over the batches, as post-training quantisation does - with
    training-mode forward passes: each pass moves a range by a known fraction towards
    the batch range, from which the batch range is solved exactly. BatchNormalization
    and Dropout behave as at inference meanwhile (BN statistics are not updated) and no
    trainable weight changes; the weight ranges are set from the kernels.
    ``rounds`` repeats the measurement so each layer sees the ranges of the one before.

    Args:
        model: A QAT model from :func:`prepare_qat`.
        calibration: Inputs from the training set: batches, ``(x, y)`` items or a
            representative-dataset function yielding ``[x]``; small items are grouped
            into batches of 64.
        rounds: Measurement rounds (>= 1).

    Returns:
        How many ranges were set.
    """
    finalize_qat(model)
    if rounds < 1:
        raise ConfigError(f"rounds must be >= 1, got {rounds}")
    ranges = _moving_average_ranges(model)
    if not ranges:
        return 0
    decay = _ema_decay()
    batches = _batches(calibration)
    # Inference behaviour inside training-mode passes: a non-trainable tf_keras BN uses
    # its moving statistics (and updates none); a Dropout of rate 0 is the identity.
    frozen = [
        layer
        for layer in model.submodules
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]
    dropouts = {
        layer: layer.rate for layer in model.submodules if isinstance(layer, keras.layers.Dropout)
    }
    for layer in frozen:
        layer.trainable = False
    for layer in dropouts:
        layer.rate = 0.0
    try:
        for _ in range(rounds):
            low = [np.inf] * len(ranges)
            high = [-np.inf] * len(ranges)
            for x in batches:
                before = [(lo.numpy(), hi.numpy()) for lo, hi in ranges]
                model(x, training=True)
                for i, ((lo, hi), (lo0, hi0)) in enumerate(zip(ranges, before, strict=True)):
                    low[i] = min(low[i], float((lo.numpy() - decay * lo0) / (1.0 - decay)))
                    high[i] = max(high[i], float((hi.numpy() - decay * hi0) / (1.0 - decay)))
            for (lo, hi), a, b in zip(ranges, low, high, strict=True):
                lo.assign(min(a, 0.0))  # TFLite needs 0 inside every range
                hi.assign(max(b, 0.0))
    finally:
        for layer in frozen:
            layer.trainable = True
        for layer, rate in dropouts.items():
            layer.rate = rate
    return len(ranges)


def qat_callbacks() -> list[keras.callbacks.Callback]:
    """Callbacks QAT training needs: none (TF-MOT updates ranges inside the forward pass).

    Kept so that every compression method has the same prepare → train → finalize shape.
    """
    return []


def finalize_qat(model: keras.Model) -> keras.Model:
    """The model to convert after QAT training: the QAT model itself, checked.

    The TFLite converter reads the learned ranges from the fake-quant nodes, so nothing
    is stripped (stripping would lose them). Convert a batch-1 concrete function with
    ``Optimize.DEFAULT`` and ``inference_input_type = inference_output_type = tf.int8``;
    no representative dataset is needed.

    Raises:
        ConfigError: if ``model`` is not quantization-aware (prepare it with
            :func:`prepare_qat` and train it first).
    """
    if not is_qat_model(model):
        raise ConfigError(
            f"model {getattr(model, 'name', model)!r} is not quantization-aware: prepare it "
            "with prepare_qat() and train it, or quantise the float model after training "
            "(post-training int8 with a representative dataset)"
        )
    return model


def _check_suffix(path: Path) -> None:
    if path.suffix != _SAVE_SUFFIX:
        raise ConfigError(
            f"QAT model path {path} must end in {_SAVE_SUFFIX}: QAT models are saved as HDF5 "
            "(tf_keras cannot reload TF-MOT's quantize layers from the .keras format)"
        )


def save_qat(model: keras.Model, path: str | os.PathLike[str]) -> Path:
    """Saves a QAT model atomically as HDF5 (``.h5``), without optimizer.

    Returns:
        ``path``.

    Raises:
        ConfigError: for another suffix, or a model that is not quantization-aware.
    """
    path = Path(path)
    _check_suffix(path)
    finalize_qat(model)  # refuses float models
    with atomic_path(path) as tmp, _scope(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy")
        model.save(str(tmp), include_optimizer=False)
    return path


def load_qat(
    path: str | os.PathLike[str], *, custom_objects: Mapping[str, Any] | None = None
) -> keras.Model:
    """Loads a model written by :func:`save_qat` (uncompiled).

    Args:
        path: The ``.h5`` file.
        custom_objects: Classes of any ``configs`` passed to :func:`prepare_qat`.

    Raises:
        ModelFileNotFoundError: if ``path`` does not exist.
        ConfigError: for another suffix.
    """
    path = Path(path)
    _check_suffix(path)
    if not path.is_file():
        raise ModelFileNotFoundError(
            f"QAT model {path} does not exist; save one with save_qat(model, path)"
        )
    with _scope(custom_objects):
        return keras.models.load_model(str(path), compile=False)
