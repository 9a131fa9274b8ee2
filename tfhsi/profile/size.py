"""Size of a model file as stored and as shipped compressed: raw bytes and gzip -9 bytes.

The gzip figure shows what pruning and clustering buy: zeros and repeated weights do not
shrink the raw flatbuffer, but they compress.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from tfhsi.errors import ModelFileNotFoundError

__all__ = ["ModelSize", "model_bytes", "model_size"]


@dataclass(frozen=True)
class ModelSize:
    """Bytes of a model file.

    Attributes:
        raw_bytes: File size.
        gzip_bytes: Size after ``gzip`` at level 9 (no file name, mtime 0: reproducible).
    """

    raw_bytes: int
    gzip_bytes: int

    @property
    def gzip_ratio(self) -> float:
        """``raw / gzip``: 1.0 means gzip found nothing to squeeze."""
        return self.raw_bytes / self.gzip_bytes if self.gzip_bytes else float("nan")

    def to_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "gzip_ratio": round(self.gzip_ratio, 3)}


def model_bytes(model: bytes | bytearray | memoryview | str | os.PathLike[str]) -> bytes:
    """The content of a model given as bytes or as a path.

    Raises:
        ModelFileNotFoundError: if the path is not a file.
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    path = Path(model)
    if not path.is_file():
        raise ModelFileNotFoundError(
            f"model file {path} does not exist; pass the path of a .tflite file "
            "(e.g. one written by `tfhsi export`)"
        )
    return path.read_bytes()


def model_size(model: bytes | bytearray | memoryview | str | os.PathLike[str]) -> ModelSize:
    """Raw and gzip (level 9) bytes of a model file or its content."""
    content = model_bytes(model)
    return ModelSize(len(content), len(gzip.compress(content, compresslevel=9, mtime=0)))
