"""Structured filter pruning: drop whole filters and units, rebuild a smaller dense model.

Magnitude pruning leaves zeros a microcontroller still multiplies; removing whole
filters makes the model smaller and faster with ordinary kernels. TF-MOT has no such
method. The rhythm: :func:`filter_prune` (prepare + finalize in one step: a new, smaller
model with copied weights) → fine-tune it with ``train_model``.

How it works:

1. Every Conv1D/2D/3D and Dense layer is a *producer*. Its filters are ranked by the
   L1 (or L2) norm of their kernel slice and the top ``round((1 - ratio) · n)`` (at
   least 1) are kept, in their original order. Producers whose output reaches a model
   output through channel-preserving layers only (the logits) are never pruned, nor are
   those matched by ``skip`` or with a softmax activation.
2. A keep-mask is traced through the graph for every tensor: the features of the old
   tensor that survive in the new one. BatchNormalization and DepthwiseConv2D (depth
   multiplier 1) follow their input's channels; activations, dropout, pooling, padding
   and global pooling pass channels through; Flatten, Reshape and Permute move the
   mask with the data, so the rows of a following Dense are sliced exactly (a Reshape
   must keep its leading axes and change the last one only); Concatenate joins masks;
   Add/Multiply/... need identical masks on their inputs.
3. The model is rebuilt from its config with the new widths and Reshape targets, and
   each layer gets its sliced weights: kernel output axis by its own mask, input axis
   (-2) by its input's mask.

Graphs outside these rules raise :class:`UnsupportedError` naming the layer.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tfhsi._keras import keras
from tfhsi.compress.prune import require_functional
from tfhsi.errors import ConfigError, UnsupportedError

L = keras.layers
Mask = np.ndarray | None  # None = every feature kept

_PRODUCERS = (L.Conv1D, L.Conv2D, L.Conv3D, L.Dense)


def _classes(*names: str) -> tuple[type, ...]:
    return tuple(getattr(L, name) for name in names)


def _nd(*stems: str) -> tuple[str, ...]:
    return tuple(f"{stem}{d}D" for stem in stems for d in (1, 2, 3))


_NOT_PRODUCERS = _classes(
    "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
    "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
)  # fmt: skip
# Dropout covers SpatialDropout1D/2D/3D (subclasses).
_ELEMENTWISE = _classes(
    "ReLU", "LeakyReLU", "ELU", "ThresholdedReLU", "Dropout", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ActivityRegularization",
)  # fmt: skip
_SPATIAL = _classes(
    *_nd("MaxPooling", "AveragePooling", "ZeroPadding", "Cropping", "UpSampling"),
    *_nd("GlobalAveragePooling", "GlobalMaxPooling"),
)
_SAME_MASK_MERGES = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)
_COUPLED_ACTIVATIONS = ("softmax", "log_softmax")


@dataclass(frozen=True)
class PrunedLayer:
    """What happened to one producer layer.

    Attributes:
        name: Layer name.
        total: Filters (units) before.
        kept: Indices of the kept filters, ascending.
        status: ``pruned``, ``skipped`` (by pattern), ``output`` (feeds a model
            output) or ``softmax`` (its activation couples the channels).
    """

    name: str
    total: int
    kept: tuple[int, ...]
    status: Literal["pruned", "skipped", "output", "softmax"]


@dataclass(frozen=True)
class FilterPruneReport:
    """Per-layer kept/total and the parameter counts before and after."""

    ratio: float
    norm: str
    layers: tuple[PrunedLayer, ...]
    params_before: int
    params_after: int

    @property
    def param_fraction(self) -> float:
        """Parameters after over parameters before."""
        return self.params_after / self.params_before if self.params_before else 1.0

    def layer(self, name: str) -> PrunedLayer:
        for entry in self.layers:
            if entry.name == name:
                return entry
        raise ConfigError(f"layer {name!r} is not a producer of this report.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for a run record."""
        return {
            "ratio": self.ratio,
            "norm": self.norm,
            "params_before": self.params_before,
            "params_after": self.params_after,
            "param_fraction": self.param_fraction,
            "layers": [
                {"name": e.name, "total": e.total, "kept": len(e.kept), "status": e.status}
                for e in self.layers
            ],
        }


def _is_producer(layer: Any) -> bool:
    return isinstance(layer, _PRODUCERS) and not isinstance(layer, _NOT_PRODUCERS)


def _tensor_key(tensor: Any) -> tuple[str, int, int]:
    layer, node_index, tensor_index = tensor._keras_history
    return layer.name, node_index, tensor_index


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _unsupported(layer: Any, why: str) -> UnsupportedError:
    return UnsupportedError(
        f"filter pruning cannot handle layer {layer.name!r} ({type(layer).__name__}): {why}. "
        "Leave the producers feeding it unpruned with skip=(...), or restructure the model."
    )


