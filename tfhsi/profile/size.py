"""Size of a model file as stored and as shipped compressed: raw bytes and gzip -9 bytes.

The gzip figure shows what pruning and clustering buy: zeros and repeated weights do not
shrink the raw flatbuffer, but they compress.
"""

from __future__ import annotations

import gzip
from dataclasses import asdict, dataclass

from tfhsi.tflite_file import ModelSource, read_tflite

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


def model_bytes(model: ModelSource) -> bytes:
    """The content of a TFLite model given as bytes or a path, checked to be one."""
    return read_tflite(model)[1]


def model_size(model: ModelSource) -> ModelSize:
    """Raw and gzip (level 9) bytes of a model file or its content."""
    content = model_bytes(model)
    return ModelSize(len(content), len(gzip.compress(content, compresslevel=9, mtime=0)))
