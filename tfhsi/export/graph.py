"""Read a ``.tflite`` flatbuffer into plain dataclasses, without TensorFlow.

The schema is the generated ``schema_py_generated`` module that ``ai-edge-litert``
ships (``ai_edge_litert.schema_py_generated``), read with the ``flatbuffers``
package; ``tflite-micro``'s copy is the fallback. Nothing here builds an
interpreter: what is reported is what the file says, operator by operator.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from tfhsi.errors import DataFormatError, SetupError
from tfhsi.tflite_file import HOW_TO_EXPORT, ModelSource, read_tflite

__all__ = [
    "FLOAT_DTYPES",
    "INTEGER_ACTIVATION_DTYPES",
    "ModelGraph",
    "OpInfo",
    "TensorInfo",
    "load_schema",
    "read_graph",
    "read_model_bytes",
]

FLOAT_DTYPES = frozenset({"float32", "float16", "float64", "bfloat16"})
INTEGER_ACTIVATION_DTYPES = frozenset({"int8", "uint8", "int16"})
_SCHEMA: ModuleType | None = None


def load_schema() -> ModuleType:
    """The TFLite flatbuffer schema module (LiteRT's copy, else TFLM's)."""
    global _SCHEMA
    if _SCHEMA is None:
        try:
            from ai_edge_litert import schema_py_generated as schema
        except ImportError:
            try:
                from tflite_micro.tensorflow.lite.micro.python import (
                    schema_py_generated as schema,
                )
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise SetupError(
                    "cannot read .tflite files: neither ai-edge-litert nor tflite-micro is "
                    f"installed ({exc}). Install one with `pip install 'ai-edge-litert==2.3.*'`."
                ) from exc
        _SCHEMA = schema
    return _SCHEMA


def _enum_names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as stored in the flatbuffer.

    Attributes:
        index: Position in its subgraph's tensor list.
        name: The converter's tensor name.
        shape: Static shape (what the interpreter allocates).
        shape_signature: Shape with ``-1`` for dynamic dimensions (``shape`` if absent).
        dtype: Lower-case TFLite type name, e.g. ``"int8"``, ``"float32"``.
        is_constant: True when the tensor has data in a buffer (weights, biases, shapes).
        quantized: True when scale / zero-point quantisation parameters are present.
        per_channel: True when there is more than one scale (per-axis quantisation).
    """

    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    dtype: str
    is_constant: bool
    quantized: bool
    per_channel: bool = False

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def is_dynamic(self) -> bool:
        """True when any dimension is unknown until run time (``-1`` in the signature)."""
        return any(d < 0 for d in self.shape_signature)

    def describe(self) -> str:
        """``int8[1,5,5,8]`` style summary (``?`` for a dynamic dimension)."""
        dims = ",".join("?" if d < 0 else str(d) for d in self.shape_signature)
        return f"{self.dtype}[{dims}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "shape": list(self.shape),
            "shape_signature": list(self.shape_signature),
            "dtype": self.dtype,
            "is_constant": self.is_constant,
            "quantized": self.quantized,
            "per_channel": self.per_channel,
        }


@dataclass(frozen=True)
class OpInfo:
    """One operator: its name and the tensors it reads and writes.

    Attributes:
        index: Position in its subgraph's execution order.
        name: Builtin op name (``"CONV_2D"``), or the custom code of a custom op.
        inputs: Input tensors (absent optional inputs are skipped).
        outputs: Output tensors.
        subgraph: Index of the subgraph the op belongs to (0 = main graph).
        version: The op version the converter recorded.
        custom: True for a custom op (``name`` is then its custom code).
    """

    index: int
    name: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    subgraph: int = 0
    version: int = 1
    custom: bool = False

    @property
    def activations(self) -> list[TensorInfo]:
        """Non-constant inputs and all outputs: the data the op computes on."""
        return [t for t in self.inputs if not t.is_constant] + list(self.outputs)

    @property
    def weights(self) -> list[TensorInfo]:
        """Constant inputs (weights, biases, shape and axis operands)."""
        return [t for t in self.inputs if t.is_constant]

    @property
    def label(self) -> str:
        """``CONV_3D#4`` (with ``@subgraph`` outside the main graph)."""
        where = f"@{self.subgraph}" if self.subgraph else ""
        return f"{self.name}#{self.index}{where}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "subgraph": self.subgraph,
            "name": self.name,
            "version": self.version,
            "custom": self.custom,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }


@dataclass(frozen=True)
class ModelGraph:
    """All operators of a model plus the main graph's inputs and outputs."""

    ops: list[OpInfo]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    size_bytes: int
    subgraphs: int = 1
    metadata: dict[str, int] = field(default_factory=dict)  # name -> buffer size in bytes


