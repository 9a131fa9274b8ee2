"""The graph walk of :func:`tfhsi.compress.lower.lower_conv3d`.

Visits the model's nodes in topological order and maps every old tensor to a new one:
a plain tensor, or a :class:`~tfhsi.compress._lower_layers.Folded` one for each 5-D
activation. Layers that see only plain tensors are copied with their weights; layers
that see a folded tensor are rewritten by :mod:`tfhsi.compress._lower_layers`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from tfhsi._keras import keras, tf
from tfhsi.compress import _lower_layers as low
from tfhsi.compress._lower_layers import Folded, LayerLowering
from tfhsi.errors import UnsupportedError

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


def count_params(model: keras.Model) -> int:
    """Weights of a model, trainable or not."""
    return int(sum(math.prod(w.shape) for w in model.weights))


def _is_keras_tensor(value: Any) -> bool:
    return keras.backend.is_keras_tensor(value)


def _refuse_custom_call(layer: Any) -> None:
    """A user's subclass of a standard layer that computes something else cannot be rewritten."""
    cls: Any = type(layer)
    base: Any = next((c for c in cls.__mro__ if c.__module__.startswith("tf_keras.")), None)
    if base in (None, cls, layers.Layer) or cls.call is base.call:
        return
    raise UnsupportedError(
        f"layer {layer.name!r} ({cls.__name__}) receives a 5-D tensor and overrides "
        f"{base.__name__}.call(); lower_conv3d rewrites only what the standard layers compute. "
        "Replace it with standard layers, or flatten the 3-D features before it."
    )


class GraphLowering:
    """One pass over the model's nodes in topological order, mapping old tensors to new."""

    def __init__(self, model: keras.Model, strategy: str) -> None:
        self.model = model
        self.strategy = strategy
        self.values: dict[int, Any] = {}  # id(old KerasTensor) -> new tensor or Folded
        self.clones: dict[int, Any] = {}  # id(old layer) -> its copy (shared layers stay shared)
        self.skip: set[int] = set()  # id(node) already produced (folded batch norms)
        self.rewritten: set[int] = set()  # id(layer) rewritten once (names must stay unique)
        self.entries: list[LayerLowering] = []
        self.consumers: dict[int, list[Any]] = {}
        self.outputs = {id(t) for t in tf.nest.flatten(model.outputs)}

    def run(self) -> tuple[keras.Model, list[LayerLowering]]:
        """The lowered model and one entry per rewritten 3-D layer."""
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
        return lowered, self.entries

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
        _refuse_custom_call(layer)
        keeps_layout = (layers.Conv3D, layers.Dropout, layers.Activation, *_ELEMENTWISE)
        if not isinstance(layer, keeps_layout):  # the others read the folded tensor
            args, kwargs = self._exact((args, kwargs), layer.name)
            folded = [v for v in tf.nest.flatten((args, kwargs)) if isinstance(v, Folded)]
        x = folded[0]
        entry: LayerLowering | None = None
        shareable = (layers.Activation, *_ELEMENTWISE, *_MERGES)
        if not isinstance(layer, shareable):
            if id(layer) in self.rewritten:
                raise UnsupportedError(
                    f"layer {layer.name!r} ({type(layer).__name__}) is called more than once on "
                    "5-D tensors (a shared layer); lower_conv3d rewrites each 3-D layer once. "
                    "Give every call its own layer."
                )
            self.rewritten.add(id(layer))
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
            result = dataclasses.replace(
                x, tensor=layers.Dropout(layer.rate, name=layer.name)(x.tensor)
            )
        elif isinstance(layer, layers.Activation):
            self._check_elementwise_activation(layer)
            result = dataclasses.replace(x, tensor=self._call_clone(layer, x.tensor))
        elif isinstance(layer, _ELEMENTWISE):
            result = dataclasses.replace(x, tensor=self._call_clone(layer, x.tensor))
        elif isinstance(layer, _MERGES):
            result = self._merge(layer, args)
        else:
            raise UnsupportedError(
                f"layer {layer.name!r} ({type(layer).__name__}) receives a 5-D tensor and "
                f"has no rank-4 equivalent in lower_conv3d; supported there: {_SUPPORTED}. "
                "Replace the layer or flatten the 3-D features before it."
            )
        if entry is not None:
            self.entries.append(entry)
        self._bind(node, result)

    def _map(self, structure: Any) -> Any:
        def replace(value: Any) -> Any:
            if _is_keras_tensor(value):
                return self.values[id(value)]
            return value

        return tf.nest.map_structure(replace, structure)

    def _exact(self, structure: Any, name: str) -> Any:
        """``structure`` with every columns-layout tensor turned into the folded one."""
        count = iter(range(1 << 30))

        def replace(value: Any) -> Any:
            if isinstance(value, Folded) and value.stride:
                return low.exact(value, f"{name}__in{next(count)}")
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
