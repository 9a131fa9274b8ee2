"""The op-level audit of a ``.tflite`` file: what it really computes in, and where it runs.

    >>> from tfhsi.export.inspect import audit
    >>> report = audit("student3d_int8.tflite")  # doctest: +SKIP
    >>> report.is_full_int8, report.verdicts["tflm"].ok  # doctest: +SKIP
    (False, False)

The flatbuffer is read with LiteRT's bundled schema (no TensorFlow import), so the audit
is fast enough for the CLI. tfhsi never calls a model int8, or says it fits a target,
unless every operator says so: the audit is the authority, not the preset.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfhsi.export.graph import ModelGraph, OpInfo, TensorInfo, read_graph, read_model_bytes
from tfhsi.export.precision import FloatIsland, analyse
from tfhsi.export.targets import TARGETS, Verdict, check_all
from tfhsi.export.tflite import labels_path

__all__ = [
    "TARGETS",
    "ModelAudit",
    "OpInfo",
    "SmokeResult",
    "TensorInfo",
    "Verdict",
    "audit",
    "tflm_smoke_test",
]

SCHEMA_SOURCE = "ai_edge_litert.schema_py_generated (TFLite flatbuffer schema) + flatbuffers"


@dataclass(frozen=True)
class SmokeResult:
    """Outcome of actually loading and invoking a model in a runtime."""

    runtime: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class ModelAudit:
    """Everything :func:`audit` found out about one model.

    Attributes:
        source: File path, or ``"<bytes>"``.
        ops: Every operator of every subgraph, in execution order.
        inputs / outputs: The main graph's input and output tensors.
        size_bytes: Size of the flatbuffer.
        kinds: Op label -> what it computes in (see :mod:`tfhsi.export.precision`).
        float_ops: Ops that compute in floating point (float32, float16, hybrid).
        float_islands: Float ops computing between integer parts of the model.
        precision: ``float32``, ``float16-weights``, ``dynamic-range``, ``int8``,
            ``int16x8``, ``w4a8`` (int4 weights, int8 activations), ``w4/8a8`` (int4 and
            int8 weights), ``w4a16`` / ``w4/8a16``, ``mixed`` (integer with float islands) or
            ``other``.
        is_full_int8: No float op and no float tensor except the model's own I/O.
        verdicts: Target name -> :class:`Verdict`.
        class_names: Labels from the ``<stem>.labels.txt`` sidecar, when present.
        notes: Other findings (labels that do not match the output size ...).
        smoke: Results of optional runtime smoke tests (``tflm_smoke=True``).
        weight_dtypes: Op label -> dtype of its quantised integer weights (``int4``,
            ``int8``), for ops that have some.
    """

    source: str
    ops: list[OpInfo]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    size_bytes: int
    kinds: dict[str, str]
    float_ops: list[OpInfo]
    float_islands: list[FloatIsland]
    precision: str
    is_full_int8: bool
    verdicts: dict[str, Verdict]
    class_names: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    smoke: list[SmokeResult] = field(default_factory=list)
    weight_dtypes: dict[str, str] = field(default_factory=dict)

    @property
    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op.name] = counts.get(op.name, 0) + 1
        return counts

    def summary(self) -> str:
        """One line: size, precision and the float islands if any."""
        text = (
            f"{self.size_bytes:,} bytes, {len(self.ops)} ops, precision {self.precision}, "
            f"full integer: {'yes' if self.is_full_int8 else 'no'}"
        )
        if self.float_islands:
            text += f", {len(self.float_islands)} float island(s)"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``tfhsi audit --json``)."""
        return {
            "source": self.source,
            "size_bytes": self.size_bytes,
            "precision": self.precision,
            "is_full_int8": self.is_full_int8,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "op_counts": self.op_counts,
            "ops": [
                {
                    **op.to_dict(),
                    "kind": self.kinds[op.label],
                    "weights": self.weight_dtypes.get(op.label),
                }
                for op in self.ops
            ],
            "float_ops": [op.label for op in self.float_ops],
            "float_islands": [i.to_dict() for i in self.float_islands],
            "verdicts": {name: v.to_dict() for name, v in self.verdicts.items()},
            "class_names": self.class_names,
            "notes": list(self.notes),
            "smoke": [s.to_dict() for s in self.smoke],
            "schema": SCHEMA_SOURCE,
        }


