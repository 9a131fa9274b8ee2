"""Keras → ``.tflite`` conversion presets with a static batch of 1.

Every preset converts a concrete function whose input signature is
``TensorSpec([1, *input_shape[1:]])``: all shapes are static, so the graph has no
SHAPE / PACK ops to rebuild a dynamic batch and TFLite Micro can run it.

The presets are the rows of :data:`tfhsi.export.presets.PRESETS`; :func:`convert` sets the
converter from a row. For ``int8`` only ``Optimize.DEFAULT`` is asked for: the integer-only
op set is *not* forced, so a model with an op that has no int8 kernel (e.g. Conv3D) still
converts - with that op left in float32 between DEQUANTIZE and QUANTIZE;
:func:`tfhsi.export.inspect.audit` says so, and nothing here claims "int8" for such a model.
``int16x8`` must place every op in its op set, else :class:`UnsupportedError` names the op.

``Optimize.EXPERIMENTAL_SPARSITY`` is never used: it adds DENSIFY ops that TFLite
Micro and the default XNNPACK delegate cannot run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tfhsi.atomic import write_bytes, write_text
from tfhsi.errors import ConfigError, DataFormatError, TfhsiError, UnsupportedError
from tfhsi.export.presets import PRESETS, Preset

if TYPE_CHECKING:
    from tfhsi._keras import keras
    from tfhsi.export.aeq import Validation

__all__ = ["ConversionError", "Preset", "convert", "labels_path", "write_tflite"]

Representative = Callable[[], Iterator[Sequence[np.ndarray]]]


class ConversionError(TfhsiError):
    """The TFLite converter failed for a reason other than an unsupported op."""


def convert(
    model: keras.Model,
    preset: Preset | str,
    *,
    representative: Representative | None = None,
    keep_int8: Sequence[str] = (),
    validate: Validation | None = None,
) -> bytes:
    """Converts a Keras model to TFLite flatbuffer bytes with batch fixed to 1.

    A row with ``quantizer="ai-edge-quantizer"`` (``w4a8``, ``auto-mixed``) converts the
    model to fp32 and quantises that file with ai-edge-quantizer (:mod:`tfhsi.export.aeq`).

    Args:
        model: A built ``tf_keras`` model with static per-sample input shapes.
        preset: One of :class:`Preset` (or its value, e.g. ``"int8"``).
        representative: Calibration data for ``int8`` / ``int16x8``: a function that
            returns an iterator of input lists (``[x]`` per model input), e.g.
            ``PreparedScene.representative(...)``. Batches larger than 1 are split.
        keep_int8: Layer names or patterns (``re.fullmatch``) kept at int8 weights by the
            ai-edge-quantizer presets (see :func:`tfhsi.export.aeq.select_layers`).
        validate: The validation pixels presets that search (``auto-mixed``) score files on
            (:class:`tfhsi.export.aeq.Validation`; never test pixels).

    Returns:
        The ``.tflite`` bytes. Check what they contain with
        :func:`tfhsi.export.inspect.audit` - the preset is a request, the audit is
        the truth.

    Raises:
        ConfigError: unknown preset, missing representative data for an integer
            preset, representative samples of the wrong shape, or a model input with
            a dynamic non-batch dimension.
        UnsupportedError: ``int16x8`` (or a converter failure) naming an op the
            requested op set cannot express.
        ConversionError: any other converter failure, with the converter's message.
    """
    preset = Preset.parse(preset)
    if preset.needs_representative and representative is None:
        raise ConfigError(
            f"preset {preset.value!r} needs representative data to calibrate activation "
            "ranges; pass representative=prepared.representative(patch_size=..., layout=...) "
            "(a function returning an iterator of [x] lists)."
        )
    if keep_int8 and preset.spec.quantizer != "ai-edge-quantizer":
        aeq_rows = ", ".join(n for n, s in PRESETS.items() if s.quantizer == "ai-edge-quantizer")
        raise ConfigError(
            f"keep_int8 applies to the ai-edge-quantizer presets ({aeq_rows}), not to "
            f"{preset.value!r}; drop keep_int8 or export with one of those."
        )
    if preset.needs_validation:
        from tfhsi.export.aeq import Validation

        if not isinstance(validate, Validation):
            raise ConfigError(
                f"preset {preset.value!r} searches on validation pixels; pass validate= a "
                "tfhsi.export.aeq.Validation(predict=bytes -> class indices, labels=...), not "
                f"{type(validate).__name__}, or use tfhsi.deployment.export_tflite."
            )
    if preset.needs_representative and not callable(representative):
        raise ConfigError(
            "representative must be a function returning an iterator of [x] input lists, got "
            f"{type(representative).__name__}; pass the function itself, not its result."
        )

    if preset.spec.quantizer == "ai-edge-quantizer":
        return _quantize_with_aeq(model, preset, representative, keep_int8, validate)

    from tfhsi._keras import tf
    from tfhsi.native import quiet_native_stderr

    specs = _input_specs(model)
    function = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0], training=False))
    concrete = function.get_concrete_function(*specs)
    # The converter saves what it is given as a SavedModel first; a Keras model would be
    # serialised layer by layer (most of a conversion's time), its variables alone are enough
    # (the same bytes, 3-4x faster).
    holder = tf.Module()
    holder.variables_of_model = list(model.variables)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)

    calibration = None
    if preset.needs_representative and representative is not None:
        calibration = _Calibration(representative, specs)
    spec = preset.spec
    if spec.optimize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if spec.float16:
        converter.target_spec.supported_types = [tf.float16]
    if spec.calibration:
        converter.representative_dataset = calibration
    if spec.ops == "int16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
    if spec.io is not None:
        io_type = {"int8": tf.int8, "int16": tf.int16}[spec.io]
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type

    try:
        with quiet_native_stderr():
            data = converter.convert()
    except Exception as exc:  # the converter raises ConverterError, ValueError, RuntimeError ...
        if calibration is not None and calibration.error is not None:
            raise calibration.error from exc
        raise _conversion_error(exc, preset, model) from None
    if calibration is not None and calibration.error is not None:
        raise calibration.error
    if calibration is not None and calibration.count == 0:
        raise ConfigError(
            "the representative dataset yielded no samples; it must yield at least one [x] "
            "list (100-500 training patches is typical)."
        )
    return bytes(data)


def _quantize_with_aeq(
    model: Any,
    preset: Preset,
    representative: Representative | None,
    keep_int8: Sequence[str],
    validate: Validation | None,
) -> bytes:
    """The float32 file of ``model``, quantised by ai-edge-quantizer with the row's recipe."""
    from tfhsi.export.aeq import AeqQuantizer, auto_mixed, select_layers

    recipe = preset.spec.aeq
    assert recipe is not None and representative is not None
    specs = _input_specs(model)
    float_model = convert(model, "fp32")
    try:
        quantizer = AeqQuantizer(
            float_model,
            _Calibration(representative, specs),
            activation_bits=recipe.activation_bits,
        )
    except TfhsiError:
        raise
    except Exception as exc:  # ai-edge-quantizer raises ValueError / RuntimeError
        raise ConversionError(
            f"{getattr(model, 'name', 'model')}: ai-edge-quantizer could not calibrate the "
            f"{preset.value} file: {type(exc).__name__}: {_first_lines(str(exc))}."
        ) from None
    keep = select_layers(quantizer.layers, list(keep_int8)) if keep_int8 else []
    try:
        if recipe.search == "auto-mixed" and validate is not None:
            return auto_mixed(
                quantizer,
                validate,
                weight_bits=recipe.weight_bits,
                keep_bits=recipe.keep_bits,
                tolerance_pp=recipe.tolerance_pp,
                keep=keep,
            ).data
        return quantizer.quantize(
            weight_bits=recipe.weight_bits, keep=keep, keep_bits=recipe.keep_bits
        )
    except TfhsiError:
        raise
    except Exception as exc:
        raise ConversionError(
            f"{getattr(model, 'name', 'model')}: ai-edge-quantizer could not quantise the "
            f"{preset.value} file: {type(exc).__name__}: {_first_lines(str(exc))}."
        ) from None


