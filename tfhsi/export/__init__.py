"""Export: Keras → TFLite presets, C arrays for firmware, and the op-level audit.

Importing this package does not import TensorFlow; :func:`convert` does. The audit
reads the flatbuffer with LiteRT's bundled schema only.

Example:
    >>> from tfhsi.export import audit, convert, write_tflite
    >>> data = convert(model, "int8", representative=prepared.representative(  # doctest: +SKIP
    ...     patch_size=9, layout="2d"))
    >>> write_tflite(data, "out/model.tflite", class_names=scene.class_names)  # doctest: +SKIP
    >>> audit(data).is_full_int8  # doctest: +SKIP
    True
"""

from __future__ import annotations

from tfhsi.export.c_array import c_array_sources, write_c_array
from tfhsi.export.graph import OpInfo, TensorInfo
from tfhsi.export.inspect import ModelAudit, SmokeResult, audit, tflm_smoke_test
from tfhsi.export.precision import FloatIsland
from tfhsi.export.targets import TARGETS, Verdict
from tfhsi.export.tflite import ConversionError, Preset, convert, labels_path, write_tflite

__all__ = [
    "TARGETS",
    "ConversionError",
    "FloatIsland",
    "ModelAudit",
    "OpInfo",
    "Preset",
    "SmokeResult",
    "TensorInfo",
    "Verdict",
    "audit",
    "c_array_sources",
    "convert",
    "labels_path",
    "tflm_smoke_test",
    "write_c_array",
    "write_tflite",
]
