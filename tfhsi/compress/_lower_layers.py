"""Keras builders that re-express one 3-D layer on folded rank-4 tensors.

See :mod:`tfhsi.compress.lower` for the folded layout and the maths. Every builder
takes a :class:`Folded` tensor and returns one, using only stock ``tf_keras`` layers
(Conv2D, Reshape, Cropping2D, ZeroPadding2D, MaxPooling2D, AveragePooling2D,
Concatenate, BatchNormalization, GlobalAverage/MaxPooling2D), so the lowered model
saves, loads and converts like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tfhsi._keras import keras
from tfhsi.compress._lower_geometry import (
    AxisPlan,
    choose_strategy,
    conv_costs,
    dense_kernel,
    fold_batch_norm,
    sliced_kernel,
)
from tfhsi.errors import UnsupportedError

#: TFLite Micro's CONCATENATION takes at most this many inputs; wider ones are nested.
MAX_CONCAT_INPUTS = 10

layers = keras.layers


@dataclass(frozen=True)
class Folded:
    """A 5-D ``(N, h, w, d, c)`` activation stored as the 4-D ``(N, h, w, d * c)`` tensor."""

    tensor: Any
    h: int
    w: int
    d: int
    c: int

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.h, self.w, self.d, self.c)


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


def _spectral_view(x: Folded, name: str) -> Any:
    """``(N, h * w, d, c)``: the spectral axis as the second 'spatial' axis of a 2-D op."""
    return reshape(x.tensor, (x.h * x.w, x.d, x.c), name)


def _unfold_from_spectral(y: Any, h: int, w: int, name: str) -> Folded:
    hw, d, c = (int(s) for s in y.shape[1:])
    assert hw == h * w, (hw, h, w)
    return Folded(reshape(y, (h, w, d * c), name), h, w, d, c)


def conv3d_plans(layer: Any, x: Folded) -> tuple[AxisPlan, AxisPlan, AxisPlan]:
    """The (height, width, depth) axis plans of a Conv3D on ``x``."""
    padding = layer.padding
    return tuple(  # type: ignore[return-value]
        AxisPlan(size, k, s, padding, dil)
        for size, k, s, dil in zip(
            (x.h, x.w, x.d), layer.kernel_size, layer.strides, layer.dilation_rate, strict=True
        )
    )


def check_conv3d(layer: Any, x: Folded) -> None:
    """Raises UnsupportedError for Conv3D configurations the lowering cannot express."""
    where = f"Conv3D layer {layer.name!r}"
    if isinstance(layer, layers.Conv3DTranspose):
        raise UnsupportedError(
            f"Conv3DTranspose layer {layer.name!r} cannot be lowered (only Conv3D, "
            "MaxPooling3D/AveragePooling3D and their global forms are); replace it by an "
            "upsampling + Conv3D block or keep the model in float."
        )
    if layer.data_format != "channels_last":
        raise UnsupportedError(
            f"{where} uses data_format={layer.data_format!r}; only 'channels_last' "
            "(batch, height, width, depth, channels) is supported. Rebuild the model channels_last."
        )
    if getattr(layer, "groups", 1) != 1:
        raise UnsupportedError(
            f"{where} has groups={layer.groups}; grouped 3-D convolutions are not supported. "
            "Use groups=1."
        )
    activation = keras.activations.serialize(layer.activation)
    if activation in ("softmax", "log_softmax"):
        raise UnsupportedError(
            f"{where} has activation={activation!r}, which normalises over the channel axis "
            "that the folded layout interleaves with depth; use a linear Conv3D and apply "
            "softmax after Flatten/Dense."
        )
    if x.c != layer.kernel.shape[3]:  # pragma: no cover - Keras would have failed first
        raise UnsupportedError(f"{where}: input channels {x.c} != kernel {layer.kernel.shape}")


def conv3d(
    layer: Any, x: Folded, *, strategy: str, batch_norm: Any | None = None
) -> tuple[Folded, LayerLowering]:
    """Lowers a Conv3D (and a BatchNormalization right after it) to Conv2D form."""
    check_conv3d(layer, x)
    height, width, depth = conv3d_plans(layer, x)
    kernel = layer.kernel.numpy()
    bias = layer.bias.numpy() if layer.use_bias else None
    params_before = kernel.size + (0 if bias is None else bias.size)
    if batch_norm is not None:
        params_before += sum(int(np.prod(v.shape)) for v in batch_norm.weights)
        kernel, bias = fold_batch_norm(kernel, bias, **_bn_params(batch_norm))
    costs = conv_costs(
        kernel_shape=kernel.shape,
        use_bias=bias is not None,
        height=height,
        width=width,
        depth=depth,
    )
    chosen = choose_strategy(strategy, costs)
    activation = keras.activations.serialize(layer.activation)
    if chosen == "dense":
        out = _conv3d_dense(layer.name, x, kernel, bias, activation, height, width, depth)
        params_after, macs_after = costs.params_dense, costs.macs_dense
    else:
        out = _conv3d_sliced(layer.name, x, kernel, bias, activation, height, width, depth)
        params_after, macs_after = costs.params_sliced, costs.macs_sliced
    report = LayerLowering(
        name=layer.name,
        kind=type(layer).__name__,
        strategy=chosen,
        conv2d_count=1,
        params_before=params_before,
        params_after=params_after,
        macs_before=costs.macs_before,
        macs_after=macs_after,
        folded_batch_norm=None if batch_norm is None else batch_norm.name,
    )
    return out, report


def _conv3d_dense(
    name: str,
    x: Folded,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    activation: Any,
    height: AxisPlan,
    width: AxisPlan,
    depth: AxisPlan,
) -> Folded:
    """One Conv2D on the folded tensor; spectral window, stride and padding live in the kernel."""
    c_out = kernel.shape[-1]
    conv = layers.Conv2D(
        depth.out * c_out,
        (kernel.shape[0], kernel.shape[1]),
        strides=(height.stride, width.stride),
        padding=height.padding,
        dilation_rate=(height.dilation, width.dilation),
        activation=activation,
        use_bias=bias is not None,
        name=name,
    )
    y = conv(x.tensor)
    weights = [dense_kernel(kernel, depth)]
    if bias is not None:
        weights.append(np.tile(bias, depth.out))
    conv.set_weights(weights)
    return Folded(y, height.out, width.out, depth.out, c_out)


def _conv3d_sliced(
    name: str,
    x: Folded,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    activation: Any,
    height: AxisPlan,
    width: AxisPlan,
    depth: AxisPlan,
) -> Folded:
    """Spatial taps as crops stacked tap-minor, then one ``(taps, kd)`` Conv2D, stride ``taps``."""
    kh, kw, kd, _, c_out = kernel.shape
    n_taps = kh * kw
    # Conv2D refuses dilation with strides > 1: a spectrally dilated kernel with several
    # spatial taps stacks the taps on channels instead (kernel (1, kd), stride 1).
    taps_on_channels = depth.dilation > 1 and n_taps > 1
    t = x.tensor
    if height.pad_total or width.pad_total:
        pads = ((height.pad_before, height.pad_after), (width.pad_before, width.pad_after))
        t = layers.ZeroPadding2D(pads, name=f"{name}__pad")(t)
    size_h, size_w = height.size + height.pad_total, width.size + width.pad_total
    reach_h = (height.out - 1) * height.stride + 1
    reach_w = (width.out - 1) * width.stride + 1
    taps = []
    for i in range(kh):
        for j in range(kw):
            top, left = i * height.dilation, j * width.dilation
            crop = ((top, size_h - top - reach_h), (left, size_w - left - reach_w))
            tap = t
            if any(any(pair) for pair in crop):
                tap = layers.Cropping2D(crop, name=f"{name}__tap{i}_{j}")(tap)
            if height.stride > 1 or width.stride > 1:
                tap = layers.MaxPooling2D(
                    1, strides=(height.stride, width.stride), name=f"{name}__tap{i}_{j}_stride"
                )(tap)
            if taps_on_channels:
                view = Folded(tap, height.out, width.out, x.d, x.c)
                tap = _spectral_view(view, f"{name}__tap{i}_{j}_view")
            taps.append(tap)
    positions = height.out * width.out
    if taps_on_channels:
        stacked = concat(taps, axis=-1, name=f"{name}__taps")
        conv_kernel, conv_strides = (1, kd), (1, depth.stride)
        weights = sliced_kernel(kernel)
    else:
        # (Ho, Wo, tap, d, c) in row-major order: the taps of one position are adjacent rows.
        stacked = concat(taps, axis=-1, name=f"{name}__taps")
        stacked = reshape(stacked, (positions * n_taps, x.d, x.c), f"{name}__view")
        conv_kernel, conv_strides = (n_taps, kd), (n_taps, depth.stride)
        weights = kernel.reshape(n_taps, kd, *kernel.shape[3:])
    conv = layers.Conv2D(
        c_out,
        conv_kernel,
        strides=conv_strides,
        padding=depth.padding,
        dilation_rate=(1, depth.dilation),
        activation=activation,
        use_bias=bias is not None,
        name=name,
    )
    y = conv(stacked)
    conv.set_weights([weights] + ([] if bias is None else [bias]))
    return _unfold_from_spectral(y, height.out, width.out, f"{name}__fold")


def _bn_params(bn: Any) -> dict[str, Any]:
    return {
        "gamma": bn.gamma.numpy() if bn.scale else None,
        "beta": bn.beta.numpy() if bn.center else None,
        "mean": bn.moving_mean.numpy(),
        "variance": bn.moving_variance.numpy(),
        "epsilon": float(bn.epsilon),
    }


def is_channel_batch_norm(layer: Any, rank: int) -> bool:
    """A BatchNormalization normalising the last axis of a rank-``rank`` tensor."""
    if not isinstance(layer, layers.BatchNormalization):
        return False
    axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    return [a % rank for a in axis] == [rank - 1]


def batch_norm(layer: Any, x: Folded) -> tuple[Folded, LayerLowering]:
    """Channel BatchNormalization on a folded tensor: the same BN, its vectors tiled ``d`` times."""
    if not is_channel_batch_norm(layer, 5):
        raise UnsupportedError(
            f"BatchNormalization layer {layer.name!r} normalises axis {layer.axis} of a 5-D "
            "tensor; only the channel axis (-1) can be lowered."
        )
    config = layer.get_config()
    config.update(axis=-1, name=layer.name)
    config.pop("renorm", None)
    new = layers.BatchNormalization.from_config(config)
    y = new(x.tensor)
    new.set_weights([np.tile(w, x.d) for w in layer.get_weights()])
    count = sum(int(np.prod(v.shape)) for v in layer.weights)
    report = LayerLowering(layer.name, "BatchNormalization", "reshape", 0, count, count * x.d, 0, 0)
    return Folded(y, x.h, x.w, x.d, x.c), report


def pooling3d(layer: Any, x: Folded) -> tuple[Folded, LayerLowering]:
    """Max/average 3-D pooling as a spatial 2-D pool, then a spectral 2-D pool on the (h*w, d) view.

    Both separate exactly: a max over a box is the max of the maxima, and TF's average
    pooling counts only real (unpadded) cells, a product set, so the mean of means is
    the mean.
    """
    name = layer.name
    if layer.data_format != "channels_last":
        raise UnsupportedError(
            f"{type(layer).__name__} layer {name!r} uses data_format={layer.data_format!r}; "
            "only 'channels_last' is supported."
        )
    pool2d = (
        layers.MaxPooling2D if isinstance(layer, layers.MaxPooling3D) else layers.AveragePooling2D
    )
    (ph, pw, pd), (sh, sw, sd) = layer.pool_size, layer.strides
    t, h, w = x.tensor, x.h, x.w
    if (ph, pw, sh, sw) != (1, 1, 1, 1):
        t = pool2d((ph, pw), strides=(sh, sw), padding=layer.padding, name=f"{name}__spatial")(t)
        h, w = int(t.shape[1]), int(t.shape[2])
    out = Folded(t, h, w, x.d, x.c)
    if (pd, sd) != (1, 1):
        view = _spectral_view(out, f"{name}__view")
        y = pool2d((1, pd), strides=(1, sd), padding=layer.padding, name=f"{name}__spectral")(view)
        out = _unfold_from_spectral(y, h, w, f"{name}__fold")
    report = LayerLowering(name, type(layer).__name__, "reshape", 0, 0, 0, 0, 0)
    return out, report


def global_pooling3d(layer: Any, x: Folded) -> tuple[Any, LayerLowering]:
    """GlobalAverage/MaxPooling3D as the 2-D global pool of the ``(h*w, d, c)`` view."""
    if layer.data_format != "channels_last":
        raise UnsupportedError(
            f"{type(layer).__name__} layer {layer.name!r} uses data_format="
            f"{layer.data_format!r}; only 'channels_last' is supported."
        )
    cls = (
        layers.GlobalMaxPooling2D
        if isinstance(layer, layers.GlobalMaxPooling3D)
        else layers.GlobalAveragePooling2D
    )
    view = _spectral_view(x, f"{layer.name}__view")
    y = cls(keepdims=layer.keepdims, name=layer.name)(view)
    report = LayerLowering(layer.name, type(layer).__name__, "reshape", 0, 0, 0, 0, 0)
    if layer.keepdims:
        return Folded(y, 1, 1, 1, x.c), report
    return y, report


def zero_padding3d(layer: Any, x: Folded) -> Folded:
    """ZeroPadding3D: spatial padding, then the spectral one as channel padding (d*c axis)."""
    if layer.data_format != "channels_last":
        raise UnsupportedError(f"ZeroPadding3D layer {layer.name!r} must be channels_last.")
    (top, bottom), (left, right), (front, back) = layer.padding
    t = x.tensor
    if top or bottom or left or right:
        t = layers.ZeroPadding2D(((top, bottom), (left, right)), name=f"{layer.name}__spatial")(t)
    if front or back:
        # channels_first 2-D padding pads the last two axes: (w, d*c); w is left alone.
        t = layers.ZeroPadding2D(
            ((0, 0), (front * x.c, back * x.c)),
            data_format="channels_first",
            name=f"{layer.name}__spectral",
        )(t)
    return Folded(t, x.h + top + bottom, x.w + left + right, x.d + front + back, x.c)


def cropping3d(layer: Any, x: Folded) -> Folded:
    """Cropping3D: spatial crop, then the spectral one as a channel crop (d*c axis)."""
    if layer.data_format != "channels_last":
        raise UnsupportedError(f"Cropping3D layer {layer.name!r} must be channels_last.")
    (top, bottom), (left, right), (front, back) = layer.cropping
    t = x.tensor
    if top or bottom or left or right:
        t = layers.Cropping2D(((top, bottom), (left, right)), name=f"{layer.name}__spatial")(t)
    if front or back:
        t = layers.Cropping2D(
            ((0, 0), (front * x.c, back * x.c)),
            data_format="channels_first",
            name=f"{layer.name}__spectral",
        )(t)
    return Folded(t, x.h - top - bottom, x.w - left - right, x.d - front - back, x.c)