def _input_specs(model: Any) -> list[Any]:
    from tfhsi._keras import tf

    inputs = list(getattr(model, "inputs", None) or [])
    if not inputs:
        raise ConfigError(
            f"model {getattr(model, 'name', model)!r} has no defined inputs; build it with "
            "keras.Input (a functional model) or call it once on data before exporting."
        )
    names = list(getattr(model, "input_names", None) or [f"input_{i}" for i in range(len(inputs))])
    specs = []
    for name, tensor in zip(names, inputs, strict=True):
        sample = tuple(tensor.shape[1:])
        if any(d is None for d in sample):
            raise ConfigError(
                f"model input {name!r} has shape {tuple(tensor.shape)} with an unknown "
                "non-batch dimension; exported models need static shapes. Rebuild the model "
                "with keras.Input(shape=(...)) giving every dimension."
            )
        safe = re.sub(r"[^A-Za-z0-9_]", "_", name) or "input"
        specs.append(tf.TensorSpec([1, *sample], tensor.dtype, name=safe))
    return specs


class _Calibration:
    """Wraps the user's representative function: batch-1 float32 samples, checked shapes.

    A TfhsiError raised inside the converter's calibration loop would come back
    wrapped in a TF traceback; it is kept in ``error`` and re-raised as is.
    """

    def __init__(self, representative: Representative, specs: list[Any]) -> None:
        self.representative = representative
        self.shapes = [tuple(s.shape.as_list()[1:]) for s in specs]
        self.count = 0
        self.error: TfhsiError | None = None

    def __call__(self) -> Iterator[list[np.ndarray]]:
        try:
            yield from self._samples()
        except TfhsiError as exc:
            self.error = exc
            raise

    def _samples(self) -> Iterator[list[np.ndarray]]:
        for item in self.representative():
            xs = [item] if isinstance(item, np.ndarray) else list(item)
            if len(xs) != len(self.shapes):
                raise ConfigError(
                    f"representative sample {self.count} has {len(xs)} arrays but the model "
                    f"has {len(self.shapes)} input(s); yield one [x] list per sample."
                )
            arrays = [np.asarray(x, dtype=np.float32) for x in xs]
            for x, shape in zip(arrays, self.shapes, strict=True):
                if x.shape[1:] != shape and x.shape != shape:
                    raise ConfigError(
                        f"representative sample {self.count} has shape {x.shape}; the model "
                        f"expects (N, {', '.join(map(str, shape))}). Build the calibration "
                        "patches with the model's patch size, bands and layout."
                    )
            arrays = [
                x[None] if x.shape == s else x for x, s in zip(arrays, self.shapes, strict=True)
            ]
            for i in range(arrays[0].shape[0]):
                self.count += 1
                yield [np.ascontiguousarray(x[i : i + 1]) for x in arrays]


