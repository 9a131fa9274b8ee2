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

import importlib
from typing import Any

# Looked up on first access, so importing one light module (e.g. the preset table) does not
# load the flatbuffer audit.
_EXPORTS = {
    "TARGETS": "targets",
    "ConversionError": "tflite",
    "FloatIsland": "precision",
    "InputInfo": "metadata",
    "Normalization": "metadata",
    "OutputInfo": "metadata",
    "add_metadata": "metadata",
    "read_metadata": "metadata",
    "ModelAudit": "inspect",
    "OpInfo": "graph",
    "PRESETS": "presets",
    "Preset": "presets",
    "SmokeResult": "inspect",
    "TensorInfo": "graph",
    "Verdict": "targets",
    "audit": "inspect",
    "c_array_sources": "c_array",
    "convert": "tflite",
    "labels_path": "tflite",
    "tflm_smoke_test": "inspect",
    "write_c_array": "c_array",
    "write_tflite": "tflite",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tfhsi.export' has no attribute {name!r}", name=name)
    value = getattr(importlib.import_module(f"tfhsi.export.{module}"), name)
    globals()[name] = value
    return value
