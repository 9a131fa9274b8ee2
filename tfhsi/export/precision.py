"""What each op computes in, float islands, and the model's honest precision label.

Definitions used throughout tfhsi:

* A tensor is *static* when it is a constant (buffer data) or the output of a
  DEQUANTIZE whose input is a constant (float16 / int8 weights unpacked at load).
* An op's *kind* is read from its non-static inputs and its outputs: ``float32``,
  ``float16``, ``hybrid`` (float activations with int8 constant weights, i.e.
  dynamic-range), ``int8``, ``uint8``, ``int16``, ``quantize`` (float → integer),
  ``requantize`` (integer → integer QUANTIZE), ``dequantize`` (integer activations →
  float), ``weights`` (DEQUANTIZE of a constant) or ``other`` (e.g. int32-only ops).
* A *float op* computes in floating point: kind ``float32``, ``float16`` or ``hybrid``.
* A model is *full integer* (``is_full_int8``) when it has no float op, at least one
  int8/int16 op, and no float tensor other than the model's own inputs and outputs
  (so QUANTIZE at the input and DEQUANTIZE at the output are allowed, nothing else).
* An integer model's *weight bits* come from the quantised constant inputs (filters, not
  int32 biases) of its integer ops: a model whose weights are all int4 is ``w4a8`` (int8
  activations) or ``w4a16``; some int4 and some int8 is ``w4/8a8`` / ``w4/8a16``; all int8
  keeps the names ``int8`` / ``int16x8``.
* A *float island* is a connected group of float ops inside a model that also computes
  in integers, e.g. ``DEQUANTIZE#0 → CONV_3D#1 (float32) → QUANTIZE#2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tfhsi.export.graph import FLOAT_DTYPES, ModelGraph, OpInfo, TensorInfo

__all__ = [
    "FLOAT_KINDS",
    "FloatIsland",
    "Precision",
    "analyse",
    "op_kind",
    "static_tensors",
    "weight_dtypes",
]

FLOAT_KINDS = frozenset({"float32", "float16", "hybrid"})
INTEGER_KINDS = frozenset({"int8", "uint8", "int16"})


def _key(op: OpInfo, tensor: TensorInfo) -> tuple[int, int]:
    return (op.subgraph, tensor.index)


def static_tensors(graph: ModelGraph) -> set[tuple[int, int]]:
    """(subgraph, tensor index) of constants and of DEQUANTIZE'd constants."""
    static: set[tuple[int, int]] = set()
    for op in graph.ops:
        for t in op.inputs:
            if t.is_constant:
                static.add(_key(op, t))
    for op in graph.ops:
        if op.name == "DEQUANTIZE" and op.inputs and all(t.is_constant for t in op.inputs):
            static.update(_key(op, t) for t in op.outputs)
    return static


def op_kind(op: OpInfo, static: set[tuple[int, int]]) -> str:
    """The precision an op computes in (see the module docstring)."""
    if op.name == "DEQUANTIZE":
        if op.inputs and all(t.is_constant for t in op.inputs):
            return "weights"
        return "dequantize"
    if op.name == "QUANTIZE":
        if op.inputs and op.inputs[0].dtype in FLOAT_DTYPES:
            return "quantize"
        return "requantize"
    data = [t for t in op.inputs if _key(op, t) not in static] + list(op.outputs)
    dtypes = {t.dtype for t in data}
    if dtypes & FLOAT_DTYPES:
        weights = [t for t in op.inputs if t.is_constant]
        if any(t.dtype in ("int8", "uint8", "int4") and t.quantized for t in weights):
            return "hybrid"
        return "float16" if dtypes & FLOAT_DTYPES == {"float16"} else "float32"
    for kind in ("int16", "int8", "uint8"):
        if kind in dtypes:
            return kind
    return "other"


@dataclass(frozen=True)
class FloatIsland:
    """Float ops computing between integer parts of a model.

    Attributes:
        ops: The float ops of the island, in execution order.
        entries: Ops feeding the island (usually DEQUANTIZE); empty when it starts
            at a model input.
        exits: Ops reading the island's results (usually QUANTIZE); empty when it
            ends at a model output.
    """

    ops: list[OpInfo]
    entries: list[OpInfo]
    exits: list[OpInfo]
    kinds: dict[str, str]  # op label -> kind

    def describe(self) -> str:
        """``DEQUANTIZE#0 → CONV_3D#1 (float32) → QUANTIZE#2``."""
        start = ", ".join(o.label for o in self.entries) or "model input"
        middle = ", ".join(f"{o.label} ({self.kinds[o.label]})" for o in self.ops)
        end = ", ".join(o.label for o in self.exits) or "model output"
        return f"{start} → {middle} → {end}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ops": [o.label for o in self.ops],
            "entries": [o.label for o in self.entries],
            "exits": [o.label for o in self.exits],
            "description": self.describe(),
        }


