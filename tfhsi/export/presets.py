"""The export presets: one declarative table that the converter, the recipe schema, the CLI,
the runner and the reports read. Adding a preset is adding a row here (see CONTRIBUTING.md).

A preset is a *request*; what a file is comes from :func:`tfhsi.export.inspect.audit` of the
file (its op table), and reports and cards show the audit's precision. A preset with a
``promise`` is held to it: ``int8`` and ``int16x8`` files are integer end to end (Conv3D is
lowered to Conv2D for them), or the export fails (:func:`tfhsi.deployment.export_tflite`);
``int8-mixed`` is the converter's default result, float islands and all. ``w4a8`` and
``auto-mixed`` are made by ai-edge-quantizer from the float (lowered) fp32 file
(:mod:`tfhsi.export.aeq`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from tfhsi.registry import Registry

Conv3d = Literal["lower", "keep"]
Quantizer = Literal["converter", "ai-edge-quantizer"]
Promise = Literal["int8", "int16x8", "w4a8", "w4/8a8"]


@dataclass(frozen=True)
class AeqRecipe:
    """What ai-edge-quantizer does to the float (lowered) fp32 file of a model.

    Attributes:
        weight_bits, activation_bits: Static (full integer) quantisation of every op it
            supports: channelwise symmetric weights, int8 asymmetric / int16 symmetric
            activations calibrated on training patches.
        keep_bits: The weight bits of the layers kept at higher precision (``keep_int8``).
        search: ``"auto-mixed"``: the smallest set of layers kept at ``keep_bits`` whose file
            changes at most ``tolerance_pp`` % of the ``keep_bits`` file's validation
            predictions, so validation OA is within ``tolerance_pp`` of it (greedy, most
            sensitive layer first, see :func:`tfhsi.export.aeq.auto_mixed`).
        tolerance_pp: Share of validation predictions (pp) the search may change.
    """

    weight_bits: int
    activation_bits: int = 8
    keep_bits: int = 8
    search: Literal["none", "auto-mixed"] = "none"
    tolerance_pp: float = 0.5


@dataclass(frozen=True)
class PresetSpec:
    """One export preset.

    Attributes:
        name: What recipes, the CLI and the Python API call it.
        description: One line for help texts.
        weights, activations: The dtypes it asks for (the audit says what the file has).
        calibration: Needs representative data (activation ranges).
        conv3d: What a model with Conv3D gets: ``"lower"``: its Conv3D layers are lowered to
            Conv2D first (TFLite has no integer CONV_3D kernel), the file keeps the preset's
            name; ``"keep"``: converted as is.
        promise: The precision the audit must find in the file (every op integer, see
            :func:`tfhsi.export.inspect.audit`); otherwise the export fails, naming the float
            ops. None: the audit's precision is recorded, not enforced.
        also_accepts: Other audit precisions that keep the promise: ``w4a8`` of a model
            with an op that has no int4 kernel (DEPTHWISE_CONV_2D keeps int8 weights) is
            ``w4/8a8``; ``auto-mixed`` may end with every layer int4 (the ``w4a8`` file) or
            every layer int8.
        same_as: The preset whose file this one is when the audit finds that preset's
            ``promise`` met (e.g. ``int8-mixed`` of a model with no float op is the ``int8``
            file): such an export is refused as a duplicate.
        optimize: Ask the converter for ``Optimize.DEFAULT``.
        float16: Weights stored as float16.
        io: Input/output dtype of the file (None: float32).
        ops: The converter op set it must fit (None: TFLite builtins).
        runtimes: Runtimes that can run such a file when every op allows it.
        quantizer: Who makes the file: the TFLite ``"converter"`` from the Keras model, or
            ``"ai-edge-quantizer"`` from the float (lowered) fp32 file and ``aeq``.
        aeq: The ai-edge-quantizer recipe (rows with ``quantizer="ai-edge-quantizer"``).
    """

    name: str
    description: str
    weights: str
    activations: str
    calibration: bool = False
    conv3d: Conv3d = "keep"
    promise: Promise | None = None
    also_accepts: tuple[str, ...] = ()
    same_as: str | None = None
    optimize: bool = True
    float16: bool = False
    io: Literal["int8", "int16"] | None = None
    ops: Literal["int16x8"] | None = None
    runtimes: tuple[str, ...] = ("litert-xnnpack",)
    quantizer: Quantizer = "converter"
    aeq: AeqRecipe | None = None

    @property
    def accepts(self) -> tuple[str, ...]:
        """The audit precisions that keep :attr:`promise` (empty: nothing is enforced)."""
        return (self.promise, *self.also_accepts) if self.promise else ()


PRESETS: Registry[PresetSpec] = Registry("export preset")

_TABLE = (
    PresetSpec(
        "fp32", "float32 weights and compute", "float32", "float32", optimize=False,
        runtimes=("litert-xnnpack", "tflm"),
    ),
    PresetSpec(
        "fp16", "float16 weights, DEQUANTIZE'd to float32 at load; float32 compute",
        "float16", "float32", float16=True,
    ),
    PresetSpec("dynamic", "int8 weights, float32 activations (dynamic range)", "int8", "float32"),
    PresetSpec(
        "int8", "full integer quantisation, int8 end to end (Conv3D lowered), int8 input and output",
        "int8", "int8", calibration=True, conv3d="lower", io="int8", promise="int8",
        runtimes=("litert-xnnpack", "tflm", "edgetpu"),
    ),
    PresetSpec(
        "int8-mixed", "the converter's int8 result as is: int8 where kernels exist, float "
        "islands elsewhere (e.g. CONV_3D); no lowering", "int8", "int8 + float32 islands",
        calibration=True, io="int8", same_as="int8",
    ),
    PresetSpec(
        "int16x8", "int16 activations, int8 weights, int16 input and output (Conv3D lowered)",
        "int8", "int16", calibration=True, conv3d="lower", io="int16", ops="int16x8",
        promise="int16x8", runtimes=("litert-xnnpack", "tflm"),
    ),
    PresetSpec(
        "w4a8", "int4 weights, int8 activations, full integer (Conv3D lowered; ai-edge-quantizer)",
        "int4", "int8", calibration=True, conv3d="lower", promise="w4a8",
        also_accepts=("w4/8a8",),
        quantizer="ai-edge-quantizer", aeq=AeqRecipe(weight_bits=4),
    ),
    PresetSpec(
        "auto-mixed", "int4 weights except the fewest layers kept int8 that change at most "
        "0.5 % of int8's validation predictions, so OA is within 0.5 pp (Conv3D lowered; "
        "ai-edge-quantizer)", "int4 + int8", "int8",
        calibration=True, conv3d="lower", promise="w4/8a8", also_accepts=("w4a8", "int8"),
        same_as="w4a8", quantizer="ai-edge-quantizer",
        aeq=AeqRecipe(weight_bits=4, search="auto-mixed"),
    ),
)  # fmt: skip
for _spec in _TABLE:
    PRESETS.add(_spec.name, _spec)

PRESET_NAMES: tuple[str, ...] = tuple(spec.name for spec in _TABLE)
"""The preset names in table order."""


class _PresetEnum(str, Enum):
    """Behaviour of :data:`Preset`, whose members are generated from the table."""

    @classmethod
    def parse(cls, value: _PresetEnum | str) -> _PresetEnum:
        """The preset named ``value`` (case-insensitive); ConfigError otherwise."""
        from tfhsi.errors import ConfigError

        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            valid = ", ".join(PRESET_NAMES)
            raise ConfigError(f"unknown export preset {value!r}; valid presets: {valid}.") from None

    @property
    def spec(self) -> PresetSpec:
        return PRESETS.get(self.value)

    @property
    def needs_representative(self) -> bool:
        return self.spec.calibration

    @property
    def needs_validation(self) -> bool:
        """The preset searches on validation pixels (``auto-mixed``)."""
        return self.spec.aeq is not None and self.spec.aeq.search != "none"


Preset = _PresetEnum(  # type: ignore[call-overload]
    "Preset",
    {n.upper().replace("-", "_"): n for n in PRESET_NAMES},
    module=__name__,
    qualname="Preset",
)
"""The presets as an enum (``Preset.INT8``, ``Preset.INT8_MIXED``), generated from :data:`PRESETS`."""


def lowers_conv3d(preset: str, *, three_d: bool) -> bool:
    """Whether ``preset`` lowers the Conv3D layers of a model (``three_d``: it has some)."""
    return three_d and PRESETS.get(preset).conv3d == "lower"


def export_jobs(presets: list[str], *, three_d: bool) -> list[tuple[str, bool]]:
    """(preset, lower) for each export a model gets from ``presets``: one file per preset,
    named after it; a model with Conv3D (``three_d``, when lowering is allowed) is lowered for
    the presets whose ``conv3d`` rule says so (int8, int16x8), never for the others.
    """
    return [(name, lowers_conv3d(name, three_d=three_d)) for name in presets]
