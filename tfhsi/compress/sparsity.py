"""Measuring what compression achieved: zeros in the kernels, raw and gzip sizes.

Measured from the weights themselves (NumPy), never taken from a schedule or config.
Needs no TensorFlow import: it reads the model object it is given.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfhsi.errors import ConfigError

#: Kernel attributes of weighted layers (biases, BN and masks are not kernels).
_KERNEL_ATTRS = ("kernel", "depthwise_kernel", "pointwise_kernel")


@dataclass(frozen=True)
class KernelSparsity:
    """Zeros in one kernel."""

    layer: str
    weight: str
    shape: tuple[int, ...]
    zeros: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def sparsity(self) -> float:
        return self.zeros / self.size if self.size else 0.0


@dataclass(frozen=True)
class SparsityReport:
    """Per-kernel zeros and their total over the measured kernels."""

    kernels: tuple[KernelSparsity, ...]

    @property
    def zeros(self) -> int:
        return sum(k.zeros for k in self.kernels)

    @property
    def size(self) -> int:
        return sum(k.size for k in self.kernels)

    @property
    def sparsity(self) -> float:
        """Zeros over all measured kernel weights (0 when nothing was measured)."""
        return self.zeros / self.size if self.size else 0.0

    def layer(self, name: str) -> float:
        """Sparsity of the kernels of layer ``name``."""
        kernels = [k for k in self.kernels if k.layer == name]
        if not kernels:
            raise ConfigError(
                f"no kernel of layer {name!r} was measured; measured: "
                f"{', '.join(sorted({k.layer for k in self.kernels}))}."
            )
        return sum(k.zeros for k in kernels) / sum(k.size for k in kernels)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for a run record."""
        return {
            "sparsity": self.sparsity,
            "zeros": self.zeros,
            "size": self.size,
            "kernels": [
                {
                    "layer": k.layer,
                    "weight": k.weight,
                    "shape": list(k.shape),
                    "zeros": k.zeros,
                    "sparsity": k.sparsity,
                }
                for k in self.kernels
            ],
        }


def _kernels(layer: Any) -> list[tuple[str, str, np.ndarray]]:
    inner = getattr(layer, "layer", None)  # a wrapper (TF-MOT pruning, QAT) holds the layer
    if inner is not None and hasattr(inner, "weights"):
        layer = inner
    found = []
    for attr in _KERNEL_ATTRS:
        weight = getattr(layer, attr, None)
        if weight is not None and hasattr(weight, "numpy"):
            found.append((layer.name, attr, np.asarray(weight.numpy())))
    return found


def measure_sparsity(model: Any, *, layers: Iterable[str] | None = None) -> SparsityReport:
    """Counts exact zeros in the kernels of ``model`` (wrapped or stripped).

    Args:
        model: A tf_keras model; wrapper layers are measured by their inner layer's name.
        layers: Names of the layers to measure (e.g. ``plan_pruning(...)`` keys, so the
            total covers the pruned kernels only); ``None`` = every layer with a kernel.

    Raises:
        ConfigError: a name in ``layers`` is not a layer with a kernel.
    """
    found = [k for layer in model.layers for k in _kernels(layer)]
    if layers is not None:
        wanted = list(layers)
        known = {name for name, _, _ in found}
        missing = [name for name in wanted if name not in known]
        if missing:
            raise ConfigError(
                f"cannot measure sparsity of {', '.join(map(repr, missing))}: not a layer with a "
                f"kernel in {model.name!r} (layers with kernels: {', '.join(sorted(known))})."
            )
        found = [k for k in found if k[0] in set(wanted)]
    return SparsityReport(
        kernels=tuple(
            KernelSparsity(
                layer=name,
                weight=attr,
                shape=tuple(int(d) for d in value.shape),
                zeros=int(value.size - np.count_nonzero(value)),
            )
            for name, attr, value in found
        )
    )


def model_sizes(data: bytes) -> dict[str, int]:
    """Raw and gzip (level 9) size in bytes of a serialised model (e.g. a .tflite)."""
    return {"raw": len(data), "gzip": len(gzip.compress(bytes(data), compresslevel=9, mtime=0))}
