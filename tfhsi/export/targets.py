"""Per-target verdicts: can this ``.tflite`` run where you want to deploy it, and why not.

Each checker reads the op table (:mod:`tfhsi.export.graph`), the precision analysis
(:mod:`tfhsi.export.precision`) and the op sets of :mod:`tfhsi.export.op_sets`, and
returns a :class:`Verdict` whose reasons name the offending ops. A target is "ok" only
when every operator passes; nothing is assumed from the preset a model was made with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tfhsi.export import op_sets
from tfhsi.export.graph import ModelGraph, OpInfo, TensorInfo
from tfhsi.export.precision import Precision, static_tensors
from tfhsi.registry import Registry

__all__ = ["TARGETS", "Target", "Verdict", "check_all", "describe_kind"]

EDGETPU_NOT_RUN = "static check only; the Edge TPU compiler was not run"


@dataclass(frozen=True)
class Verdict:
    """Whether a model fits a target, with the reasons.

    Attributes:
        target: Target name (``"litert-xnnpack"``, ``"tflm"``, ``"edgetpu"``).
        ok: True only when every operator and tensor passes the target's rules.
        reasons: Why (or why not), one finding per line, naming ops as ``NAME#index``.
        failing_ops: Labels of the ops that break a rule.
    """

    target: str
    ok: bool
    reasons: list[str]
    failing_ops: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "ok": self.ok,
            "reasons": list(self.reasons),
            "failing_ops": list(self.failing_ops),
        }


@dataclass(frozen=True)
class Target:
    name: str
    title: str
    check: Callable[[ModelGraph, Precision], Verdict]


TARGETS: Registry[Target] = Registry("target")


def check_all(graph: ModelGraph, precision: Precision) -> dict[str, Verdict]:
    """Runs every registered target's checker."""
    order = {name: i for i, name in enumerate(("litert-xnnpack", "tflm", "edgetpu"))}
    names = sorted(TARGETS.names(), key=lambda n: (order.get(n, len(order)), n))
    return {name: TARGETS.get(name).check(graph, precision) for name in names}


def describe_kind(op: OpInfo, kind: str) -> str:
    """Plain words for what an op computes in."""
    if kind == "weights":
        return f"unpacks {op.inputs[0].dtype} weights to {op.outputs[0].dtype}"
    if kind in ("dequantize", "quantize", "requantize"):
        return f"converts {op.inputs[0].dtype} to {op.outputs[0].dtype}"
    if kind == "hybrid":
        return "computes in float32 with int8 weights (dynamic range)"
    return f"computes in {kind}"


class _Findings:
    """Problems per op, reported as one line per op in execution order."""

    def __init__(self) -> None:
        self.by_op: dict[str, list[str]] = {}

    def add(self, op: OpInfo, why: str) -> None:
        self.by_op.setdefault(op.label, []).append(why)

    def lines(self) -> list[str]:
        return [f"{label}: {'; '.join(whys)}" for label, whys in self.by_op.items()]

    def __bool__(self) -> bool:
        return bool(self.by_op)


def _dynamic_tensors(graph: ModelGraph) -> list[TensorInfo]:
    seen: dict[tuple[int, int], TensorInfo] = {}
    for op in graph.ops:
        for t in [*op.inputs, *op.outputs]:
            if t.is_dynamic:
                seen[(op.subgraph, t.index)] = t
    for t in [*graph.inputs, *graph.outputs]:
        if t.is_dynamic:
            seen[(0, t.index)] = t
    return list(seen.values())


def _batch_problems(graph: ModelGraph) -> list[str]:
    problems = []
    for t in graph.inputs:
        if not t.shape_signature or t.shape_signature[0] != 1:
            problems.append(f"input {t.name!r} is {t.describe()}, not batch 1")
    return problems


