"""Keras builders that re-express one Conv3D on folded rank-4 tensors ("dense", "sliced", "lean").

See :mod:`tfhsi.compress.lower` for the maths of each strategy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfhsi._keras import keras
from tfhsi.compress._lower_geometry import (
    AxisPlan,
    choose_strategy,
    conv_costs,
    dense_kernel,
    fold_batch_norm,
    lean_applies,
    lean_direct,
    lean_kernel,
    lean_plan,
    sliced_kernel,
)
from tfhsi.compress._lower_tensors import (
    Folded,
    LayerLowering,
    concat,
    exact,
    reshape,
    spectral_view,
    unfold_from_spectral,
)
from tfhsi.errors import UnsupportedError

layers = keras.layers


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
    chosen = choose_strategy(strategy, costs, lean_ok=lean_applies(kernel.shape, height, width))
    activation = keras.activations.serialize(layer.activation)
    if chosen != "lean":
        x = exact(x, f"{layer.name}__in")
    if chosen == "dense":
        out = _conv3d_dense(layer.name, x, kernel, bias, activation, height, width, depth)
        params_after, macs_after = costs.params_dense, costs.macs_dense
    elif chosen == "lean":
        out, params_after, macs_after = _conv3d_lean(
            layer.name, x, kernel, bias, activation, height, width, depth
        )
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
                tap = spectral_view(view, f"{name}__tap{i}_{j}_view")
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
    return unfold_from_spectral(y, height.out, width.out, f"{name}__fold")


def _takes_columns(x: Folded, height: AxisPlan, width: AxisPlan, depth: AxisPlan) -> bool:
    """A columns-layout input feeds the "lean" Conv2D as it is.

    True when no zero has to be inserted (no padding, and the valid outputs read valid
    depths only), the stride divides the column stride, and no space-to-depth view is needed.
    """
    return (
        x.stride > 0
        and not (height.pad_total or width.pad_total or depth.pad_before)
        and (depth.out - 1) * depth.stride + depth.span <= depth.size
        and x.stride % depth.stride == 0
        and lean_direct(height, depth)
    )


def _conv3d_lean(
    name: str,
    x: Folded,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    activation: Any,
    height: AxisPlan,
    width: AxisPlan,
    depth: AxisPlan,
) -> tuple[Folded, int, int]:
    """Column taps gathered by a one-hot DepthwiseConv2D, rows and depth by one Conv2D.

    The padded input ``(Hp, Wp, L*C)`` is viewed as ``(Hp, Wp*L, C)`` (column ``w*L + d``):
    a DepthwiseConv2D with kernel ``(1, kw)``, dilation ``L`` and one-hot weights (depth
    multiplier ``kw``) stacks the ``kw`` column taps on channels, ``(Hp, Wo*L, C*kw)``, in
    one op and without per-tap copies (a buffer ``kw`` times the input instead of
    ``kh*kw`` times). One Conv2D then sums the row taps, the spectral window and the
    channels on that very tensor (kernel ``(kh, kd)``, the spectral stride on the
    columns): its output is in columns layout with column stride ``L / s``, which the
    next "lean" Conv3D reads as it is (TFLite Micro's RESHAPE copies, so nothing big is
    reshaped). With both a spectral stride and a dilation (which Conv2D cannot combine)
    the buffer is viewed as ``(Hp*Wo, L/s, s*C*kw)`` instead (spectral space-to-depth)
    for a Conv2D with kernel ``(kh, ceil(span/s))`` and row dilation ``Wo``.

    Returns:
        The output, its weights (kernel, bias and the one-hot taps) and MACs per sample.
    """
    kh, kw, kd, c_in, c_out = kernel.shape
    wo = width.out
    if _takes_columns(x, height, width, depth):
        t, size_h, length = x.tensor, x.h, x.stride
    else:
        x = exact(x, f"{name}__in")
        plan = lean_plan(depth)
        t = x.tensor
        if height.pad_total or width.pad_total:
            pads = ((height.pad_before, height.pad_after), (width.pad_before, width.pad_after))
            t = layers.ZeroPadding2D(pads, name=f"{name}__pad")(t)
        if plan.before or plan.after:
            # channels_first 2-D padding pads the last two axes: (w, d*c); w is left alone.
            t = layers.ZeroPadding2D(
                ((0, 0), (plan.before * c_in, plan.after * c_in)),
                data_format="channels_first",
                name=f"{name}__depth_pad",
            )(t)
        size_h, size_w = height.size + height.pad_total, width.size + width.pad_total
        length = plan.groups * depth.stride
        t = reshape(t, (size_h, size_w * length, c_in), f"{name}__columns")
    params, macs = 0, 0
    if kw > 1:
        gather = layers.DepthwiseConv2D(
            (1, kw),
            dilation_rate=(1, length * width.dilation),
            depth_multiplier=kw,
            use_bias=False,
            trainable=False,
            name=f"{name}__taps",
        )
        t = gather(t)
        one_hot = np.zeros((1, kw, c_in, kw), dtype=kernel.dtype)
        for j in range(kw):
            one_hot[0, j, :, j] = 1.0
        gather.set_weights([one_hot])
        params += one_hot.size
        macs += int(np.prod(t.shape[1:])) * kw
    if not lean_direct(height, depth):
        plan = lean_plan(depth)
        rows = reshape(t, (size_h * wo, plan.groups, depth.stride * c_in * kw), f"{name}__view")
        conv = layers.Conv2D(
            c_out,
            (kh, plan.kernel),
            dilation_rate=(wo * height.dilation if kh > 1 else 1, 1),
            activation=activation,
            use_bias=bias is not None,
            name=name,
        )
        y = conv(rows)
        weights = lean_kernel(kernel, depth)
        conv.set_weights([weights] + ([] if bias is None else [bias]))
        params += weights.size + (0 if bias is None else bias.size)
        macs += int(np.prod(y.shape[1:3])) * weights.size
        if plan.extra:
            y = layers.Cropping2D(((0, 0), (0, plan.extra)), name=f"{name}__crop")(y)
        return unfold_from_spectral(y, height.out, wo, f"{name}__fold"), params, macs
    conv = layers.Conv2D(
        c_out,
        (kh, kd),
        strides=(1, depth.stride),
        dilation_rate=(height.dilation, depth.dilation),
        activation=activation,
        use_bias=bias is not None,
        name=name,
    )
    y = conv(t)  # (Ho, columns, C_out): output (w, d) at column w * (L / s) + d
    weights = kernel.transpose(0, 2, 3, 1, 4).reshape(kh, kd, c_in * kw, c_out)
    conv.set_weights([weights] + ([] if bias is None else [bias]))
    params += weights.size + (0 if bias is None else bias.size)
    macs += int(np.prod(y.shape[1:3])) * weights.size
    out_stride = length // depth.stride
    if wo == 1 and int(y.shape[2]) == depth.out:
        out_stride = 0  # one position and no spare column: already the folded tensor
        y = reshape(y, (height.out, 1, depth.out * c_out), f"{name}__fold")
    return Folded(y, height.out, wo, depth.out, c_out, out_stride), params, macs


def _bn_params(bn: Any) -> dict[str, Any]:
    return {
        "gamma": bn.gamma.numpy() if bn.scale else None,
        "beta": bn.beta.numpy() if bn.center else None,
        "mean": bn.moving_mean.numpy(),
        "variance": bn.moving_variance.numpy(),
        "epsilon": float(bn.epsilon),
    }