_OP_PATTERNS = (
    # "Quantization to 16x8-bit not yet supported for op: 'CONV_3D'."
    re.compile(r"not yet supported for op:?\s*'([A-Za-z0-9_]+)'"),
    # "'tfl.conv_3d' op ..." (TFLite dialect) / "'tf.MatrixDeterminant' op ..." (TF dialect)
    re.compile(r"'((?:tfl|tf)\.[A-Za-z0-9_]+)' op"),
    re.compile(r"failed to legalize operation '((?:tfl|tf)\.[A-Za-z0-9_]+)'"),
    re.compile(r"Flex ops?:\s*Flex([A-Za-z0-9_]+)"),
)


def _op_name(text: str) -> str | None:
    """The op a converter error is about: ``CONV_3D`` for TFLite ops, ``tf.Name`` otherwise."""
    for pattern in _OP_PATTERNS:
        match = pattern.search(text)
        if match:
            name = match.group(1)
            if name.startswith("tfl."):
                return name[4:].upper()
            if pattern.pattern.startswith("Flex"):
                return f"tf.{name}"
            return name
    return None


def _first_lines(text: str, limit: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    useful = [line for line in lines if "error" in line.lower() or "supported" in line.lower()]
    unique = list(dict.fromkeys(useful or lines))
    return " | ".join(unique[:limit])[:600]


def _conversion_error(exc: Exception, preset: Preset, model: Any) -> TfhsiError:
    text = str(exc)
    op = _op_name(text)
    name = getattr(model, "name", "model")
    if preset.spec.ops == "int16x8":
        what = f"op {op}" if op else "an op"
        return UnsupportedError(
            f"{name}: the int16x8 preset cannot convert {what}: the "
            "EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 op set has no kernel "
            f"for it (converter: {_first_lines(text)}). Use the int8 preset, or replace that "
            "layer."
        )
    if op and ("supported" in text or "legalize" in text or "flex" in text.lower()):
        return UnsupportedError(
            f"{name}: the TFLite converter cannot express op {op} with the {preset.value} "
            f"preset (converter: {_first_lines(text)}). Replace that layer with TFLite builtin "
            "ops."
        )
    return ConversionError(
        f"{name}: TFLite conversion with preset {preset.value!r} failed: "
        f"{type(exc).__name__}: {_first_lines(text)}. Set TFHSI_TF_LOGS=1 to see the "
        "converter's full log."
    )


def labels_path(model_path: str | os.PathLike[str]) -> Path:
    """Where the class-label sidecar of ``model_path`` lives: ``<stem>.labels.txt``."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}.labels.txt")


def write_tflite(
    data: bytes,
    path: str | os.PathLike[str],
    *,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Atomically writes a ``.tflite`` file and, with ``class_names``, its labels sidecar.

    The sidecar ``<stem>.labels.txt`` holds one class name per line, in output order
    (line ``i`` names output ``i``), the format TFLite task libraries read.

    Raises:
        DataFormatError: ``data`` is not a TFLite flatbuffer.
        ConfigError: a class name is empty or contains a line break.
    """
    data = bytes(data)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise DataFormatError(
            "write_tflite got bytes that are not a TFLite flatbuffer (no 'TFL3' identifier); "
            "pass the result of tfhsi.export.convert(...)."
        )
    path = Path(path)
    names = _check_class_names(class_names) if class_names is not None else None
    written = write_bytes(path, data)
    if names is not None:
        write_text(labels_path(path), "".join(f"{n}\n" for n in names))
    return written


def _check_class_names(class_names: Sequence[str]) -> list[str]:
    if isinstance(class_names, str):
        raise ConfigError("class_names must be a sequence of names, not a single string.")
    names = [str(n) for n in class_names]
    for i, n in enumerate(names):
        if not n.strip() or "\n" in n or "\r" in n:
            raise ConfigError(
                f"class name {i} ({n!r}) is empty or contains a line break; the labels file "
                "has one name per line."
            )
    return names
