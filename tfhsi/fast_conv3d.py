"""Conv3D computed as one Conv2D over its spatial taps: the same layer, on faster CPU kernels.

TensorFlow's CPU Conv3D kernels (and their gradients) are slow for the small filters and
patches of hyperspectral CNNs: the 3-D student trains at about 105 samples/s on 2 cores, and
at about 2,200 with the same arithmetic as a Conv2D (docs/PERFORMANCE.md,
``tools/bench_train_step.py``). :func:`conv3d_as_conv2d` returns a model that computes every
Conv3D ``y[h, w, d, o] = b[o] + Σ K[i, j, t, c, o] · x[h·sh + i·dh, w·sw + j·dw, d·sd + t, c]``
this way:

* the ``T = kh·kw`` spatial taps are strided crops of the (padded) input, stacked as
  ``(N, Ho, Wo, T, D, C)`` and viewed as ``(N, Ho·Wo·T, D, C)``;
* one Conv2D with kernel ``(T, kd)`` — the Conv3D's own kernel variable, reshaped — and
  strides ``(T, sd)`` sums taps, spectral window and channels (the spectral axis keeps the
  layer's padding; the row axis, whose kernel equals its stride, pads nothing);
* a reshape gives back ``(N, Ho, Wo, D_out, C_out)``.

Only the Conv3D layers change: every other layer (BatchNormalization, Dropout, Dense, ...) is
the original layer object, and each substitute reads the original Conv3D's variables, so
training the returned model trains the given one (nothing to copy back) with the same
function, gradients and initial weights (up to float rounding). The Conv3D-to-Conv2D rewrite
for export, which changes the tensors' layout for TFLite, is :mod:`tfhsi.compress.lower`.
"""

from __future__ import annotations

from typing import Any

from tfhsi._keras import keras, tf
from tfhsi.conv_axes import AxisPlan


class Conv3DAsConv2D(keras.layers.Layer):
    """Computes ``conv`` (a built ``Conv3D``) with crops and one Conv2D; holds no weights of
    its own (it tracks ``conv``, whose kernel and bias it reads)."""

    def __init__(self, conv: keras.layers.Conv3D, **kwargs: Any) -> None:
        super().__init__(name=f"{conv.name}_as_conv2d", **kwargs)
        self.conv = conv

    def call(self, x: tf.Tensor) -> tf.Tensor:
        conv = self.conv
        (kh, kw, kd), (sh, sw, sd) = conv.kernel_size, conv.strides
        dh, dw, _ = conv.dilation_rate
        _, height, width, depth, channels = x.shape
        rows_axis = AxisPlan(height, kh, sh, conv.padding, dh)
        cols_axis = AxisPlan(width, kw, sw, conv.padding, dw)
        ho, top, bottom = rows_axis.out, rows_axis.pad_before, rows_axis.pad_after
        wo, left, right = cols_axis.out, cols_axis.pad_before, cols_axis.pad_after
        if top or bottom or left or right:
            x = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0], [0, 0]])
        taps = [
            x[:, i * dh : i * dh + (ho - 1) * sh + 1 : sh, j * dw : j * dw + (wo - 1) * sw + 1 : sw]
            for i in range(kh)
            for j in range(kw)
        ]
        rows = tf.stack(taps, axis=3) if len(taps) > 1 else taps[0]
        rows = tf.reshape(rows, (-1, ho * wo * len(taps), depth, channels))
        kernel = tf.reshape(conv.kernel, (len(taps), kd, channels, conv.filters))
        y = tf.nn.conv2d(rows, kernel, strides=(1, len(taps), sd, 1), padding=conv.padding.upper())
        y = tf.reshape(y, (-1, ho, wo, y.shape[2], conv.filters))
        if conv.use_bias:
            y = tf.nn.bias_add(y, conv.bias)
        return conv.activation(y)


def _substitutable(layer: Any) -> bool:
    """A plain channels-last Conv3D with static input sizes and no spectral dilation (which
    TensorFlow's CPU Conv2D gradient does not take); spatial dilation is in the crops."""
    if type(layer) is not keras.layers.Conv3D or not layer.built:
        return False
    try:
        shape = layer.input_shape
    except AttributeError:  # called on inputs of different shapes
        return False
    if not isinstance(shape, tuple) or any(s is None for s in shape[1:4]):
        return False
    return (
        layer.data_format == "channels_last" and layer.groups == 1 and layer.dilation_rate[2] == 1
    )


def conv3d_as_conv2d(model: keras.Model) -> keras.Model:
    """``model`` with each Conv3D computed by :class:`Conv3DAsConv2D`, sharing every variable
    with ``model``; ``model`` itself when nothing changes (no such Conv3D, a subclassed model,
    or layers wrapped by TF-MOT, whose wrappers must see the layers they wrap)."""
    graph = isinstance(model, keras.Sequential) or getattr(model, "_is_graph_network", False)
    layers = model.layers if graph else []
    if not any(_substitutable(layer) for layer in layers) or any(
        isinstance(layer, keras.layers.Wrapper) for layer in layers
    ):
        return model

    def substitute(layer: Any) -> Any:
        return Conv3DAsConv2D(layer) if _substitutable(layer) else layer

    fast = keras.models.clone_model(model, clone_function=substitute)
    fast._name = model.name  # logs and checkpoints name the user's model
    return fast