def _node(model: keras.Model, layer: Any) -> Any:
    """The one call of ``layer`` inside ``model`` (a layer may also be used by other models)."""
    keys = getattr(model, "_network_nodes", None)
    nodes = [
        node
        for index, node in enumerate(layer.inbound_nodes)
        if keys is None or f"{layer.name}_ib-{index}" in keys
    ]
    if len(nodes) != 1:
        raise _unsupported(layer, "it is shared (called more than once in the model)")
    return nodes[0]


def _inputs(model: keras.Model, layer: Any) -> list[Any]:
    return _as_list(_node(model, layer).input_tensors)


def _output_producers(model: keras.Model) -> set[str]:
    """Producers whose output reaches a model output through non-producer layers only."""
    found: set[str] = set()
    stack = [t._keras_history[0] for t in _as_list(model.outputs)]
    seen: set[str] = set()
    while stack:
        layer = stack.pop()
        if layer.name in seen:
            continue
        seen.add(layer.name)
        if _is_producer(layer):
            found.add(layer.name)
        elif not isinstance(layer, L.InputLayer):
            stack.extend(t._keras_history[0] for t in _inputs(model, layer))
    return found


def _keep_count(total: int, ratio: float) -> int:
    return max(1, math.floor(total * (1.0 - ratio) + 0.5))


def _rank_filters(kernel: np.ndarray, norm: str) -> np.ndarray:
    """Filter indices, strongest first (ties: lower index first)."""
    flat = kernel.reshape(-1, kernel.shape[-1])
    scores = np.abs(flat).sum(axis=0) if norm == "l1" else np.sqrt((flat**2).sum(axis=0))
    return np.argsort(-scores, kind="stable")


def _vector(mask: Mask, layer: Any) -> np.ndarray | None:
    """The last-axis keep vector of a mask that is the same at every position."""
    if mask is None:
        return None
    rows = mask.reshape(-1, mask.shape[-1])
    if not (rows == rows[0]).all():
        raise _unsupported(layer, "its input's kept features differ between positions")
    return None if rows[0].all() else rows[0].copy()


def _channels(vector: np.ndarray | None, rank: int) -> Mask:
    return None if vector is None else vector.reshape((1,) * (rank - 1) + (-1,))


def _full(mask: Mask, tensor: Any, layer: Any) -> Mask:
    if mask is None:
        return None
    shape = tuple(tensor.shape[1:])
    if any(d is None for d in shape):
        raise _unsupported(layer, f"its input shape {shape} is not static")
    return np.broadcast_to(mask, shape)


def _full_or_ones(mask: Mask, tensor: Any, layer: Any) -> np.ndarray:
    full = _full(mask, tensor, layer)
    return np.ones(tuple(tensor.shape[1:]), bool) if full is None else full


def _take(array: np.ndarray, vector: np.ndarray | None, axis: int) -> np.ndarray:
    return array if vector is None else np.compress(vector, array, axis=axis)


def _channels_first(layer: Any) -> bool:
    return getattr(layer, "data_format", "channels_last") == "channels_first"


def _rank(tensor: Any) -> int:
    return len(tensor.shape) - 1