def audit(model: bytes | str | os.PathLike[str], *, tflm_smoke: bool = False) -> ModelAudit:
    """Reads a ``.tflite`` flatbuffer and audits it op by op.

    Args:
        model: Path to a ``.tflite`` file, or its bytes.
        tflm_smoke: Also load and invoke the model once in the TFLite Micro Python
            runtime (zeros as input) and record the outcome in ``smoke``; a failure
            there turns the ``tflm`` verdict to not ok.

    Raises:
        ModelFileNotFoundError: the path does not exist.
        DataFormatError: the content is not a (valid) TFLite flatbuffer.
    """
    path = None if isinstance(model, (bytes, bytearray, memoryview)) else Path(model)
    content = read_model_bytes(model)
    graph: ModelGraph = read_graph(content)
    precision = analyse(graph)
    verdicts = check_all(graph, precision)
    notes: list[str] = []
    class_names = None if path is None else _read_labels(path, graph, notes)
    if graph.subgraphs > 1:
        notes.append(f"{graph.subgraphs} subgraphs (control flow); all are audited")
    if precision.stray_float_tensors and not precision.float_ops:
        notes.append(
            "float tensors between integer ops: " + ", ".join(precision.stray_float_tensors[:5])
        )
    smoke: list[SmokeResult] = []
    if tflm_smoke:
        result = tflm_smoke_test(content)
        smoke.append(result)
        if not result.ok and verdicts["tflm"].ok:
            v = verdicts["tflm"]
            verdicts["tflm"] = Verdict(
                v.target, False, [*v.reasons, f"TFLM runtime: {result.detail}"], v.failing_ops
            )
        elif not result.ok:
            verdicts["tflm"].reasons.append(f"TFLM runtime confirms: {result.detail}")
    return ModelAudit(
        source="<bytes>" if path is None else str(path),
        ops=graph.ops,
        inputs=graph.inputs,
        outputs=graph.outputs,
        size_bytes=graph.size_bytes,
        kinds=precision.kinds,
        float_ops=precision.float_ops,
        float_islands=precision.float_islands,
        precision=precision.label,
        is_full_int8=precision.is_full_int8,
        verdicts=verdicts,
        class_names=class_names,
        notes=notes,
        smoke=smoke,
        weight_dtypes=dict(precision.weight_dtypes),
    )


def _read_labels(path: Path, graph: ModelGraph, notes: list[str]) -> list[str] | None:
    sidecar = labels_path(path)
    if not sidecar.is_file():
        return None
    names = [
        line.strip() for line in sidecar.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    if graph.outputs:
        n_out = graph.outputs[0].shape[-1] if graph.outputs[0].shape else 0
        if n_out and n_out != len(names):
            notes.append(
                f"{sidecar.name} lists {len(names)} class names but the output has {n_out} "
                "scores; the labels file belongs to another model"
            )
    return names


@contextlib.contextmanager
def _captured_native_output() -> Iterator[list[str]]:
    """Captures what C++ code prints on fds 1 and 2 (TFLM reports errors there)."""
    lines: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = []
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            for fd in (1, 2):
                saved.append((fd, os.dup(fd)))
                os.dup2(sink.fileno(), fd)
            yield lines
        finally:
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            lines.extend(line.strip() for line in text.splitlines() if line.strip())


def tflm_smoke_test(model: bytes, *, arena_size: int | None = None) -> SmokeResult:
    """Loads ``model`` in the TFLite Micro Python runtime and invokes it once on zeros.

    This says whether TFLM *can* run the model (kernels present, tensors allocatable);
    it is not an arena-size or latency measurement.
    """
    import numpy as np

    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as exc:
        return SmokeResult("tflm", False, f"tflite-micro is not installed ({exc})")
    arena = arena_size or max(256 * 1024, 16 * len(model))
    try:
        with _captured_native_output() as lines:
            interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena)
            detail = interpreter.get_input_details(0)
            x = np.zeros(detail["shape"], dtype=detail["dtype"])
            interpreter.set_input(x, 0)
            interpreter.invoke()
    except Exception as exc:  # the runtime raises RuntimeError/ValueError with little text
        why = "; ".join(dict.fromkeys(lines))[:500] or str(exc)
        return SmokeResult("tflm", False, f"{type(exc).__name__}: {str(exc).strip()} ({why})")
    return SmokeResult("tflm", True, f"loaded and invoked once with a {arena:,}-byte arena")