# --- LiteRT + XNNPACK -----------------------------------------------------------------
def _xnnpack_reason(
    op: OpInfo, kind: str, static: set[tuple[int, int]], weights: str | None = None
) -> str | None:
    """Why XNNPACK would not take ``op`` (None when it would); ``weights``: its weight dtype."""
    if any(t.rank > op_sets.XNNPACK_MAX_RANK for t in [*op.inputs, *op.outputs]):
        return f"a tensor has more than {op_sets.XNNPACK_MAX_RANK} dimensions"
    if weights == "int4":
        return "int4 weights: LiteRT's XNNPACK delegate leaves them to the built-in kernels"
    if kind == "weights":
        return None if op.inputs[0].dtype == "float16" else "dequantises non-float16 weights"
    if kind == "dequantize":
        return None if op.inputs[0].dtype in ("int8", "uint8") else "dequantises int16"
    if kind == "quantize":
        return None if op.outputs[0].dtype in ("int8", "uint8") else "quantises to int16"
    if kind == "requantize":
        return "integer-to-integer QUANTIZE"
    if kind == "float32":
        allowed = op_sets.XNNPACK_FLOAT_OPS
    elif kind == "int8":
        allowed = op_sets.XNNPACK_INT8_OPS
    elif kind == "hybrid":
        allowed = op_sets.XNNPACK_HYBRID_OPS
    else:
        return f"no XNNPACK kernel for {kind} data"
    if op.name not in allowed:
        return f"not in XNNPACK's {kind} op set"
    if op.name in op_sets.XNNPACK_STATIC_WEIGHT_OPS and (
        len(op.inputs) < 2 or (op.subgraph, op.inputs[1].index) not in static
    ):
        return "its filter is not a constant"
    return None


def _check_xnnpack(graph: ModelGraph, precision: Precision) -> Verdict:
    static = static_tensors(graph)
    fallback: list[OpInfo] = []
    reasons: list[str] = []
    for op in graph.ops:
        kind = precision.kinds[op.label]
        why = _xnnpack_reason(op, kind, static, precision.weight_dtypes.get(op.label))
        if why is not None:
            fallback.append(op)
            reasons.append(f"{op.label} ({describe_kind(op, kind)}) falls back: {why}")
    n = len(graph.ops)
    if not fallback:
        reasons.insert(0, f"fully delegated: all {n} ops run in XNNPACK")
    else:
        reasons.insert(
            0,
            f"not fully delegated: {len(fallback)} of {n} ops fall back to the built-in CPU "
            "kernels (the model still runs on LiteRT, slower)",
        )
    if _dynamic_tensors(graph):
        reasons.append("dynamic shapes: XNNPACK re-plans on every resize")
    return Verdict("litert-xnnpack", not fallback, reasons, [o.label for o in fallback])


# --- TFLite Micro ---------------------------------------------------------------------
def _check_tflm(graph: ModelGraph, precision: Precision) -> Verdict:
    found = _Findings()
    for op in graph.ops:
        kind = precision.kinds[op.label]
        if op.custom:
            found.add(op, f"custom op {op.name!r} is not in TFLM's resolver; register a kernel")
        elif op.name not in op_sets.TFLM_OPS:
            found.add(op, f"{op.name} has no TFLite Micro kernel")
        if op.name in op_sets.TFLM_MAX_RANK and op.inputs:
            limit = op_sets.TFLM_MAX_RANK[op.name]
            if op.inputs[0].rank > limit:
                found.add(
                    op, f"input is {op.inputs[0].rank}-D; TFLM's {op.name} takes at most {limit}-D"
                )
        if op.name == "CONCATENATION" and len(op.inputs) > op_sets.TFLM_CONCAT_MAX_INPUTS:
            found.add(
                op,
                f"{len(op.inputs)} inputs; TFLM's CONCATENATION takes at most "
                f"{op_sets.TFLM_CONCAT_MAX_INPUTS}",
            )
        if kind == "hybrid":
            found.add(op, "int8 weights with float activations: TFLM has no hybrid kernels")
        if kind == "weights" and op.inputs[0].dtype not in ("int8", "int16", "uint8"):
            found.add(
                op, f"{op.inputs[0].dtype} weights: TFLM's DEQUANTIZE takes int8/int16/uint8 only"
            )
        if kind == "float16":
            found.add(op, "float16 activations: TFLM kernels take float32 or integers")
        int4 = precision.weight_dtypes.get(op.label) == "int4"
        if int4 and op.name not in op_sets.TFLM_INT4_WEIGHT_OPS:
            found.add(
                op,
                f"int4 weights: TFLM's {op.name} takes int8 weights only "
                "(keep this layer int8: keep_int8)",
            )
    reasons = found.lines()
    dynamic = _dynamic_tensors(graph)
    if dynamic:
        names = ", ".join(t.describe() for t in dynamic[:4])
        reasons.append(f"dynamic shapes ({names}): TFLM needs static shapes; export with batch 1")
    batch = _batch_problems(graph)
    reasons.extend(f"{p}: TFLM models take one sample at a time" for p in batch)
    ok = not found and not dynamic and not batch
    if ok:
        reasons.insert(0, f"all {len(graph.ops)} ops are in TFLM's op resolver, shapes are static")
        if precision.float_ops:
            reasons.append(
                f"{len(precision.float_ops)} ops compute in float32: TFLM has reference float "
                "kernels, but int8 is what MCUs run fast (and CMSIS-NN accelerates)"
            )
    else:
        reasons.insert(0, "does not run on TFLite Micro as is")
    return Verdict("tflm", ok, reasons, list(found.by_op))


