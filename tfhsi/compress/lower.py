"""Conv3D lowering: a trained 3-D CNN rewritten as an equivalent graph of rank-4 ops.

TFLite Micro has no CONV_3D kernel, and the TFLite converter's "full int8" leaves
CONV_3D in float. :func:`lower_conv3d` rebuilds a ``tf_keras`` model so that every
tensor has rank <= 4 and every 3-D layer is made of CONV_2D, RESHAPE, STRIDED_SLICE,
PAD, CONCATENATION (<= 10 inputs, nested when wider), MAX/AVERAGE_POOL_2D and MEAN,
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
    ``y[h, w, d, o] = b[o] + sum_{i, j, t, c} K[i, j, t, c, o] x[h*sh+i-ph, w*sw+j-pw, d*sd+t-pd, c]``
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
    * ``"auto"`` (per layer) takes "dense" while its weights are at most 1.5x the
      Conv3D's (the spectral kernel spans nearly the whole depth), "sliced" otherwise.

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
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tfhsi._keras import keras, tf
from tfhsi.compress import _lower_layers as low
from tfhsi.compress._lower_layers import Folded, LayerLowering
from tfhsi.errors import ConfigError, TfhsiError, UnsupportedError

__all__ = [
    "STRATEGIES",
    "LayerLowering",
    "LoweringMismatchError",
    "LoweringReport",
    "check_equivalence",
    "layer_table",
    "lower_conv3d",
    "lowered_input",
]

STRATEGIES = ("auto", "dense", "sliced")

layers = keras.layers

_ELEMENTWISE = (
    layers.ReLU,
    layers.LeakyReLU,
    layers.ELU,
    layers.ThresholdedReLU,
    layers.GaussianNoise,
    layers.GaussianDropout,
    layers.AlphaDropout,
    layers.ActivityRegularization,
)
_MERGES = (
    layers.Add,
    layers.Subtract,
    layers.Multiply,
    layers.Average,
    layers.Maximum,
    layers.Minimum,
)
_NON_ELEMENTWISE_ACTIVATIONS = ("softmax", "log_softmax")
_SUPPORTED = (
    "Conv3D, BatchNormalization (channel axis), MaxPooling3D, AveragePooling3D, "
    "GlobalAveragePooling3D, GlobalMaxPooling3D, ZeroPadding3D, Cropping3D, Flatten, "
    "Reshape, Concatenate (depth axis), Dropout, element-wise activations and "
    "Add/Subtract/Multiply/Average/Maximum/Minimum"
)


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
        return sum(entry.conv2d_count for entry in self.layers)


def lowered_input(x5: np.ndarray) -> np.ndarray:
    """The lowered model's input for 5-D patches ``(N, H, W, D, C)``: ``(N, H, W, D*C)``."""
    x5 = np.asarray(x5)
    if x5.ndim != 5:
        raise ConfigError(
            f"expected 5-D patches (N, height, width, bands, channels), got shape {x5.shape}."
        )
    return x5.reshape(*x5.shape[:3], -1)


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
        strategy: ``"auto"``, ``"dense"`` or ``"sliced"`` (see the module docstring).
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
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth"):
        raise UnsupportedError(
            f"lower_conv3d needs a functional or Sequential tf_keras model, got "
            f"{type(model).__name__}; subclassed models have no graph to rewrite."
        )
    lowered, report = _Lowering(model, strategy).run()
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
    expected = original(x5, training=False).numpy()
    x = lowered_input(x5) if len(original.inputs[0].shape) == 5 else x5
    got = lowered(x, training=False).numpy()
    diff = float(np.max(np.abs(expected - got))) if expected.size else 0.0
    if report is not None:
        report.max_abs_diff = diff
    if not diff <= atol:
        raise LoweringMismatchError(
            f"the lowered {original.name!r} differs from the original by {diff:.3g} "
            f"(> atol {atol:g}) on {len(x5)} patches; this is a bug in the lowering - "
            "please report it with the model's summary()."
        )
    return diff


