"""Reading a ``.tflite`` file (or bytes) and checking it is one — shared by audit and profiling.

No TensorFlow or LiteRT import: a file that is not a TFLite flatbuffer is refused with the
likely cause (a Keras ``.h5``/``.keras`` file, a SavedModel folder, an empty file) and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

from tfhsi.errors import DataFormatError, ModelFileNotFoundError

ModelSource = bytes | bytearray | memoryview | str | os.PathLike[str]

TFLITE_IDENTIFIER = b"TFL3"
HOW_TO_EXPORT = (
    "export the trained model with `tfhsi export tflite RUN_DIR --preset int8` (recipe runs "
    "write .tflite files too) and pass the .tflite file"
)


def not_tflite_reason(content: bytes) -> str:
    """Why ``content`` is not a TFLite flatbuffer, in words."""
    if not content:
        return "the file is empty"
    if content[:4] == b"\x89HDF":
        return "it is an HDF5 file, e.g. a Keras .h5 model"
    if content[:4] == b"PK\x03\x04":
        return "it is a zip archive, e.g. a Keras .keras model"
    return f"no {TFLITE_IDENTIFIER.decode()!r} flatbuffer identifier at bytes 4..8"


def read_tflite(model: ModelSource) -> tuple[str, bytes]:
    """``(source name, content)`` of a TFLite model given as bytes or a path, checked.

    Raises:
        ModelFileNotFoundError: the path does not exist.
        DataFormatError: a directory, or content without the ``TFL3`` identifier.
    """
    if isinstance(model, bytes | bytearray | memoryview):
        source, content = "<bytes>", bytes(model)
    else:
        path = Path(model)
        source = str(path)
        if path.is_dir():
            raise DataFormatError(
                f"{path} is a directory (a SavedModel?), not a TFLite model; {HOW_TO_EXPORT}."
            )
        if not path.is_file():
            raise ModelFileNotFoundError(
                f"TFLite model {path} does not exist; check the path, or {HOW_TO_EXPORT}."
            )
        content = path.read_bytes()
    if len(content) < 8 or content[4:8] != TFLITE_IDENTIFIER:
        raise DataFormatError(
            f"{source} is not a TFLite model ({not_tflite_reason(content)}); {HOW_TO_EXPORT}."
        )
    return source, content