class _Tracer:
    """Walks the graph once: keep-masks per tensor, new configs and weights per layer."""

    def __init__(self, model: keras.Model, decide: Any) -> None:
        self.model = model
        self.decide = decide  # producer layer -> kept indices (None = all)
        self.masks: dict[tuple[str, int, int], Mask] = {}
        self.configs: dict[str, dict[str, Any]] = {}
        self.weights: dict[str, list[np.ndarray]] = {}

    def run(self) -> None:
        for layer in self.model.layers:
            if isinstance(layer, L.InputLayer):
                continue
            node = _node(self.model, layer)
            inputs = _as_list(node.input_tensors)
            masks = [self.masks.get(_tensor_key(t)) for t in inputs]  # model inputs: None
            outputs = _as_list(node.outputs)
            out = self._layer(layer, inputs, masks, outputs)
            for tensor in outputs:
                self.masks[_tensor_key(tensor)] = out
        for tensor in _as_list(self.model.outputs):
            if self.masks[_tensor_key(tensor)] is not None:  # pragma: no cover - guarded above
                raise _unsupported(tensor._keras_history[0], "a model output would lose features")

    def _layer(self, layer: Any, inputs: list[Any], masks: list[Mask], outputs: list[Any]) -> Mask:
        weights = layer.get_weights()
        mask = masks[0]
        touched = any(m is not None for m in masks)
        if touched and _channels_first(layer):
            raise _unsupported(layer, "channels_first data is not handled")
        if _is_producer(layer):
            return self._producer(layer, mask, weights, _rank(outputs[0]))
        if all(m is None for m in masks):
            return None  # untouched: weights and config as they are
        if isinstance(layer, L.BatchNormalization):
            axes = _as_list(layer.axis)
            if len(axes) != 1 or axes[0] not in (-1, _rank(inputs[0])):
                raise _unsupported(layer, f"it normalises axis {layer.axis}, not the channels")
            vector = _vector(mask, layer)
            self.weights[layer.name] = [_take(w, vector, 0) for w in weights]
            return mask
        if isinstance(layer, L.DepthwiseConv2D):
            if layer.depth_multiplier != 1:
                raise _unsupported(layer, "its depth_multiplier is not 1")
            vector = _vector(mask, layer)
            self.weights[layer.name] = [_take(weights[0], vector, 2)] + [
                _take(w, vector, 0) for w in weights[1:]
            ]
            return _channels(vector, _rank(outputs[0]))
        if isinstance(layer, _ELEMENTWISE):
            return mask
        if isinstance(layer, (L.Activation, L.Softmax)):
            name = layer.get_config().get("activation", "softmax")
            if isinstance(layer, L.Softmax) or name in _COUPLED_ACTIVATIONS:
                raise _unsupported(layer, "softmax couples the channels it normalises")
            return mask
        if isinstance(layer, _SPATIAL):
            return _channels(_vector(mask, layer), _rank(outputs[0]))
        if isinstance(layer, (L.Flatten, L.Reshape, L.Permute)):
            return self._move(layer, _full(mask, inputs[0], layer), outputs[0])
        if isinstance(layer, L.Concatenate):
            full = [_full_or_ones(m, t, layer) for m, t in zip(masks, inputs, strict=True)]
            axis = layer.axis if layer.axis < 0 else layer.axis - 1
            return np.concatenate(full, axis=axis)
        if isinstance(layer, _SAME_MASK_MERGES):
            full = [_full_or_ones(m, t, layer) for m, t in zip(masks, inputs, strict=True)]
            if any(not np.array_equal(f, full[0]) for f in full[1:]):
                raise _unsupported(layer, "its inputs keep different channels")
            return mask
        raise _unsupported(layer, "the layer type is not handled and its input loses channels")

    def _producer(self, layer: Any, mask: Mask, weights: list[np.ndarray], rank: int) -> Mask:
        vector = _vector(mask, layer)
        if getattr(layer, "groups", 1) != 1 and vector is not None:
            raise _unsupported(layer, "grouped convolutions are not handled")
        kernel = _take(weights[0], vector, weights[0].ndim - 2)
        kept = self.decide(layer)
        if kept is not None and _channels_first(layer):
            raise _unsupported(layer, "channels_first data is not handled")
        if kept is None:
            if vector is not None:
                self.weights[layer.name] = [kernel, *weights[1:]]
            return None
        self.weights[layer.name] = [kernel[..., kept]] + [w[kept] for w in weights[1:]]
        self.configs[layer.name] = {"units" if isinstance(layer, L.Dense) else "filters": len(kept)}
        keep = np.zeros(weights[0].shape[-1], bool)
        keep[kept] = True
        return _channels(keep, rank)

    def _move(self, layer: Any, full: Mask, output: Any) -> Mask:
        if full is None:
            return None
        if isinstance(layer, L.Flatten):
            return full.reshape(-1)
        if isinstance(layer, L.Permute):
            return np.transpose(full, [d - 1 for d in layer.dims])
        moved = full.reshape(tuple(output.shape[1:]))
        vector = _vector(moved, layer)
        if vector is not None:
            self.configs[layer.name] = {"target_shape": (*moved.shape[:-1], int(vector.sum()))}
        return moved