# --- Edge TPU -------------------------------------------------------------------------
def _edgetpu_rank_problem(t: TensorInfo) -> bool:
    shape = t.shape_signature
    inner = op_sets.EDGETPU_MAX_INNER_DIMS
    return len(shape) > inner and any(d != 1 for d in shape[:-inner])


def _check_edgetpu(graph: ModelGraph, precision: Precision) -> Verdict:
    static = static_tensors(graph)
    inputs = {t.index for t in graph.inputs}
    outputs = {t.index for t in graph.outputs}
    found = _Findings()
    edge_notes: list[str] = []
    for op in graph.ops:
        kind = precision.kinds[op.label]
        at_input = kind == "quantize" and op.subgraph == 0 and op.inputs[0].index in inputs
        at_output = kind == "dequantize" and op.subgraph == 0 and op.outputs[0].index in outputs
        if at_input or at_output:
            where = "input" if at_input else "output"
            edge_notes.append(f"{op.label} at the model {where} runs on the CPU")
            continue
        if op.name not in op_sets.EDGETPU_OPS:
            found.add(op, f"{op.name} is not in the Edge TPU op table")
        if kind not in ("int8", "uint8", "requantize"):
            found.add(op, f"{describe_kind(op, kind)}; the Edge TPU runs 8-bit quantised ops only")
        if precision.weight_dtypes.get(op.label) == "int4":
            found.add(op, "int4 weights; the Edge TPU runs 8-bit quantised ops only")
        if kind != "weights":
            data = [t for t in op.inputs if (op.subgraph, t.index) not in static] + op.outputs
            wide = next((t for t in data if _edgetpu_rank_problem(t)), None)
            if wide is not None:
                found.add(op, f"tensor {wide.describe()} has more than 3 dimensions larger than 1")
    reasons = found.lines()
    dynamic = _dynamic_tensors(graph)
    if dynamic:
        reasons.append("dynamic shapes: the Edge TPU compiler needs static tensor sizes")
    ok = not found and not dynamic
    if ok:
        reasons.insert(
            0,
            f"all {len(graph.ops)} ops are 8-bit and in the Edge TPU op table; activation "
            "tensors have at most 3 dimensions larger than 1; shapes are static",
        )
    elif found:
        first = next(iter(found.by_op))
        reasons.insert(
            0,
            f"not Edge TPU compatible: the compiler would stop mapping at {first}; it and "
            "every op after it would run on the CPU",
        )
    else:
        reasons.insert(0, "not Edge TPU compatible")
    reasons.extend(edge_notes)
    reasons.append(EDGETPU_NOT_RUN)
    return Verdict("edgetpu", ok, reasons, list(found.by_op))


TARGETS.add("litert-xnnpack", Target("litert-xnnpack", "LiteRT + XNNPACK", _check_xnnpack))
TARGETS.add("tflm", Target("tflm", "TensorFlow Lite Micro", _check_tflm))
TARGETS.add("edgetpu", Target("edgetpu", "Coral Edge TPU", _check_edgetpu))
