"""The TFLite metadata schema's tables that tfhsi writes and reads, with the flatbuffers runtime.

Field slots follow tflite-support's ``metadata_schema.fbs`` (schema 1.5.0, identifier
``M001``); a union field takes two slots, its type (a byte) first. Only what
:mod:`tfhsi.export.metadata` needs is built here: ``ModelMetadata`` → one
``SubGraphMetadata`` → one input and one output ``TensorMetadata`` with
``FeatureProperties`` content, ``NormalizationOptions``, ``Stats`` and ``AssociatedFile``.
The reader accepts any metadata and reports the fields it knows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import flatbuffers
import numpy as np
from flatbuffers import number_types as nt
from flatbuffers.table import Table

IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"
"""Every field written here is in metadata schema 1.0.0."""
TENSOR_AXIS_LABELS = 2  # AssociatedFileType
_FEATURE_PROPERTIES = 1  # ContentProperties union: FeatureProperties
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union: NormalizationOptions
_FILE_TYPES = {
    0: "UNKNOWN",
    1: "DESCRIPTIONS",
    2: "TENSOR_AXIS_LABELS",
    3: "TENSOR_VALUE_LABELS",
    4: "TENSOR_AXIS_SCORE_CALIBRATION",
    5: "VOCABULARY",
    6: "SCANN_INDEX_FILE",
}
_CONTENT = {0: None, 1: "feature", 2: "image", 3: "bounding_box", 4: "audio"}
DIMENSIONS = {
    "2d": ("batch", "row", "column", "band"),
    "3d": ("batch", "row", "column", "band", "channel"),
    "1d": ("batch", "band", "channel"),
}
"""``TensorMetadata.dimension_names`` of each input layout."""


@dataclass(frozen=True)
class TensorFields:
    """The ``TensorMetadata`` fields tfhsi writes (arrays float32; None = field absent)."""

    name: str
    description: str
    dimension_names: Sequence[str]
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    stats_min: np.ndarray | None = None
    stats_max: np.ndarray | None = None
    labels_file: str | None = None
    labels_description: str = ""


def build(
    *,
    name: str,
    description: str,
    version: str,
    author: str,
    licence: str,
    input_tensor: TensorFields,
    output_tensor: TensorFields,
) -> bytes:
    """A finished ``ModelMetadata`` flatbuffer with one subgraph."""
    b = flatbuffers.Builder(1024)
    s = b.CreateString
    subgraph = _table(
        b,
        [
            (0, s(name)),
            (1, s(description)),
            (2, _vector(b, [_tensor_metadata(b, input_tensor)])),
            (3, _vector(b, [_tensor_metadata(b, output_tensor)])),
        ],
    )
    root = _table(
        b,
        [
            (0, s(name)),
            (1, s(description)),
            (2, s(version)),
            (3, _vector(b, [subgraph])),
            (4, s(author)),
            (5, s(licence)),
            (7, s(MIN_PARSER_VERSION)),
        ],
    )
    b.Finish(root, file_identifier=IDENTIFIER)
    return bytes(b.Output())


def _tensor_metadata(b: flatbuffers.Builder, t: TensorFields) -> int:
    stats = None
    if t.stats_min is not None and t.stats_max is not None:
        high, low = b.CreateNumpyVector(t.stats_max), b.CreateNumpyVector(t.stats_min)
        stats = _table(b, [(0, high), (1, low)])  # Stats: max, then min
    units = None
    if t.mean is not None and t.std is not None:
        options = _table(b, [(0, b.CreateNumpyVector(t.mean)), (1, b.CreateNumpyVector(t.std))])
        units = _vector(b, [_table(b, [(1, options)], types=[(0, _NORMALIZATION_OPTIONS)])])
    files = None
    if t.labels_file is not None:
        entry = [(0, b.CreateString(t.labels_file)), (1, b.CreateString(t.labels_description))]
        files = _vector(b, [_table(b, entry, types=[(2, TENSOR_AXIS_LABELS)])])
    return _table(
        b,
        [
            (0, b.CreateString(t.name)),
            (1, b.CreateString(t.description)),
            (2, _vector(b, [b.CreateString(d) for d in t.dimension_names])),
            (3, _feature_content(b)),
            (4, units),
            (5, stats),
            (6, files),
        ],
    )


def _feature_content(b: flatbuffers.Builder) -> int:
    b.StartObject(0)
    properties = b.EndObject()
    return _table(b, [(1, properties)], types=[(0, _FEATURE_PROPERTIES)])


def _table(
    b: flatbuffers.Builder,
    offsets: Sequence[tuple[int, int | None]],
    *,
    types: Sequence[tuple[int, int]] = (),
) -> int:
    """A table of offset fields and byte fields (enums, union types), by slot number."""
    slots = 1 + max([slot for slot, _ in offsets] + [slot for slot, _ in types])
    b.StartObject(slots)
    for slot, value in offsets:
        if value is not None:
            b.PrependUOffsetTRelativeSlot(slot, value, 0)
    for slot, byte in types:
        b.PrependUint8Slot(slot, byte, 0)
    return int(b.EndObject())


def _vector(b: flatbuffers.Builder, offsets: Sequence[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    return int(b.EndVector())


def parse(raw: bytes, files: dict[str, bytes]) -> dict[str, Any]:
    """The fields of a ``ModelMetadata`` flatbuffer; ``files`` are the packed associated files."""
    root = Table(bytearray(raw), int(flatbuffers.encode.Get(flatbuffers.packer.uoffset, raw, 0)))
    subgraphs = _tables(root, 3)
    main = subgraphs[0] if subgraphs else None
    return {
        "name": _string(root, 0),
        "description": _string(root, 1),
        "version": _string(root, 2),
        "author": _string(root, 4),
        "license": _string(root, 5),
        "min_parser_version": _string(root, 7),
        "files": sorted(files),
        "inputs": [_tensor(t, files) for t in _tables(main, 2)] if main else [],
        "outputs": [_tensor(t, files) for t in _tables(main, 3)] if main else [],
    }


def _field(t: Table, slot: int) -> int:
    return int(t.Offset(4 + 2 * slot))


def _string(t: Table, slot: int) -> str | None:
    o = _field(t, slot)
    return t.String(o + t.Pos).decode() if o else None


def _child(t: Table, slot: int) -> Table | None:
    o = _field(t, slot)
    return Table(t.Bytes, t.Indirect(o + t.Pos)) if o else None


def _byte(t: Table, slot: int) -> int:
    o = _field(t, slot)
    return int(t.Get(nt.Uint8Flags, o + t.Pos)) if o else 0


def _tables(t: Table, slot: int) -> list[Table]:
    o = _field(t, slot)
    if not o:
        return []
    start = t.Vector(o)
    return [Table(t.Bytes, t.Indirect(start + 4 * i)) for i in range(t.VectorLen(o))]


def _strings(t: Table, slot: int) -> list[str]:
    o = _field(t, slot)
    if not o:
        return []
    start = t.Vector(o)
    return [t.String(start + 4 * i).decode() for i in range(t.VectorLen(o))]


def _floats(t: Table, slot: int) -> list[float]:
    o = _field(t, slot)
    return [float(v) for v in t.GetVectorAsNumpy(nt.Float32Flags, o)] if o else []


def _tensor(t: Table, files: dict[str, bytes]) -> dict[str, Any]:
    dims = _strings(t, 2)
    content = _child(t, 3)
    normalization = None
    for unit in _tables(t, 4):
        options = _child(unit, 1)
        if _byte(unit, 0) == _NORMALIZATION_OPTIONS and options is not None:
            std = _floats(options, 1)
            normalization = {
                "mean": _floats(options, 0),
                "std": [None if math.isinf(v) else v for v in std],
                "constant_bands": [i for i, v in enumerate(std) if math.isinf(v)],
            }
    stats_table = _child(t, 5)
    stats = None
    if stats_table is not None:
        stats = {"min": _floats(stats_table, 1), "max": _floats(stats_table, 0)}
    associated = [
        {
            "name": _string(f, 0),
            "description": _string(f, 1),
            "type": _FILE_TYPES.get(_byte(f, 2), "UNKNOWN"),
        }
        for f in _tables(t, 6)
    ]
    labels = None
    for f in associated:
        if f["type"] == "TENSOR_AXIS_LABELS" and f["name"] in files:
            labels = files[f["name"]].decode().splitlines()
            break
    layout = next((k for k, v in DIMENSIONS.items() if tuple(dims) == v), None)
    return {
        "name": _string(t, 0),
        "description": _string(t, 1),
        "dimension_names": dims,
        "layout": layout,
        "content": _CONTENT.get(_byte(content, 0)) if content is not None else None,
        "normalization": normalization,
        "stats": stats,
        "associated_files": associated,
        "labels": labels,
    }
