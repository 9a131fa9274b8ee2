"""Multiply-accumulates per inference, and float ops, read from the ``.tflite`` graph itself.

Shapes come from LiteRT's tensor details after allocation (a dynamic batch counts as 1),
ops from its op list. Counted ops, with ``out`` the number of output elements:

* ``CONV_2D``: out × KH × KW × (in-channels / groups), filter ``[O, KH, KW, I/g]``;
* ``DEPTHWISE_CONV_2D``: out × KH × KW, filter ``[1, KH, KW, C·M]``;
* ``CONV_3D``: out × KD × KH × KW × (in-channels / groups), filter ``[KD, KH, KW, I/g, O]``;
* ``FULLY_CONNECTED``: out × I, filter ``[O, I]``;
* ``TRANSPOSE_CONV`` / ``CONV_3D_TRANSPOSE``: input elements × kernel window × out-channels;
* ``BATCH_MATMUL``: out × K.

Everything else (pooling, activations, element-wise ops, quantise) counts 0, the usual
convention; batch norm is folded into the convolutions by the converter.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tfhsi.profile.interpreter import TFLiteModel

__all__ = ["MacCount", "OpMacs", "count_macs", "float_ops"]

_CONVERSIONS = {"QUANTIZE", "DEQUANTIZE"}


@dataclass(frozen=True)
class OpMacs:
    """MACs of one operator (``label`` is ``NAME#index`` in execution order)."""

    label: str
    op: str
    macs: int


@dataclass(frozen=True)
class MacCount:
    """MACs of a model.

    Attributes:
        per_invoke: MACs of one ``invoke()`` (the whole fixed batch).
        batch: The input's batch size (dynamic batch counts as 1).
        per_op: The counted operators, in execution order.
    """

    per_invoke: int
    batch: int
    per_op: list[OpMacs] = field(default_factory=list)

    @property
    def per_sample(self) -> int:
        """MACs for one sample (``per_invoke / batch``): the figure to quote per inference."""
        return self.per_invoke // max(self.batch, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_sample": self.per_sample,
            "per_invoke": self.per_invoke,
            "batch": self.batch,
            "per_op": [{"op": o.label, "macs": o.macs} for o in self.per_op],
        }


Shape = Sequence[int]
Counter = Callable[[Shape, Sequence[Shape]], int]


def _conv(out: Shape, inputs: Sequence[Shape]) -> int:
    kh, kw, cin = inputs[1][1:4]
    return math.prod(out) * kh * kw * cin


def _depthwise(out: Shape, inputs: Sequence[Shape]) -> int:
    kh, kw = inputs[1][1:3]
    return math.prod(out) * kh * kw


def _conv3d(out: Shape, inputs: Sequence[Shape]) -> int:
    kd, kh, kw, cin = inputs[1][:4]
    return math.prod(out) * kd * kh * kw * cin


def _fully_connected(out: Shape, inputs: Sequence[Shape]) -> int:
    return math.prod(out) * inputs[1][-1]


def _transpose_conv(out: Shape, inputs: Sequence[Shape]) -> int:
    cout, kh, kw = inputs[1][:3]  # [output_shape, weights [O, KH, KW, I], input, bias]
    return math.prod(inputs[2]) * kh * kw * cout


def _conv3d_transpose(out: Shape, inputs: Sequence[Shape]) -> int:
    kd, kh, kw, cout = inputs[1][:4]  # weights [KD, KH, KW, O, I]
    return math.prod(inputs[2]) * kd * kh * kw * cout


def _batch_matmul(out: Shape, inputs: Sequence[Shape]) -> int:
    # out = batch × M × N and a = batch × M × K (in either order), so K = |a| · N / |out|.
    n_out = math.prod(out)
    return 0 if n_out == 0 else math.prod(inputs[0]) * out[-1]


_COUNTERS: dict[str, Counter] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "CONV_3D": _conv3d,
    "FULLY_CONNECTED": _fully_connected,
    "TRANSPOSE_CONV": _transpose_conv,
    "CONV_3D_TRANSPOSE": _conv3d_transpose,
    "BATCH_MATMUL": _batch_matmul,
}


def count_macs(model: TFLiteModel | bytes | str | os.PathLike[str]) -> MacCount:
    """Counts the MACs of a ``.tflite`` model from its operators and tensor shapes.

    Args:
        model: A loaded :class:`TFLiteModel`, or a path / bytes to load (without XNNPACK).

    Returns:
        The per-invoke count, the batch and the per-op breakdown.

    Raises:
        ModelFileNotFoundError, DataFormatError, UnsupportedError: as :class:`TFLiteModel`.
    """
    tfl = model if isinstance(model, TFLiteModel) else TFLiteModel(model, xnnpack=False)
    tensors = tfl.tensors()

    def shape(index: int) -> list[int]:
        return [int(d) for d in tensors[int(index)]["shape"]] if index >= 0 else []

    per_op: list[OpMacs] = []
    for op in tfl.ops():
        counter = _COUNTERS.get(op["op_name"])
        if counter is None or len(op["outputs"]) == 0:
            continue
        inputs = [shape(t) for t in op["inputs"]]
        macs = int(counter(shape(op["outputs"][0]), inputs))
        per_op.append(OpMacs(f"{op['op_name']}#{op['index']}", op["op_name"], macs))
    batch = int(tfl.input_shape[0] or 1) if tfl.input_shape else 1
    return MacCount(sum(o.macs for o in per_op), batch, per_op)


def float_ops(model: TFLiteModel | bytes | str | os.PathLike[str]) -> list[str]:
    """Labels (``NAME#index``) of the ops that compute in floating point.

    An op counts when any operand or result is a float tensor; ``QUANTIZE`` / ``DEQUANTIZE``
    (the converters at a float model interface) do not. An empty list means the model runs
    on integer kernels only, as MCU targets and the Edge TPU want.
    """
    tfl = model if isinstance(model, TFLiteModel) else TFLiteModel(model, xnnpack=False)
    found = []
    for op in tfl.ops():
        if op["op_name"] in _CONVERSIONS:
            continue
        types = [*op.get("operand_types", []), *op.get("result_types", [])]
        if any(np.dtype(t).kind == "f" for t in types):
            found.append(f"{op['op_name']}#{op['index']}")
    return found
