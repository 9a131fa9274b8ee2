"""Conv3D lowering: a trained 3-D CNN rewritten as an equivalent graph of rank-4 ops.

TFLite Micro has no CONV_3D kernel, and the TFLite converter's "full int8" leaves
CONV_3D in float. :func:`lower_conv3d` rebuilds a ``tf_keras`` model so that every
tensor has rank <= 4 and every 3-D layer is made of CONV_2D, DEPTHWISE_CONV_2D, RESHAPE,
STRIDED_SLICE, PAD, CONCATENATION (<= 10 inputs, nested when wider), MAX/AVERAGE_POOL_2D
and MEAN,
with the trained weights carried over. The result is numerically the same model in
float (a few 1e-6 of float rounding) and quantises to int8 end to end with ordinary
PTQ or QAT.

The folded layout
    A 5-D activation ``(N, H, W, D, C)`` (Keras Conv3D, channels_last: height, width,
    spectral depth, channels) is held as the 4-D tensor ``(N, H, W, D*C)`` with element
    ``(h, w, d, c)`` at channel ``d*C + c``. That is the row-major reshape, so Flatten,
    Dense and Reshape (e.g. HybridSN's ``(h, w, d, c) -> (h, w, d*c)``) see the very
    same numbers, and a ``(k, k, B, 1)`` patch becomes the ``(k, k, B)`` patch of a 2-D
    model (``lowered_input_layout = "2d"``): feed ``x5[..., 0]``.

Conv3D, kernel ``(kh, kw, kd)``, strides ``(sh, sw, sd)``, ``C_in -> C_out``
    ``y[h, w, d, o] = b[o] + sum_{i,j,t,c} K[i,j,t,c,o] x[h*sh+i-ph, w*sw+j-pw, d*sd+t-pd, c]``
    with TF's per-axis "same"/"valid" padding ``(ph, pw, pd)``; every axis pads on its
    own, which is what lets the axes be separated.

    * ``"dense"``: one CONV_2D on the folded tensor with the banded kernel
      ``K2[i, j, d_in*C_in + c, d_out*C_out + o] = K[i, j, d_in - (d_out*sd - pd), c, o]``
      (zero where the tap falls outside ``0..kd-1`` or into the spectral padding, which
      contributes zeros anyway) and the bias tiled ``D_out`` times; spatial stride,
      padding and dilation stay on the Conv2D. One op, but ``D_in*D_out/kd`` times the
      weights and MACs, most of them zeros.
    * ``"sliced"``: the ``T = kh*kw`` spatial taps become crops ``x[i::sh, j::sw]``
      (Cropping2D, a 1x1 MaxPooling2D for strides, after ZeroPadding2D for "same"),
      concatenated on channels to ``(N, Ho, Wo, T*D*C_in)``, i.e. ``(ho, wo, tap, d, c)``
      in row-major order, and viewed as ``(N, Ho*Wo*T, D, C_in)``: the ``T`` taps of one
      output position are ``T`` adjacent rows. One CONV_2D with kernel ``(T, kd)``,
      strides ``(T, sd)`` and ``K'[i*kw + j, t, c, o] = K[i, j, t, c, o]`` sums over taps,
      spectral window and channels (the layer's padding pads nothing on the row axis,
      where kernel and stride are equal), and a RESHAPE folds ``(Ho*Wo, D_out, C_out)``
      back to ``(Ho, Wo, D_out*C_out)``. Exactly the Conv3D's weights and MACs; costs
      ``T`` slices and an im2col buffer ``T`` times the (cropped) input. (With spectral
      dilation, which Conv2D cannot combine with a stride, the taps are stacked on
      channels instead: kernel ``(1, kd)`` over ``(N, Ho*Wo, D, T*C_in)``.)
    * ``"lean"`` (spatial stride 1, several spatial taps; "sliced" elsewhere): the
      spectral axis is padded to ``L`` positions and the tensor viewed as
      ``(N, Hp, Wp*L, C_in)`` (column ``w*L + d``). One DepthwiseConv2D with kernel
      ``(1, kw)``, dilation ``(1, L)``, depth multiplier ``kw`` and one-hot weights stacks
      the column taps on channels, ``(N, Hp, Wo*L, C_in*kw)``; one CONV_2D with kernel
      ``(kh, kd)``, strides ``(1, sd)`` and ``K'[i, t, c*kw + j, o] = K[i, j, t, c, o]``
      sums rows, spectral window and channels on that tensor. Its output stays in this
      *columns* layout (``(N, Ho, q, C_out)``, output ``(w, d)`` at column
      ``w*L/sd + d``; the columns past ``D_out`` in each ``w`` straddle two pixels and
      are never read by a valid output), which the next "lean" Conv3D (valid padding,
      ``sd`` dividing ``L/sd``) and element-wise layers take as they are; any other
      layer gets the folded tensor back (PAD, RESHAPE, STRIDED_SLICE on the small
      output). The buffer is ``kw`` times the input instead of ``kh*kw`` times, and no
      big tensor is reshaped (TFLite Micro's RESHAPE is a copy). The Conv3D's kernel,
      plus ``kw*C_in*kw`` one-hot weights; a few % more MACs (the depthwise gather and
      the straddling columns). With a spectral stride *and* a dilation (which Conv2D
      cannot combine) it uses the spectral space-to-depth view
      ``(N, Hp*Wo, L/sd, sd*C_in*kw)``, kernel ``(kh, ceil(span/sd))``, row dilation ``Wo``.
    * ``"auto"`` (per layer) takes "dense" while its weights are at most 1.5x the
      Conv3D's (the spectral kernel spans nearly the whole depth), else "lean" where it
      applies, else "sliced" (one spatial tap: a RESHAPE and one CONV_2D, no copies).

    A BatchNormalization on the channel axis that is the Conv3D's only consumer is
    folded into its kernel and bias (inference statistics); any other one becomes the
    same BatchNormalization on the folded tensor with its four vectors tiled ``D`` times.
    Bias and activation are carried over.

Pooling3D
    Max and average pooling separate exactly: a spatial 2-D pool on the folded tensor,
    then a ``(1, pd)`` 2-D pool on the ``(N, H*W, D, C)`` view. Global 3-D pooling is
    the 2-D global pool of that view. ZeroPadding3D / Cropping3D pad or crop the
    spatial axes, and the spectral axis as ``[d0*C, d1*C]`` of the channels.

Layout-free layers (activations, Dropout, Add/Multiply/... of equal shapes) apply as
they are; Concatenate along the depth axis is a channel concatenation. Layers that
see no 5-D tensor are copied with their weights. Anything else that receives a 5-D
tensor raises :class:`~tfhsi.errors.UnsupportedError` naming the layer and the reason.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tfhsi._keras import keras
from tfhsi.compress._lower_graph import GraphLowering, count_params
from tfhsi.compress._lower_layers import LayerLowering
from tfhsi.errors import ConfigError, TfhsiError
from tfhsi.keras_checks import require_functional, require_rebuildable

__all__ = [
    "STRATEGIES",
    "LayerLowering",
    "LoweringMismatchError",
    "LoweringReport",
    "check_equivalence",
    "lower_conv3d",
    "lowered_input",
]

STRATEGIES = ("auto", "dense", "lean", "sliced")
_CHECK_BATCH = 256


class LoweringMismatchError(TfhsiError):
    """The lowered model's outputs differ from the original's beyond the tolerance."""


@dataclass
class LoweringReport:
    """What :func:`lower_conv3d` did.

    Attributes:
        layers: One entry per lowered 3-D layer, in graph order.
        strategy: The strategy that was asked for.
        lowered_input_layout: ``"2d"``: a ``(k, k, B, 1)`` input became ``(k, k, B)``
            (more generally ``(H, W, D, C)`` became ``(H, W, D*C)``).
        params_before / params_after: Weights of the whole model.
        max_abs_diff: Set by :func:`check_equivalence` (or ``lower_conv3d(check=...)``).
    """

    layers: list[LayerLowering] = field(default_factory=list)
    strategy: str = "auto"
    lowered_input_layout: str = "2d"
    params_before: int = 0
    params_after: int = 0
    max_abs_diff: float | None = None

    @property
    def conv2d_count(self) -> int:
        """Conv2D layers the 3-D layers became."""
        return sum(entry.conv2d_count for entry in self.layers)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (for run records)."""
        return dataclasses.asdict(self)


