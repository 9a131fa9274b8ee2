"""How each layer is quantised for QAT: TF-MOT's defaults, plus configs for Conv3D & co.

The configs mirror what TF-MOT's default 8-bit registry gives Conv2D: weights
fake-quantised per output channel, 8-bit symmetric narrow-range (``LastValueQuantizer``
semantics), activations 8-bit asymmetric with moving-average ranges
(``MovingAverageQuantizer``) after the layer's own activation. :func:`plan` decides
which layer gets which config; the rules are documented in :mod:`tfhsi.compress.quantize`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tfhsi._keras import keras, tf, tfmot

_q = tfmot.quantization.keras
_layers = keras.layers
# Typed as Any: TF-MOT ships no type information to subclass against.
_LastValueQuantizer: Any = _q.quantizers.LastValueQuantizer
_QuantizeConfig: Any = _q.QuantizeConfig


def _activation_quantizer() -> Any:
    return _q.quantizers.MovingAverageQuantizer(
        num_bits=8, per_axis=False, symmetric=False, narrow_range=False
    )


class PerChannelKernelQuantizer(_LastValueQuantizer):
    """Symmetric per-output-channel ``LastValueQuantizer`` for kernels of any rank.

    TF-MOT's ``LastValueQuantizer(per_axis=True)`` only reduces 2-D and 4-D tensors
    and the per-channel fake-quant gradient stops at rank 4, so a 5-D Conv3D kernel
    breaks both. Training flattens the kernel to ``(-1, out_channels)`` (same ranges,
    same values, a gradient that exists); inference applies the fake quant to the 5-D
    kernel itself, which is the graph the TFLite converter reads.
    """

    def __init__(
        self,
        num_bits: int = 8,
        per_axis: bool = True,
        symmetric: bool = True,
        narrow_range: bool = True,
    ) -> None:
        if not (per_axis and symmetric and narrow_range):
            raise ValueError(
                "PerChannelKernelQuantizer is per-axis, symmetric and narrow-range by design"
            )
        super().__init__(num_bits=num_bits, per_axis=True, symmetric=True, narrow_range=True)

    def __call__(self, inputs: Any, training: Any, weights: dict[str, Any], **kwargs: Any) -> Any:
        min_var, max_var = weights["min_var"], weights["max_var"]
        fake_quant = tf.quantization.fake_quant_with_min_max_vars_per_channel
        if not training:
            return fake_quant(inputs, min_var, max_var, num_bits=self.num_bits, narrow_range=True)
        flat = tf.reshape(inputs, (-1, inputs.shape[-1]))
        bound = tf.maximum(-tf.reduce_min(flat, axis=0), tf.reduce_max(flat, axis=0))
        new_min, new_max = min_var.assign(-bound), max_var.assign(bound)
        quantized = fake_quant(flat, new_min, new_max, num_bits=self.num_bits, narrow_range=True)
        return tf.reshape(quantized, tf.shape(inputs))


class Conv3DQuantizeConfig(_QuantizeConfig):
    """Conv3D: per-channel 8-bit kernel; 8-bit output after the layer's activation.

    Args:
        quantize_activation: ``False`` when the next layer (BatchNormalization, ReLU)
            is folded into this one at inference, so no quantisation point sits between
            them (what TF-MOT's Conv2D+BN(+ReLU) transforms do for Conv2D).
    """

    def __init__(self, quantize_activation: bool = True) -> None:
        self.quantize_activation = quantize_activation
        self.weight_quantizer = PerChannelKernelQuantizer()
        self.activation_quantizer = _activation_quantizer()

    def get_weights_and_quantizers(self, layer: Any) -> list[tuple[Any, Any]]:
        return [(layer.kernel, self.weight_quantizer)]

    def get_activations_and_quantizers(self, layer: Any) -> list[tuple[Any, Any]]:
        if not self.quantize_activation:
            return []
        return [(layer.activation, self.activation_quantizer)]

    def set_quantize_weights(self, layer: Any, quantize_weights: list[Any]) -> None:
        (layer.kernel,) = quantize_weights

    def set_quantize_activations(self, layer: Any, quantize_activations: list[Any]) -> None:
        if self.quantize_activation:
            (layer.activation,) = quantize_activations

    def get_output_quantizers(self, layer: Any) -> list[Any]:
        return []

    def get_config(self) -> dict[str, Any]:
        return {"quantize_activation": self.quantize_activation}


class OutputQuantizeConfig(_QuantizeConfig):
    """A weightless layer: optionally fake-quantise its output (8-bit, moving average).

    ``quantize_output=True`` for layers TFLite computes in int8 with their own output
    scale (BatchNormalization not folded into a Conv2D/Dense, AveragePooling3D);
    ``False`` for layers that only move int8 values (MaxPooling3D, ZeroPadding3D) or
    that are folded into the next one (a BatchNormalization before a ReLU).
    """

    def __init__(self, quantize_output: bool = True) -> None:
        self.quantize_output = quantize_output

    def get_weights_and_quantizers(self, layer: Any) -> list[tuple[Any, Any]]:
        return []

    def get_activations_and_quantizers(self, layer: Any) -> list[tuple[Any, Any]]:
        return []

    def set_quantize_weights(self, layer: Any, quantize_weights: list[Any]) -> None:
        pass

    def set_quantize_activations(self, layer: Any, quantize_activations: list[Any]) -> None:
        pass

    def get_output_quantizers(self, layer: Any) -> list[Any]:
        return [_activation_quantizer()] if self.quantize_output else []

    def get_config(self) -> dict[str, Any]:
        return {"quantize_output": self.quantize_output}


#: Everything a saved QAT model may name beyond TF-MOT's own classes.
CUSTOM_OBJECTS: dict[str, type] = {
    "PerChannelKernelQuantizer": PerChannelKernelQuantizer,
    "Conv3DQuantizeConfig": Conv3DQuantizeConfig,
    "OutputQuantizeConfig": OutputQuantizeConfig,
}


#: Activations TF-MOT's QuantizeAwareActivation models inside Conv/Dense layers.
_FUSED_ACTIVATIONS = frozenset({"linear", "relu", "softmax", "sigmoid", "tanh", "swish", "gelu"})
#: Activations its ``Activation``-layer config accepts.
_ACTIVATION_LAYER = _FUSED_ACTIVATIONS | {"relu6"}
#: A BatchNormalization after one of these (linear activation) is left to TF-MOT's transforms.
_TFMOT_BN_PARENTS = (_layers.Conv2D, _layers.DepthwiseConv2D, _layers.Dense)
_PASS_THROUGH_3D = (_layers.MaxPooling3D, _layers.ZeroPadding3D)


def _activation_name(layer: Any) -> str:
    activation = getattr(layer, "activation", None)
    return str(getattr(activation, "__name__", type(activation).__name__))


def _is_relu(layer: Any) -> bool:
    if isinstance(layer, _layers.ReLU):
        config = layer.get_config()
        return config.get("max_value") is None and not config.get("negative_slope")
    return isinstance(layer, _layers.Activation) and _activation_name(layer) == "relu"


def _neighbours(model: Any) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """Producers and consumers of every layer, within ``model``'s own graph."""
    members = {id(layer) for layer in model.layers}
    inbound: dict[str, list[Any]] = {layer.name: [] for layer in model.layers}
    outbound: dict[str, list[Any]] = {layer.name: [] for layer in model.layers}
    for layer in model.layers:
        for node in layer._outbound_nodes:  # Keras keeps the layer graph only here
            consumer = node.outbound_layer
            if id(consumer) in members:
                outbound[layer.name].append(consumer)
                inbound[consumer.name].append(layer)
    return inbound, outbound


def _bn_config(parents: list[Any], children: list[Any]) -> Any:
    if (
        len(parents) == 1
        and isinstance(parents[0], _TFMOT_BN_PARENTS)
        and _activation_name(parents[0]) == "linear"
    ):
        return None  # TF-MOT's Conv2D/Dense + BN (+ ReLU) transforms handle it
    relu_next = len(children) == 1 and _is_relu(children[0])
    return OutputQuantizeConfig(quantize_output=not relu_next)


def plan(model: Any, configs: Mapping[str, Any]) -> dict[str, Any]:
    """Layer name -> the QuantizeConfig to annotate it with (``None``: TF-MOT's default)."""
    inbound, outbound = _neighbours(model)
    chosen: dict[str, Any] = {}
    for layer in model.layers:
        name = layer.name
        if isinstance(layer, _layers.InputLayer):
            continue
        if name in configs:
            chosen[name] = configs[name]
        elif isinstance(layer, _layers.Conv3D) and not isinstance(layer, _layers.Conv3DTranspose):
            children = outbound[name]
            folded = (
                _activation_name(layer) == "linear"
                and len(children) == 1
                and (isinstance(children[0], _layers.BatchNormalization) or _is_relu(children[0]))
            )
            chosen[name] = Conv3DQuantizeConfig(quantize_activation=not folded)
        elif isinstance(layer, _layers.BatchNormalization):
            chosen[name] = _bn_config(inbound[name], outbound[name])
        elif isinstance(layer, _PASS_THROUGH_3D):
            chosen[name] = OutputQuantizeConfig(quantize_output=False)
        elif isinstance(layer, _layers.AveragePooling3D):
            chosen[name] = OutputQuantizeConfig(quantize_output=True)
        else:
            chosen[name] = None
    return chosen


def unsupported_reason(layer: Any, config: Any, registry: Any) -> str | None:
    """Why ``layer`` cannot be quantised with ``config`` (``None``: it can)."""
    if isinstance(layer, keras.Model):
        return "nested model; flatten it into one functional model"
    if isinstance(layer, _layers.Lambda):
        return "Lambda layer, TF-MOT cannot clone it; replace it with a standard layer"
    if isinstance(layer, _layers.Activation):
        name = _activation_name(layer)
        return None if name in _ACTIVATION_LAYER else f"activation {name!r}"
    if (
        config is None
        and not isinstance(layer, _layers.BatchNormalization)
        and not registry.supports(layer)
    ):
        return "no 8-bit quantize config"
    if hasattr(layer, "activation") and _activation_name(layer) not in _FUSED_ACTIVATIONS:
        return f"fused activation {_activation_name(layer)!r}"
    return None
