"""The export presets: one declarative table that the converter, the recipe schema, the CLI,
the runner and the reports read. Adding a preset is adding a row here (see CONTRIBUTING.md).

A preset is a *request*; what a file is comes from :func:`tfhsi.export.inspect.audit` of the
file (its op table), and names in reports and cards follow the audit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from tfhsi.registry import Registry

Conv3d = Literal["as_is", "also_lowered", "lowered_only"]


@dataclass(frozen=True)
class PresetSpec:
    """One export preset.

    Attributes:
        name: What recipes, the CLI and the Python API call it.
        description: One line for help texts.
        weights, activations: The dtypes it asks for (the audit says what the file has).
        calibration: Needs representative data (activation ranges).
        conv3d: What a model with Conv3D gets: exported as is, as is *and* with Conv3D lowered
            to Conv2D (``<name>-lowered``), or only lowered (the op set has no CONV_3D).
        optimize: Ask the converter for ``Optimize.DEFAULT``.
        float16: Weights stored as float16.
        io: Input/output dtype of the file (None: float32).
        ops: The converter op set it must fit (None: TFLite builtins).
        runtimes: Runtimes that can run such a file when every op allows it.
    """

    name: str
    description: str
    weights: str
    activations: str
    calibration: bool = False
    conv3d: Conv3d = "as_is"
    optimize: bool = True
    float16: bool = False
    io: Literal["int8", "int16"] | None = None
    ops: Literal["int16x8"] | None = None
    runtimes: tuple[str, ...] = ("litert-xnnpack",)


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
        "int8", "full integer quantisation, int8 input and output", "int8", "int8",
        calibration=True, conv3d="also_lowered", io="int8",
        runtimes=("litert-xnnpack", "tflm", "edgetpu"),
    ),
    PresetSpec(
        "int16x8", "int16 activations, int8 weights, int16 input and output", "int8", "int16",
        calibration=True, conv3d="lowered_only", io="int16", ops="int16x8",
        runtimes=("litert-xnnpack", "tflm"),
    ),
)  # fmt: skip
for _spec in _TABLE:
    PRESETS.add(_spec.name, _spec)

PRESET_NAMES: tuple[str, ...] = tuple(spec.name for spec in _TABLE)
"""The preset names in table order."""

LOWERED_SUFFIX = "-lowered"
"""Label of an export whose Conv3D layers were lowered to Conv2D first."""


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


Preset = _PresetEnum(  # type: ignore[call-overload]
    "Preset", {n.upper(): n for n in PRESET_NAMES}, module=__name__, qualname="Preset"
)
"""The presets as an enum (``Preset.INT8``), generated from :data:`PRESETS`."""


def export_jobs(presets: list[str], *, three_d: bool) -> list[tuple[str, str, bool]]:
    """(label, preset, lowered) for each export a model gets from ``presets``.

    A model with Conv3D (``three_d``, when lowering is allowed) follows each preset's
    ``conv3d`` rule: e.g. int8 gives ``int8`` (the converter's result, audited as it is) and
    ``int8-lowered``; int16x8 only ``int16x8-lowered``.
    """
    jobs: list[tuple[str, str, bool]] = []
    for name in presets:
        rule = PRESETS.get(name).conv3d if three_d else "as_is"
        if rule in ("as_is", "also_lowered"):
            jobs.append((name, name, False))
        if rule in ("also_lowered", "lowered_only"):
            jobs.append((name + LOWERED_SUFFIX, name, True))
    return jobs