def lowered_input(x5: np.ndarray) -> np.ndarray:
    """The lowered model's input for 5-D patches ``(N, H, W, D, C)``: ``(N, H, W, D*C)``."""
    x5 = np.asarray(x5)
    if x5.ndim != 5:
        raise ConfigError(
            f"expected 5-D patches (N, height, width, bands, channels), got shape {x5.shape}."
        )
    return x5.reshape(*x5.shape[:3], -1)


def has_conv3d(model: keras.Model) -> bool:
    """True when ``model`` has a Conv3D layer (what lowering rewrites)."""
    return any(isinstance(layer, keras.layers.Conv3D) for layer in model.layers)


def lower_conv3d(
    model: keras.Model,
    *,
    strategy: str = "auto",
    check: np.ndarray | None = None,
    atol: float = 1e-4,
) -> tuple[keras.Model, LoweringReport]:
    """Rewrites a model's 3-D layers as an equivalent graph of rank <= 4 tensors.

    Args:
        model: A functional (or Sequential) ``tf_keras`` model with static shapes,
            e.g. ``build_model("student3d", ...)`` after training. It is not modified.
        strategy: ``"auto"``, ``"dense"``, ``"lean"`` or ``"sliced"`` (see the module
            docstring).
        check: Optional 5-D patches ``(N, H, W, D, C)``; when given, the two models are
            compared on them and the report's ``max_abs_diff`` is set.
        atol: Tolerance for ``check``.

    Returns:
        ``(lowered, report)``: a new functional model with no Conv3D/Pooling3D and no
        tensor of rank > 4 whose output equals ``model``'s for inputs
        ``lowered_input(x5)`` (``x5[..., 0]`` for single-channel patches), and what was
        done per layer.

    Raises:
        ConfigError: unknown ``strategy``.
        UnsupportedError: a layer or configuration that cannot be lowered, named.
        LoweringMismatchError: ``check`` was given and the outputs differ by more
            than ``atol``.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"unknown lowering strategy {strategy!r}; valid: {', '.join(STRATEGIES)}."
        )
    require_functional(model, what="lower_conv3d", allow_nested=True)
    require_rebuildable(model, what="lower_conv3d")
    lowered, entries = GraphLowering(model, strategy).run()
    report = LoweringReport(
        layers=entries,
        strategy=strategy,
        params_before=count_params(model),
        params_after=count_params(lowered),
    )
    if check is not None:
        check_equivalence(model, lowered, check, atol=atol, report=report)
    return lowered, report


def check_equivalence(
    original: keras.Model,
    lowered: keras.Model,
    x5: np.ndarray,
    *,
    atol: float = 1e-4,
    report: LoweringReport | None = None,
) -> float:
    """Largest absolute output difference of ``lowered(lowered_input(x5))`` vs ``original(x5)``.

    ``x5`` is what ``original`` takes: 5-D patches for a 3-D model (folded for the
    lowered one), or the original's own input when it is not 5-D.

    Raises:
        LoweringMismatchError: the difference exceeds ``atol``.
    """
    x5 = np.asarray(x5, dtype=np.float32)
    x = lowered_input(x5) if len(original.inputs[0].shape) == 5 else x5
    diff = 0.0
    for start in range(0, len(x5), _CHECK_BATCH):
        expected = original(x5[start : start + _CHECK_BATCH], training=False).numpy()
        got = lowered(x[start : start + _CHECK_BATCH], training=False).numpy()
        diff = max(diff, float(np.max(np.abs(expected - got))) if expected.size else 0.0)
    if report is not None:
        report.max_abs_diff = diff
    if not diff <= atol:
        raise LoweringMismatchError(
            f"the lowered {original.name!r} differs from the original by {diff:.3g} "
            f"(> atol {atol:g}) on {len(x5)} patches; this is a bug in the lowering - "
            "please report it with the model's summary()."
        )
    return diff
