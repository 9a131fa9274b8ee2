"""Presets made by ai-edge-quantizer: int4 weights, layers kept at int8, per-layer error.

ai-edge-quantizer (``ai_edge_quantizer``) quantises a float ``.tflite`` file op by op from a
recipe: a regular expression over each op's *scope* (its output tensor names) and a static
config (weight bits, activation bits). tfhsi hands it the float (lowered) fp32 file of a model
and the training patches that calibrate activation ranges, and names the layers as the Keras
model does: a *layer* here is an op with quantisable constant weights (CONV_2D,
DEPTHWISE_CONV_2D, FULLY_CONNECTED, ...) named after the Keras scope holding its weight
tensor (``hamida3d_lowered/conv1/Conv2D`` → ``conv1``), so ``keep_int8: [conv1, "logits"]`` means
the layers of those names. An op ai-edge-quantizer has no int4 config for (e.g.
DEPTHWISE_CONV_2D) gets int8 weights, so such a file audits as ``w4/8a8``. Patterns are matched against layer names in full
(``re.fullmatch``); a pattern that is not a regular expression or matches no layer is a
:class:`~tfhsi.errors.ConfigError`.

    >>> q = AeqQuantizer(fp32_bytes, representative)  # doctest: +SKIP
    >>> w4a8 = q.quantize(weight_bits=4, keep=select_layers(q.layers, ["logits"]))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tfhsi.errors import ConfigError, SetupError
from tfhsi.export.graph import read_graph

__all__ = [
    "WEIGHT_OPS",
    "AeqQuantizer",
    "LayerError",
    "MixedSearch",
    "QuantLayer",
    "Validation",
    "auto_mixed",
    "layer_errors",
    "layers_by_weight_bits",
    "quant_layers",
    "select_layers",
    "weight_bytes",
]

Representative = Callable[[], Iterator[Sequence[np.ndarray]]]


@dataclass(frozen=True)
class Validation:
    """The validation pixels a search scores ``.tflite`` files on (never test pixels).

    Attributes:
        predict: ``bytes -> (N,)`` class indices the file predicts for the N pixels.
        labels: ``(N,)`` their true class indices.
    """

    predict: Callable[[bytes], np.ndarray]
    labels: np.ndarray

    def oa(self, predicted: np.ndarray) -> float:
        return float(np.mean(np.asarray(predicted) == self.labels))


WEIGHT_OPS = frozenset(
    {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D"}
)
"""Ops whose constant weights ai-edge-quantizer can store in 4 or 8 bits."""


@dataclass(frozen=True)
class QuantLayer:
    """One quantisable layer of a float file.

    Attributes:
        name: The Keras layer it comes from (``conv1``), unique in the file.
        op: Its op in the float file (``CONV_2D#11``).
        outputs: Its output tensor names (what ai-edge-quantizer's scope is made of).
        weights: Number of weight elements.
    """

    name: str
    op: str
    outputs: tuple[str, ...]
    weights: int

    @property
    def scope_regex(self) -> str:
        """The ai-edge-quantizer regex that selects exactly this op."""
        return "^" + re.escape(";".join(self.outputs) + ";") + "$"


def _layer_name(tensor_name: str) -> str:
    last = tensor_name.split(";")[-1]
    parts = [p for p in last.split("/") if p]
    return parts[-2] if len(parts) >= 2 else parts[0] if parts else tensor_name


def quant_layers(float_model: bytes) -> list[QuantLayer]:
    """The layers of ``float_model`` whose weights a recipe can quantise, in execution order."""
    graph = read_graph(float_model)
    layers: list[QuantLayer] = []
    seen: dict[str, int] = {}
    for op in graph.ops:
        if op.name not in WEIGHT_OPS or op.subgraph != 0:
            continue
        filters = [t for t in op.inputs if t.is_constant and t.rank >= 2]
        if not filters:
            continue
        name = _layer_name(filters[0].name)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}#{seen[name]}"
        layers.append(
            QuantLayer(
                name=name,
                op=op.label,
                outputs=tuple(t.name for t in op.outputs),
                weights=int(np.prod(filters[0].shape)),
            )
        )
    return layers


def weight_bytes(model: bytes) -> int:
    """Bytes the weight buffers take in the flatbuffer: the stored data of every constant input
    of rank >= 2 (filters and weight matrices; not biases or shape operands), as written
    (int4 packs two values per byte)."""
    from tfhsi.export.graph import load_schema

    content = bytes(model)
    read_graph(content)  # a clear error for bytes that are not a .tflite
    fb = load_schema().Model.GetRootAs(content, 0)
    seen: set[int] = set()
    total = 0
    for s in range(fb.SubgraphsLength()):
        sg = fb.Subgraphs(s)
        for o in range(sg.OperatorsLength()):
            op = sg.Operators(o)
            for i in op.InputsAsNumpy() if op.InputsLength() else []:
                if i < 0:
                    continue
                t = sg.Tensors(int(i))
                b = t.Buffer()
                buf = fb.Buffers(b) if 0 < b < fb.BuffersLength() else None
                if buf is None or t.ShapeLength() < 2 or b in seen:
                    continue
                size = buf.DataLength() or (buf.Size() if buf.Offset() > 1 else 0)
                if size:
                    seen.add(b)
                    total += int(size)
    return total


def layers_by_weight_bits(data: bytes) -> dict[str, list[str]]:
    """The layers of a quantised file grouped by the dtype its audit finds in their weights
    (``{"int4": [...], "int8": [...]}``), read from the file itself."""
    from tfhsi.export.inspect import audit

    dtypes = audit(data).weight_dtypes
    groups: dict[str, list[str]] = {}
    for layer in quant_layers(data):
        groups.setdefault(dtypes.get(layer.op, "float32"), []).append(layer.name)
    return groups


def select_layers(
    layers: Sequence[QuantLayer], patterns: Sequence[str], *, where: str = "keep_int8"
) -> list[QuantLayer]:
    """The layers whose name matches one of ``patterns`` in full (``re.fullmatch``).

    Raises:
        ConfigError: a pattern is not a regular expression, or matches no layer.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    names = ", ".join(layer.name for layer in layers) or "none"
    chosen: dict[str, QuantLayer] = {}
    for pattern in patterns:
        try:
            compiled = re.compile(str(pattern))
        except re.error as exc:
            raise ConfigError(
                f"{where}: {pattern!r} is not a regular expression ({exc}); give a layer name "
                f"or a pattern such as 'conv.*' (layers: {names})."
            ) from None
        matched = [layer for layer in layers if compiled.fullmatch(layer.name)]
        if not matched:
            raise ConfigError(
                f"{where}: pattern {pattern!r} matches no quantisable layer; layers: {names}."
            )
        chosen.update((layer.name, layer) for layer in matched)
    return [layer for layer in layers if layer.name in chosen]


def _aeq() -> Any:
    try:
        from ai_edge_quantizer import quantizer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SetupError(
            f"the w4a8 / auto-mixed presets need ai-edge-quantizer ({exc}); install it with "
            "`pip install ai-edge-quantizer`."
        ) from exc
    return quantizer


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ai-edge-quantizer prints progress bars and size reports; tfhsi logs its own."""
    from tfhsi.native import quiet_native_stderr

    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), quiet_native_stderr():
        yield


class AeqQuantizer:
    """ai-edge-quantizer on one float file, calibrated once, quantised with any recipe.

    Args:
        float_model: The float32 ``.tflite`` (Conv3D already lowered for integer kernels).
        representative: Calibration data (training patches), as for
            :func:`tfhsi.export.tflite.convert`: a function returning an iterator of ``[x]``.
        activation_bits: 8 (int8, asymmetric) or 16 (int16, symmetric).
    """

    def __init__(
        self, float_model: bytes, representative: Representative, *, activation_bits: int = 8
    ) -> None:
        from ai_edge_quantizer.utils import tfl_interpreter_utils

        self.float_model = bytes(float_model)
        self.activation_bits = activation_bits
        self.layers = quant_layers(self.float_model)
        with _quiet():
            signatures = tfl_interpreter_utils.create_tfl_interpreter(
                self.float_model
            ).get_signature_list()
        self.signature = next(iter(signatures))
        self.input_name = signatures[self.signature]["inputs"][0]
        self.samples: list[np.ndarray] = []
        for item in representative():
            x = np.asarray(item if isinstance(item, np.ndarray) else item[0], np.float32)
            self.samples.extend(np.ascontiguousarray(x[i : i + 1]) for i in range(len(x)))
        if not self.samples:
            raise ConfigError(
                "the representative dataset yielded no samples; it must yield at least one [x] "
                "list (100-500 training patches is typical)."
            )
        self.calibration = self._calibrate()

    def _calibrate(self) -> Any:
        """Each tensor's range over all calibration samples (min of mins, max of maxes), as
        the TFLite converter calibrates. ``Quantizer.calibrate`` would keep a moving average
        of the per-sample ranges instead; with batch-1 samples that narrowed every activation
        range of a lowered hamida3d and cost OA against the converter's int8 file."""
        from ai_edge_quantizer import calibrator, recipe_manager
        from ai_edge_quantizer.utils import qsv_utils

        recipe = recipe_manager.RecipeManager()
        recipe.load_quantization_recipe(self._quantizer([(".*", 8)]).get_quantization_recipe())
        with _quiet():
            calibration = calibrator.Calibrator(
                self.float_model, qsv_update_func=qsv_utils.min_max_update
            )
            calibration.calibrate(self.data(self.samples), recipe)
        return calibration.get_model_qsvs()

    def data(self, samples: Sequence[np.ndarray]) -> dict[str, list[dict[str, np.ndarray]]]:
        """Batch-1 samples as ai-edge-quantizer's signature data."""
        return {self.signature: [{self.input_name: x} for x in samples]}

    def _quantizer(self, configs: Sequence[tuple[str, int]]) -> Any:
        q = _aeq().Quantizer(self.float_model)
        for regex, bits in configs:
            q.add_static_config(
                regex, "*", activation_num_bits=self.activation_bits, weight_num_bits=bits
            )
        return q

    def quantize(
        self,
        *,
        weight_bits: int,
        keep: Sequence[QuantLayer] = (),
        keep_bits: int = 8,
        only: Sequence[QuantLayer] | None = None,
    ) -> bytes:
        """The quantised file: every op at ``weight_bits`` (``keep``: at ``keep_bits``);
        ``only``: just those layers quantised, everything else left float."""
        if only is not None:  # int8 first, as below; "(?:)" makes it a second recipe key
            configs = [(layer.scope_regex, 8) for layer in only]
            configs += [("(?:)" + layer.scope_regex, weight_bits) for layer in only]
        else:
            # int8 first: an op without an int4 kernel (e.g. DEPTHWISE_CONV_2D) keeps the int8
            # config instead of staying float; the later, matching configs win.
            configs = [(".*", 8), ("^.*", weight_bits)]
            configs += [(layer.scope_regex, keep_bits) for layer in keep]
        q = self._quantizer(configs)
        with _quiet():
            result = q.quantize(self.calibration, enable_progress_report=False)
        return bytes(result.quantized_model)


@dataclass(frozen=True)
class MixedSearch:
    """What :func:`auto_mixed` tried and kept.

    Attributes:
        keep: Layer names kept at the higher precision.
        oa: Validation OA of the chosen file; ``reference_oa``: of every layer at
            ``keep_bits``; ``low_oa``: of every layer at ``weight_bits``.
        changed_pp: Share of validation pixels (pp) whose class the chosen file predicts
            differently from the all-``keep_bits`` file.
        sensitivity: Layer name → pp of validation predictions changed when only that layer
            is at ``weight_bits`` (the rest at ``keep_bits``), most sensitive first.
        trials: (kept layer names, validation OA, pp changed) of every file tried.
    """

    keep: list[str]
    oa: float
    reference_oa: float
    low_oa: float
    changed_pp: float
    sensitivity: dict[str, float]
    trials: list[tuple[list[str], float, float]] = field(default_factory=list)
    data: bytes = b""


def auto_mixed(
    quantizer: AeqQuantizer,
    validation: Validation,
    *,
    weight_bits: int = 4,
    keep_bits: int = 8,
    tolerance_pp: float = 0.5,
    keep: Sequence[QuantLayer] = (),
) -> MixedSearch:
    """The fewest layers kept at ``keep_bits`` (the rest at ``weight_bits``) whose file
    predicts the same class as the all-``keep_bits`` file on all but ``tolerance_pp`` % of
    the validation pixels.

    The rule bounds the OA cost (OA can fall by at most the share of changed predictions)
    and, unlike comparing OA alone, does not let flips to right and to wrong classes cancel
    out on a few hundred validation pixels (figures in ``docs/COMPRESSION.md``).

    Greedy by sensitivity: each layer alone at ``weight_bits`` (the rest at ``keep_bits``)
    ranks the layers by the predictions it changes (then by OA lost); then the 0, 1, 2, ...
    most sensitive are kept until the rule is met (at most one file per layer, so it is the
    fewest *in that order*, not an exhaustive search). ``keep``: layers kept whatever the
    search finds.
    """
    layers = quantizer.layers
    forced = {layer.name for layer in keep}
    reference = validation.predict(quantizer.quantize(weight_bits=keep_bits))
    reference_oa = validation.oa(reference)

    def changed_pp(predicted: np.ndarray) -> float:
        return float(np.mean(np.asarray(predicted) != reference)) * 100.0

    others = [layer for layer in layers if layer.name not in forced]
    rank: dict[str, tuple[float, float]] = {}
    for layer in others:
        rest = [other for other in layers if other.name != layer.name]
        alone = validation.predict(
            quantizer.quantize(weight_bits=weight_bits, keep=rest, keep_bits=keep_bits)
        )
        rank[layer.name] = (changed_pp(alone), reference_oa - validation.oa(alone))
    ranked = sorted(others, key=lambda layer: (-rank[layer.name][0], -rank[layer.name][1]))
    trials: list[tuple[list[str], float, float]] = []
    low_oa = float("nan")
    best: tuple[list[str], float, float, bytes] | None = None
    for k in range(len(ranked) + 1):
        kept = [layer for layer in layers if layer.name in forced] + ranked[:k]
        data = quantizer.quantize(weight_bits=weight_bits, keep=kept, keep_bits=keep_bits)
        predicted = validation.predict(data)
        oa, changed = validation.oa(predicted), changed_pp(predicted)
        names = [layer.name for layer in layers if layer in kept]
        trials.append((names, oa, changed))
        if k == 0:
            low_oa = oa
        if changed <= tolerance_pp + 1e-9:
            best = (names, oa, changed, data)
            break
    if best is None:  # every layer kept: the keep_bits file itself
        data = quantizer.quantize(weight_bits=keep_bits)
        best = ([layer.name for layer in layers], reference_oa, 0.0, data)
    return MixedSearch(
        keep=best[0],
        oa=best[1],
        reference_oa=reference_oa,
        low_oa=low_oa,
        changed_pp=best[2],
        sensitivity={layer.name: rank[layer.name][0] for layer in ranked},
        trials=trials,
        data=best[3],
    )


@dataclass(frozen=True)
class LayerError:
    """The error of one layer's output in a quantised file, against its float source."""

    name: str
    op: str
    mse: float
    snr: float
    cosine: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op": self.op,
            "mse": self.mse,
            "snr": self.snr,
            "cosine": self.cosine,
        }


def layer_errors(
    float_model: bytes,
    quantized: bytes,
    samples: Sequence[np.ndarray],
    *,
    layers: Sequence[QuantLayer] | None = None,
) -> list[LayerError]:
    """Per-layer output error of ``quantized`` against ``float_model`` on ``samples`` (batch-1
    float inputs), from ai-edge-quantizer's ``model_validator.compare_model`` (MSE, SNR,
    cosine similarity of each tensor, averaged over the samples). The two files must share
    tensor names (ai-edge-quantizer's files do; the converter's mostly do): a layer whose output
    the quantised file does not have is left out.
    """
    from ai_edge_quantizer import model_validator
    from ai_edge_quantizer.utils import tfl_interpreter_utils, validation_utils

    metric = validation_utils.ValidationErrorMetric
    with _quiet():
        signatures = tfl_interpreter_utils.create_tfl_interpreter(float_model).get_signature_list()
        signature = next(iter(signatures))
        name = signatures[signature]["inputs"][0]
        result = model_validator.compare_model(
            bytes(float_model),
            bytes(quantized),
            {signature: [{name: np.asarray(x, np.float32)} for x in samples]},
            error_metrics=[metric.MSE, metric.SNR, metric.COSINE_SIMILARITY],
            use_xnnpack=True,
            num_threads=1,
        )
    tensors = result.get_all_tensor_results()
    found = []
    for layer in layers if layers is not None else quant_layers(float_model):
        figures = next((tensors[t] for t in layer.outputs if t in tensors), None)
        if figures is None:
            continue
        found.append(
            LayerError(
                layer.name,
                layer.op,
                float(figures["mse"]),
                float(figures["snr"]),
                float(figures["cosine_similarity"]),
            )
        )
    return found