@dataclass(frozen=True)
class Precision:
    """The result of :func:`analyse`."""

    kinds: dict[str, str]  # op label -> kind
    float_ops: list[OpInfo]
    float_islands: list[FloatIsland]
    label: str  # float32 | float16-weights | dynamic-range | int8 | int16x8 | w4a8 | w4/8a8 | …
    is_full_int8: bool
    stray_float_tensors: list[str]  # float tensors between integer ops (not model I/O)
    weight_dtypes: dict[str, str] = field(default_factory=dict)  # op label -> int4 / int8


def weight_dtypes(graph: ModelGraph) -> dict[str, str]:
    """Op label → dtype of its quantised integer weights (``int4``, ``int8``) for every op
    with such a constant input (int32 biases and shape operands do not count)."""
    found: dict[str, str] = {}
    for op in graph.ops:
        dtypes = {t.dtype for t in op.inputs if t.is_constant and t.quantized}
        dtypes &= {"int4", "int8", "uint8"}
        if dtypes:
            found[op.label] = "int4" if dtypes == {"int4"} else min(dtypes - {"int4"} or dtypes)
    return found


def _integer_label(activations16: bool, weights: dict[str, str]) -> str:
    bits = set(weights.values())
    if "int4" not in bits:
        return "int16x8" if activations16 else "int8"
    act = "a16" if activations16 else "a8"
    return f"w4{act}" if bits == {"int4"} else f"w4/8{act}"


def analyse(graph: ModelGraph) -> Precision:
    """Classifies every op and labels the model's precision honestly."""
    static = static_tensors(graph)
    kinds = {op.label: op_kind(op, static) for op in graph.ops}
    float_ops = [op for op in graph.ops if kinds[op.label] in FLOAT_KINDS]
    integer_ops = [op for op in graph.ops if kinds[op.label] in INTEGER_KINDS]

    io = {(0, t.index) for t in graph.inputs} | {(0, t.index) for t in graph.outputs}
    stray = sorted(
        {
            f"{t.name or t.index} ({t.dtype})"
            for op in graph.ops
            for t in [*op.inputs, *op.outputs]
            if t.dtype in FLOAT_DTYPES and _key(op, t) not in static and _key(op, t) not in io
        }
    )
    is_full = bool(integer_ops) and not float_ops and not stray
    if float_ops and integer_ops:
        label = "mixed"
    elif float_ops:
        if any(kinds[o.label] == "hybrid" for o in float_ops):
            label = "dynamic-range"
        elif any(kinds[o.label] == "weights" and o.inputs[0].dtype == "float16" for o in graph.ops):
            label = "float16-weights"
        else:
            label = "float32"
    elif integer_ops:
        a16 = any(kinds[o.label] == "int16" for o in integer_ops)
        label = _integer_label(a16, {o.label: w for o, w in _op_weights(graph, integer_ops)})
    else:
        label = "other"
    islands = _islands(graph, float_ops, kinds) if integer_ops else []
    return Precision(kinds, float_ops, islands, label, is_full, stray, weight_dtypes(graph))


def _op_weights(graph: ModelGraph, ops: list[OpInfo]) -> list[tuple[OpInfo, str]]:
    weights = weight_dtypes(graph)
    return [(op, weights[op.label]) for op in ops if op.label in weights]


def _islands(
    graph: ModelGraph, float_ops: list[OpInfo], kinds: dict[str, str]
) -> list[FloatIsland]:
    producer: dict[tuple[int, int], OpInfo] = {}
    consumers: dict[tuple[int, int], list[OpInfo]] = {}
    for op in graph.ops:
        for t in op.outputs:
            producer[_key(op, t)] = op
        for t in op.inputs:
            consumers.setdefault(_key(op, t), []).append(op)

    in_float = {op.label for op in float_ops}
    parent = {label: label for label in in_float}

    def find(label: str) -> str:
        while parent[label] != label:
            parent[label] = parent[parent[label]]
            label = parent[label]
        return label

    for op in float_ops:
        for t in op.outputs:
            for nxt in consumers.get(_key(op, t), []):
                if nxt.label in in_float:
                    parent[find(nxt.label)] = find(op.label)

    groups: dict[str, list[OpInfo]] = {}
    for op in float_ops:
        groups.setdefault(find(op.label), []).append(op)

    islands = []
    for members in groups.values():
        labels = {o.label for o in members}
        entries: dict[str, OpInfo] = {}
        exits: dict[str, OpInfo] = {}
        for op in members:
            for t in op.inputs:
                src = producer.get(_key(op, t))
                if src is not None and src.label not in labels and kinds[src.label] != "weights":
                    entries[src.label] = src
            for t in op.outputs:
                for nxt in consumers.get(_key(op, t), []):
                    if nxt.label not in labels:
                        exits[nxt.label] = nxt
        islands.append(
            FloatIsland(
                ops=members,
                entries=list(entries.values()),
                exits=list(exits.values()),
                kinds={o.label: kinds[o.label] for o in members},
            )
        )
    return islands