def _count_params(model: keras.Model) -> int:
    return int(sum(math.prod(w.shape) for w in model.weights))


def _is_keras_tensor(value: Any) -> bool:
    return keras.backend.is_keras_tensor(value)


class _Lowering:
    """One pass over the model's nodes in topological order, mapping old tensors to new."""

    def __init__(self, model: keras.Model, strategy: str) -> None:
        self.model = model
        self.strategy = strategy
        self.values: dict[int, Any] = {}  # id(old KerasTensor) -> new tensor or Folded
        self.clones: dict[int, Any] = {}  # id(old layer) -> its copy (shared layers stay shared)
        self.skip: set[int] = set()  # id(node) already produced (folded batch norms)
        self.report = LoweringReport(strategy=strategy)
        self.consumers: dict[int, list[Any]] = {}
        self.outputs = {id(t) for t in tf.nest.flatten(model.outputs)}

    def run(self) -> tuple[keras.Model, LoweringReport]:
        depths = sorted(self.model._nodes_by_depth, reverse=True)
        nodes = [node for depth in depths for node in self.model._nodes_by_depth[depth]]
        for node in nodes:
            for kt in node.keras_inputs:
                self.consumers.setdefault(id(kt), []).append(node)
        inputs = [self._input(t) for t in self.model.inputs]
        for node in nodes:
            if node.is_input or id(node) in self.skip:
                continue
            self._node(node)
        outputs = []
        for t in tf.nest.flatten(self.model.outputs):
            value = self.values[id(t)]
            if isinstance(value, Folded):
                raise UnsupportedError(
                    f"model output {t.name!r} is a 5-D tensor; lower_conv3d needs outputs of "
                    "rank <= 4 (end the model with Flatten/Dense or global pooling)."
                )
            outputs.append(value)
        outputs_struct = tf.nest.pack_sequence_as(self.model._nested_outputs, outputs)
        lowered = keras.Model(
            inputs if len(inputs) > 1 else inputs[0],
            outputs_struct,
            name=f"{self.model.name}_lowered",
        )
        self.report.params_before = _count_params(self.model)
        self.report.params_after = _count_params(lowered)
        self.report.lowered_input_layout = "2d"
        return lowered, self.report

    # ------------------------------------------------------------------ inputs
    def _input(self, t: Any) -> Any:
        shape = tuple(t.shape[1:])
        if any(s is None for s in shape):
            raise UnsupportedError(
                f"model input {t.name!r} has a dynamic shape {tuple(t.shape)}; lowering needs "
                "static per-sample shapes (build the model with a fixed patch size and band count)."
            )
        name = t._keras_history.layer.name
        if len(shape) == 4:
            h, w, d, c = (int(s) for s in shape)
            new = keras.Input(shape=(h, w, d * c), name=name, dtype=t.dtype)
            self.values[id(t)] = Folded(new, h, w, d, c)
        elif len(shape) > 4:
            raise UnsupportedError(f"model input {t.name!r} has rank {len(shape) + 1} > 5.")
        else:
            new = keras.Input(shape=shape, name=name, dtype=t.dtype)
            self.values[id(t)] = new
        return new

    # ------------------------------------------------------------------ nodes
    def _node(self, node: Any) -> None:
        layer = node.layer
        args, kwargs = self._map((node.call_args, node.call_kwargs))
        folded = [v for v in tf.nest.flatten((args, kwargs)) if isinstance(v, Folded)]
        if isinstance(layer, layers.Reshape) and not folded:  # may create a 5-D tensor
            self._bind(node, self._reshape(layer, node, args[0]))
            return
        if not folded:
            result = self._call_clone(layer, *args, **kwargs)
            self._bind(node, result)
            return
        x = folded[0]
        entry: LayerLowering | None = None
        if isinstance(layer, layers.Conv3D):
            bn_node = self._foldable_batch_norm(node)
            bn = bn_node.layer if bn_node is not None else None
            result, entry = low.conv3d(layer, x, strategy=self.strategy, batch_norm=bn)
            if bn_node is not None:
                self.skip.add(id(bn_node))
                self._bind(bn_node, result)
        elif isinstance(layer, layers.BatchNormalization):
            result, entry = low.batch_norm(layer, x)
        elif isinstance(layer, (layers.MaxPooling3D, layers.AveragePooling3D)):
            result, entry = low.pooling3d(layer, x)
        elif isinstance(layer, (layers.GlobalAveragePooling3D, layers.GlobalMaxPooling3D)):
            result, entry = low.global_pooling3d(layer, x)
        elif isinstance(layer, layers.ZeroPadding3D):
            result = low.zero_padding3d(layer, x)
        elif isinstance(layer, layers.Cropping3D):
            result = low.cropping3d(layer, x)
        elif isinstance(layer, layers.Flatten):
            result = self._flatten(layer, x)
        elif isinstance(layer, layers.Reshape):
            result = self._reshape(layer, node, x)
        elif isinstance(layer, layers.Concatenate):
            result = self._concatenate(layer, node, args)
        elif isinstance(layer, layers.Dropout):  # incl. SpatialDropout3D: identity at inference
            result = Folded(layers.Dropout(layer.rate, name=layer.name)(x.tensor), *x.shape)
        elif isinstance(layer, layers.Activation):
            self._check_elementwise_activation(layer)
            result = Folded(self._call_clone(layer, x.tensor), *x.shape)
        elif isinstance(layer, _ELEMENTWISE):
            result = Folded(self._call_clone(layer, x.tensor), *x.shape)
        elif isinstance(layer, _MERGES):
            result = self._merge(layer, args)
        else:
            raise UnsupportedError(
                f"layer {layer.name!r} ({type(layer).__name__}) receives a 5-D tensor and "
                f"has no rank-4 equivalent in lower_conv3d; supported there: {_SUPPORTED}. "
                "Replace the layer or flatten the 3-D features before it."
            )
        if entry is not None:
            self.report.layers.append(entry)
        self._bind(node, result)

    def _map(self, structure: Any) -> Any:
        def replace(value: Any) -> Any:
            if _is_keras_tensor(value):
                return self.values[id(value)]
            return value

        return tf.nest.map_structure(replace, structure)

    def _bind(self, node: Any, result: Any) -> None:
        old = tf.nest.flatten(node.outputs)
        new = tf.nest.flatten(result, expand_composites=False)
        if isinstance(result, Folded):
            new = [result]
        if len(old) != len(new):  # pragma: no cover - defensive
            raise UnsupportedError(
                f"layer {node.layer.name!r}: {len(old)} outputs but the rewrite gave {len(new)}."
            )
        for o, n in zip(old, new, strict=True):
            if not isinstance(n, Folded) and len(o.shape) >= 5:
                raise UnsupportedError(
                    f"layer {node.layer.name!r} ({type(node.layer).__name__}) makes a "
                    f"{len(o.shape)}-D tensor from lower-rank inputs; only Reshape can create "
                    "5-D tensors in a model to be lowered."
                )
            self.values[id(o)] = n

    def _call_clone(self, layer: Any, *args: Any, **kwargs: Any) -> Any:
        """Calls a copy of ``layer`` (one copy per layer, so shared layers stay shared)."""
        key = id(layer)
        if key in self.clones:
            return self.clones[key](*args, **kwargs)
        if isinstance(layer, keras.Model):
            clone = keras.models.clone_model(layer)
            clone.set_weights(layer.get_weights())
            self.clones[key] = clone
            return clone(*args, **kwargs)
        clone = type(layer).from_config(layer.get_config())
        result = clone(*args, **kwargs)
        clone.set_weights(layer.get_weights())
        self.clones[key] = clone
        return result

    # ------------------------------------------------------------------ special layers
    def _foldable_batch_norm(self, node: Any) -> Any | None:
        """The BatchNormalization node to fold into this Conv3D node, if there is one."""
        layer = node.layer
        (out,) = tf.nest.flatten(node.outputs)
        users = self.consumers.get(id(out), [])
        if len(users) != 1 or id(out) in self.outputs:
            return None
        (user,) = users
        linear = keras.activations.serialize(layer.activation) == "linear"
        if (
            linear
            and low.is_channel_batch_norm(user.layer, 5)
            and len(user.layer._inbound_nodes) == 1
        ):
            return user
        return None

    def _check_elementwise_activation(self, layer: Any) -> None:
        name = keras.activations.serialize(layer.activation)
        if name in _NON_ELEMENTWISE_ACTIVATIONS:
            raise UnsupportedError(
                f"Activation layer {layer.name!r} applies {name!r} to a 5-D tensor; it "
                "normalises over the channel axis, which the folded layout interleaves with "
                "depth. Apply it after Flatten/Dense instead."
            )

    def _flatten(self, layer: Any, x: Folded) -> Any:
        if layer.data_format != "channels_last":
            raise UnsupportedError(
                f"Flatten layer {layer.name!r} uses data_format='channels_first', which "
                "permutes a 5-D tensor; only channels_last can be lowered."
            )
        return layers.Flatten(name=layer.name)(x.tensor)

    def _reshape(self, layer: Any, node: Any, x: Folded | Any) -> Any:
        """Any Reshape: row-major order is the same in the folded layout."""
        target = tuple(int(s) for s in tf.nest.flatten(node.outputs)[0].shape[1:])
        tensor = x.tensor if isinstance(x, Folded) else x
        if len(target) == 4:
            h, w, d, c = target
            return Folded(low.reshape(tensor, (h, w, d * c), layer.name), h, w, d, c)
        if len(target) > 4:
            raise UnsupportedError(
                f"Reshape layer {layer.name!r} makes a {len(target) + 1}-D tensor; at most "
                "5-D (batch, height, width, depth, channels) can be lowered."
            )
        return low.reshape(tensor, target, layer.name)  # e.g. HybridSN's (h, w, d*c): a no-op

    def _concatenate(self, layer: Any, node: Any, args: Any) -> Any:
        inputs = list(args[0])
        rank = len(tf.nest.flatten(node.outputs)[0].shape)
        axis = layer.axis % rank
        if rank == 5 and axis == 3 and all(isinstance(v, Folded) for v in inputs):
            first = inputs[0]
            if all((v.h, v.w, v.c) == (first.h, first.w, first.c) for v in inputs):
                y = low.concat([v.tensor for v in inputs], axis=-1, name=layer.name)
                return Folded(y, first.h, first.w, sum(v.d for v in inputs), first.c)
        raise UnsupportedError(
            f"Concatenate layer {layer.name!r} joins 5-D tensors along axis {layer.axis}; only "
            "the depth axis (3 or -2) can be lowered, since the folded layout interleaves "
            "channels with depth."
        )

    def _merge(self, layer: Any, args: Any) -> Folded:
        inputs = list(args[0])
        if not all(isinstance(v, Folded) for v in inputs) or len({v.shape for v in inputs}) != 1:
            raise UnsupportedError(
                f"{type(layer).__name__} layer {layer.name!r} combines 5-D tensors of different "
                "shapes (broadcasting); only equal shapes can be lowered."
            )
        y = self._call_clone(layer, [v.tensor for v in inputs])
        return Folded(y, *inputs[0].shape)


def layer_table(report: LoweringReport) -> list[dict[str, Any]]:
    """The report's per-layer entries as plain dicts (for JSON run records)."""
    return [dataclasses.asdict(entry) for entry in report.layers]
