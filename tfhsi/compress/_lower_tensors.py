"""The tensors of a lowered graph: the folded and columns layouts, and small Keras helpers.

See :mod:`tfhsi.compress.lower` for the layouts. Stock ``tf_keras`` layers only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tfhsi._keras import keras

#: TFLite Micro's CONCATENATION takes at most this many inputs; wider ones are nested.
MAX_CONCAT_INPUTS = 10

layers = keras.layers


@dataclass(frozen=True)
class Folded:
    """A 5-D ``(N, h, w, d, c)`` activation held as a 4-D tensor.

    ``stride == 0``: the folded tensor ``(N, h, w, d * c)``. ``stride > 0``: the "columns"
    layout a "lean" Conv2D writes, ``(N, h, q, c)`` with element ``(h, w, d, c)`` at
    column ``w * stride + d``; the ``stride - d`` columns after each ``w`` hold finite
    values no valid output reads (the last ones may be missing). :func:`exact` turns it
    into the folded tensor; element-wise layers and the next "lean" Conv3D take it as is.
    """

    tensor: Any
    h: int
    w: int
    d: int
    c: int
    stride: int = 0

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.h, self.w, self.d, self.c)


def exact(x: Folded, name: str) -> Folded:
    """``x`` as the folded ``(N, h, w, d * c)`` tensor (a no-op unless in columns layout)."""
    if not x.stride:
        return x
    t = x.tensor
    short = x.w * x.stride - int(t.shape[2])
    if short:
        t = layers.ZeroPadding2D(((0, 0), (0, short)), name=f"{name}__fill")(t)
    t = reshape(t, (x.h, x.w, x.stride * x.c), f"{name}__fold")
    if x.stride > x.d:
        # channels_first 2-D cropping crops the last two axes: (w, d*c); w is left alone.
        t = layers.Cropping2D(
            ((0, 0), (0, (x.stride - x.d) * x.c)),
            data_format="channels_first",
            name=f"{name}__crop",
        )(t)
    return Folded(t, x.h, x.w, x.d, x.c)


@dataclass(frozen=True)
class LayerLowering:
    """How one 3-D layer was lowered.

    Attributes:
        name: The original layer's name (the lowered Conv2D keeps it).
        kind: The original layer's class, e.g. ``"Conv3D"``.
        strategy: ``"dense"``, ``"sliced"`` or ``"reshape"`` (pooling, BN, padding ...).
        conv2d_count: Conv2D layers it became.
        params_before / params_after: Weights before and after (a folded batch norm's
            parameters count as before).
        macs_before / macs_after: Multiply-accumulates per sample.
        folded_batch_norm: Name of the BatchNormalization folded into the kernel, if any.
    """

    name: str
    kind: str
    strategy: str
    conv2d_count: int
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    folded_batch_norm: str | None = None


def concat(tensors: list[Any], *, axis: int, name: str, _level: int = 0) -> Any:
    """Concatenates in groups of at most :data:`MAX_CONCAT_INPUTS` (nested; order kept)."""
    if len(tensors) == 1:
        return tensors[0]
    if len(tensors) <= MAX_CONCAT_INPUTS:
        return layers.Concatenate(axis=axis, name=name)(tensors)
    parts = [
        concat(tensors[i : i + MAX_CONCAT_INPUTS], axis=axis, name=f"{name}_l{_level}_{k}")
        for k, i in enumerate(range(0, len(tensors), MAX_CONCAT_INPUTS))
    ]
    return concat(parts, axis=axis, name=name, _level=_level + 1)


def reshape(x: Any, shape: tuple[int, ...], name: str) -> Any:
    """``Reshape(shape)`` unless ``x`` already has that shape."""
    if tuple(x.shape[1:]) == shape:
        return x
    return layers.Reshape(shape, name=name)(x)


def spectral_view(x: Folded, name: str) -> Any:
    """``(N, h * w, d, c)``: the spectral axis as the second 'spatial' axis of a 2-D op."""
    return reshape(x.tensor, (x.h * x.w, x.d, x.c), name)


def unfold_from_spectral(y: Any, h: int, w: int, name: str) -> Folded:
    hw, d, c = (int(s) for s in y.shape[1:])
    assert hw == h * w, (hw, h, w)
    return Folded(reshape(y, (h, w, d * c), name), h, w, d, c)