def filter_prune(
    model: keras.Model,
    *,
    ratio: float = 0.5,
    skip: Sequence[str] = (),
    norm: Literal["l1", "l2"] = "l1",
    by: Literal["filters", "params"] = "filters",
) -> tuple[keras.Model, FilterPruneReport]:
    """A new, smaller dense model keeping the strongest filters of each prunable layer.

    Args:
        model: A functional or Sequential tf_keras model (left untouched).
        ratio: With ``by="filters"``, the fraction of filters (units) removed from each
            prunable layer; with ``by="params"``, the fraction of the model's parameters
            to remove (one per-layer filter ratio is searched to get closest). In [0, 1).
        skip: fnmatch patterns of layer names whose filters are all kept.
        norm: Filter ranking, ``l1`` or ``l2`` norm of the kernel slice.
        by: What ``ratio`` counts. Removing half the filters of two consecutive layers
            removes three quarters of the second one's weights, so ``filters`` at 0.5
            leaves ~25-45 % of the parameters of the zoo's models.

    Returns:
        The rebuilt model (uncompiled, same layer names, weights copied) and a report
        (whose ``ratio`` is the per-layer filter ratio used). Fine-tune it afterwards.

    Raises:
        UnsupportedError: a Keras 3 / subclassed model or a graph the tracer cannot handle.
        ConfigError: bad ratio, norm or by, or a skip pattern matching no prunable layer.
    """
    require_functional(model, method="filter pruning")
    if not 0.0 <= float(ratio) < 1.0:
        raise ConfigError(f"filter-pruning ratio must be in [0, 1); got {ratio}.")
    if norm not in ("l1", "l2"):
        raise ConfigError(f"filter-pruning norm must be 'l1' or 'l2'; got {norm!r}.")
    if by not in ("filters", "params"):
        raise ConfigError(f"filter-pruning 'by' must be 'filters' or 'params'; got {by!r}.")
    producers = [layer for layer in model.layers if _is_producer(layer)]
    for pattern in skip:
        if not any(fnmatch.fnmatchcase(layer.name, pattern) for layer in producers):
            raise ConfigError(
                f"filter-pruning skip pattern {pattern!r} matches no prunable layer of "
                f"{model.name!r}; prunable layers: {', '.join(p.name for p in producers)}."
            )
    planner = _Planner(model, skip=tuple(skip), norm=norm)
    filter_ratio = float(ratio) if by == "filters" else planner.ratio_for_params(1.0 - ratio)
    tracer, entries = planner.trace(filter_ratio)
    pruned = _rebuild(model, tracer.configs, tracer.weights)
    return pruned, FilterPruneReport(
        ratio=filter_ratio,
        norm=norm,
        layers=entries,
        params_before=int(model.count_params()),
        params_after=int(pruned.count_params()),
    )


class _Planner:
    """Ranks each producer's filters once; traces the graph for any filter ratio."""

    def __init__(self, model: keras.Model, *, skip: tuple[str, ...], norm: str) -> None:
        self.model = model
        self.outputs = _output_producers(model)
        self.skip = skip
        self.norm = norm
        self.before = model.count_params()
        self._order: dict[str, np.ndarray] = {}

    def _status(self, layer: Any) -> Literal["pruned", "skipped", "output", "softmax"]:
        if layer.name in self.outputs:
            return "output"
        if any(fnmatch.fnmatchcase(layer.name, p) for p in self.skip):
            return "skipped"
        if getattr(layer.activation, "__name__", "") in _COUPLED_ACTIVATIONS:
            return "softmax"
        return "pruned"

    def trace(self, ratio: float) -> tuple[_Tracer, tuple[PrunedLayer, ...]]:
        entries: list[PrunedLayer] = []

        def decide(layer: Any) -> np.ndarray | None:
            total = int(layer.kernel.shape[-1])
            status = self._status(layer)
            kept = np.arange(total)
            if status == "pruned":
                if layer.name not in self._order:
                    self._order[layer.name] = _rank_filters(layer.get_weights()[0], self.norm)
                kept = np.sort(self._order[layer.name][: _keep_count(total, ratio)])
            entries.append(PrunedLayer(layer.name, total, tuple(int(i) for i in kept), status))
            return kept if len(kept) < total else None

        tracer = _Tracer(self.model, decide)
        tracer.run()
        return tracer, tuple(entries)

    def params(self, ratio: float) -> int:
        tracer, _ = self.trace(ratio)
        return sum(
            sum(w.size for w in tracer.weights[layer.name])
            if layer.name in tracer.weights
            else layer.count_params()
            for layer in self.model.layers
        )

    def ratio_for_params(self, fraction: float) -> float:
        """The filter ratio whose pruned model's parameter fraction is closest to ``fraction``."""
        best = (abs(1.0 - fraction), 0.0)
        low, high = 0.0, 0.999
        for _ in range(20):  # parameters fall monotonically as the filter ratio grows
            mid = (low + high) / 2
            got = self.params(mid) / self.before
            best = min(best, (abs(got - fraction), mid))
            low, high = (mid, high) if got > fraction else (low, mid)
        return best[1]


def _rebuild(
    model: keras.Model, configs: dict[str, dict[str, Any]], weights: dict[str, list[np.ndarray]]
) -> keras.Model:
    config = model.get_config()
    for entry in config["layers"]:
        entry["config"].update(configs.get(entry["config"]["name"], {}))
    try:
        rebuilt = type(model).from_config(config)
    except (TypeError, ValueError) as exc:
        raise UnsupportedError(
            f"filter pruning could not rebuild {model.name!r} from its config ({exc}); "
            "custom layers must be registered with keras.utils.register_keras_serializable."
        ) from exc
    for layer in model.layers:
        new = rebuilt.get_layer(layer.name)
        new.set_weights(weights.get(layer.name, layer.get_weights()))
    return rebuilt