def read_model_bytes(model: ModelSource) -> bytes:
    """The model's bytes, checked to be a TFLite flatbuffer (see :func:`tfhsi.tflite_file.read_tflite`)."""
    return read_tflite(model)[1]


def read_graph(model: ModelSource) -> ModelGraph:
    """Parses every subgraph's operators and tensors.

    Raises:
        ModelFileNotFoundError, DataFormatError: see :func:`read_model_bytes`; also
            DataFormatError when the flatbuffer is truncated or inconsistent.
    """
    content = read_model_bytes(model)
    try:
        return _parse(content)
    except (struct.error, IndexError, ValueError, TypeError, AttributeError) as exc:
        # flatbuffers follows offsets blindly: a cut or corrupt file fails somewhere inside
        raise DataFormatError(
            f"the TFLite flatbuffer is truncated or corrupt ({type(exc).__name__}: {exc}); "
            f"{HOW_TO_EXPORT}"
        ) from exc


def _parse(content: bytes) -> ModelGraph:
    schema = load_schema()
    type_names = {k: v.lower() for k, v in _enum_names(schema.TensorType).items()}
    op_names = _enum_names(schema.BuiltinOperator)
    fb = schema.Model.GetRootAs(content, 0)

    constant_buffers = set()
    for b in range(fb.BuffersLength()):
        buf = fb.Buffers(b)
        if buf is None:
            continue
        if buf.DataLength() > 0 or buf.Offset() > 1:  # inline data, or data past the flatbuffer
            constant_buffers.add(b)

    codes: list[tuple[str, bool, int]] = []
    for c in range(fb.OperatorCodesLength()):
        code = fb.OperatorCodes(c)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            custom = code.CustomCode()
            codes.append(
                (custom.decode("utf-8", "replace") if custom else "CUSTOM", True, code.Version())
            )
        else:
            codes.append((op_names.get(builtin, f"BUILTIN_{builtin}"), False, code.Version()))

    ops: list[OpInfo] = []
    main_inputs: list[TensorInfo] = []
    main_outputs: list[TensorInfo] = []
    for s in range(fb.SubgraphsLength()):
        sg = fb.Subgraphs(s)
        tensors = [
            _tensor(sg.Tensors(t), t, type_names, constant_buffers)
            for t in range(sg.TensorsLength())
        ]
        for o in range(sg.OperatorsLength()):
            op = sg.Operators(o)
            name, custom, version = codes[op.OpcodeIndex()]
            ins = [tensors[i] for i in _indices(op.InputsAsNumpy(), op.InputsLength()) if i >= 0]
            outs = [tensors[i] for i in _indices(op.OutputsAsNumpy(), op.OutputsLength()) if i >= 0]
            ops.append(OpInfo(o, name, ins, outs, subgraph=s, version=version, custom=custom))
        if s == 0:
            main_inputs = [tensors[i] for i in _indices(sg.InputsAsNumpy(), sg.InputsLength())]
            main_outputs = [tensors[i] for i in _indices(sg.OutputsAsNumpy(), sg.OutputsLength())]

    metadata: dict[str, int] = {}
    for m in range(fb.MetadataLength()):
        entry = fb.Metadata(m)
        name = (entry.Name() or b"").decode("utf-8", "replace")
        buf = fb.Buffers(entry.Buffer()) if entry.Buffer() < fb.BuffersLength() else None
        metadata[name] = int(buf.DataLength()) if buf is not None else 0
    return ModelGraph(
        ops=ops,
        inputs=main_inputs,
        outputs=main_outputs,
        size_bytes=len(content),
        subgraphs=fb.SubgraphsLength(),
        metadata=metadata,
    )


def _indices(array: Any, length: int) -> list[int]:
    if length == 0 or isinstance(array, int):  # flatbuffers returns 0 for an absent vector
        return []
    return [int(i) for i in array]


def _tensor(
    t: Any, index: int, type_names: dict[int, str], constant_buffers: set[int]
) -> TensorInfo:
    shape = tuple(int(d) for d in _indices(t.ShapeAsNumpy(), t.ShapeLength()))
    signature = tuple(int(d) for d in _indices(t.ShapeSignatureAsNumpy(), t.ShapeSignatureLength()))
    q = t.Quantization()
    scales = q.ScaleLength() if q is not None else 0
    return TensorInfo(
        index=index,
        name=(t.Name() or b"").decode("utf-8", "replace"),
        shape=shape,
        shape_signature=signature or shape,
        dtype=type_names.get(t.Type(), f"type{t.Type()}"),
        is_constant=t.Buffer() in constant_buffers,
        quantized=scales > 0,
        per_channel=scales > 1,
    )
