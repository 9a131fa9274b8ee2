"""Deployment target profiles (YAML) and the fits / does-not-fit assessment.

Shipped profiles live in ``tfhsi/profile/targets/*.yaml``; users add or override them with
YAML files in ``$TFHSI_TARGETS_DIR`` (``os.pathsep``-separated) or ``--targets-dir``. One
target per file; ``name`` defaults to the file stem and must equal it when given. A later
directory overrides an earlier one target by target. Files are validated strictly: an
unknown key or a wrong type is an error naming the file and the field.

How :func:`assess` decides, per kind:

* ``mcu`` (TFLite Micro): RAM needed = measured tensor arena + the profile's
  ``ram_overhead_bytes`` (stack, interpreter objects, optimised-kernel scratch; an
  assumption written in the profile); flash needed = model bytes + ``runtime_code_bytes``
  (TFLM runtime and kernels; an estimate). A float model on a ``requires_int8`` target,
  or a model TFLM cannot run, does not fit. Latency is *estimated* as
  ``MACs × cycles_per_mac / clock_hz``; non-MAC ops and memory stalls are ignored.
* ``edgetpu``: fits when the caller's static audit passed (8-bit ops the compiler maps);
  weights beyond the on-chip ``ram_bytes`` are streamed from the host (slower, still fits).
* ``phone`` (LiteRT CPU): fits when LiteRT loaded the model; the audit's notes (e.g. ops
  XNNPACK does not take) are passed on.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tfhsi.errors import ConfigError
from tfhsi.registry import Registry

__all__ = [
    "TARGETS_DIR_ENV",
    "Assessment",
    "TargetProfile",
    "assess",
    "load_target_file",
    "load_targets",
]

TARGETS_DIR_ENV = "TFHSI_TARGETS_DIR"
KIB = 1024


class TargetProfile(BaseModel):
    """One deployment target, as written in its YAML file.

    Attributes:
        name: Lower-case identifier (the file stem), used with ``--target``.
        title: Human-readable name.
        kind: ``mcu`` | ``edgetpu`` | ``phone``.
        runtime: ``tflm`` | ``edgetpu`` | ``litert``.
        ram_bytes: RAM for the model (MCU: on-chip SRAM; Edge TPU: on-chip parameter cache).
        flash_bytes: Storage for model and code (MCU flash).
        ram_overhead_bytes: RAM the firmware needs beside the arena (assumption).
        runtime_code_bytes: Flash for the runtime and kernels (estimate).
        cycles_per_mac: Average CPU cycles per int8 MAC of optimised kernels (assumption).
        clock_hz: CPU clock.
        requires_int8: Whether float models are ruled out.
        notes: Where the figures come from.
        sources: References for the figures.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    title: str
    kind: Literal["mcu", "edgetpu", "phone"]
    runtime: Literal["tflm", "edgetpu", "litert"]
    ram_bytes: int | None = Field(default=None, gt=0)
    flash_bytes: int | None = Field(default=None, gt=0)
    ram_overhead_bytes: int = Field(default=0, ge=0)
    runtime_code_bytes: int = Field(default=0, ge=0)
    cycles_per_mac: float | None = Field(default=None, gt=0)
    clock_hz: int | None = Field(default=None, gt=0)
    requires_int8: bool = False
    notes: str = ""
    sources: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> TargetProfile:
        expected = {"mcu": "tflm", "edgetpu": "edgetpu", "phone": "litert"}[self.kind]
        if self.runtime != expected:
            raise ValueError(
                f"kind {self.kind!r} runs on runtime {expected!r}, not {self.runtime!r}"
            )
        if self.kind == "mcu":
            missing = [
                f
                for f in ("ram_bytes", "flash_bytes", "cycles_per_mac", "clock_hz")
                if getattr(self, f) is None
            ]
            if missing:
                raise ValueError(f"an mcu target needs {', '.join(missing)}")
        if (self.cycles_per_mac is None) != (self.clock_hz is None):
            raise ValueError("give cycles_per_mac and clock_hz together (or neither)")
        return self

    def estimated_latency_ms(self, macs: int) -> float | None:
        """``macs × cycles_per_mac / clock_hz`` in ms (an estimate), if both are known."""
        if self.cycles_per_mac is None or self.clock_hz is None:
            return None
        return 1e3 * macs * self.cycles_per_mac / self.clock_hz


def _field_name(loc: Sequence[Any]) -> str:
    return ".".join(str(p) for p in loc) or "(file)"


def _validation_message(path: Path | str, exc: ValidationError) -> str:
    problems = []
    allowed = ", ".join(TargetProfile.model_fields)
    for err in exc.errors():
        where = _field_name(err["loc"])
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown field {where!r} (allowed: {allowed})")
        elif err["type"] == "missing":
            problems.append(f"field {where!r} is required")
        elif not err["loc"]:  # a check across fields
            problems.append(err["msg"].removeprefix("Value error, "))
        else:
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"field {where!r}: {msg} (got {err['input']!r})")
    return f"target file {path}: " + "; ".join(problems)


def load_target_file(path: str | os.PathLike[str], *, text: str | None = None) -> TargetProfile:
    """Reads and validates one target YAML file.

    Raises:
        ConfigError: unreadable YAML, not a mapping, unknown key, wrong type or value, or a
            ``name`` other than the file stem; the message names the file and the field.
    """
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8") if text is None else text
    except OSError as exc:
        raise ConfigError(f"cannot read target file {path}: {exc}") from exc
    return _parse_target(str(path), content)


@functools.lru_cache(maxsize=256)
def _parse_target(where: str, content: str) -> TargetProfile:
    """One validated profile per (file, text): recipes read every target file for each row."""
    path = Path(where)
    try:
        data = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise ConfigError(f"target file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"target file {path} must hold a mapping of fields (name, kind, ram_bytes, …), "
            f"got {type(data).__name__}"
        )
    stem = path.name.removesuffix(".yaml").removesuffix(".yml")
    data.setdefault("name", stem)
    if data["name"] != stem:
        raise ConfigError(
            f"target file {path}: field 'name' is {data['name']!r} but the file is named "
            f"{path.name!r}; rename the file to {data['name']}.yaml or drop the field"
        )
    try:
        return TargetProfile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_validation_message(path, exc)) from None


def _yaml_files(folder: Any) -> list[Any]:
    return sorted(
        (p for p in folder.iterdir() if p.name.endswith((".yaml", ".yml"))), key=lambda p: p.name
    )


def _env_dirs() -> list[Path]:
    value = os.environ.get(TARGETS_DIR_ENV, "")
    return [Path(p) for p in value.split(os.pathsep) if p]


def load_targets(
    extra_dirs: Iterable[str | os.PathLike[str]] = (), *, use_env: bool = True
) -> Registry[TargetProfile]:
    """The shipped target profiles, overridden / extended by user directories.

    Args:
        extra_dirs: Folders of ``*.yaml`` target files, applied after ``$TFHSI_TARGETS_DIR``.
        use_env: Whether to read ``$TFHSI_TARGETS_DIR``.

    Raises:
        ConfigError: a folder does not exist, or a file is invalid (file and field named),
            or two files in one folder define the same target.
    """
    found: dict[str, TargetProfile] = {}
    shipped = resources.files("tfhsi.profile").joinpath("targets")
    for item in _yaml_files(shipped):
        found[item.name.rsplit(".", 1)[0]] = load_target_file(
            Path(str(item)), text=item.read_text(encoding="utf-8")
        )
    folders = [*(_env_dirs() if use_env else []), *(Path(d) for d in extra_dirs)]
    for folder in folders:
        if not folder.is_dir():
            hint = f" (from ${TARGETS_DIR_ENV})" if folder in _env_dirs() else ""
            raise ConfigError(
                f"targets directory {folder}{hint} does not exist; create it with one "
                "<name>.yaml file per target, or fix the path"
            )
        seen: dict[str, Path] = {}
        for path in _yaml_files(folder):
            target = load_target_file(path)
            if target.name in seen:
                raise ConfigError(
                    f"target {target.name!r} is defined twice in {folder}: "
                    f"{seen[target.name].name} and {path.name}; keep one"
                )
            seen[target.name] = path
            found[target.name] = target
    registry: Registry[TargetProfile] = Registry("target")
    for name in sorted(found):
        registry.add(name, found[name])
    return registry


@dataclass(frozen=True)
class Assessment:
    """Whether a model fits a target, with the figures.

    Attributes:
        target: Target name.
        fits: ``True`` / ``False``, or ``None`` when a needed figure is missing.
        reasons: One finding per line: every check with its numbers.
        estimated_latency_ms: ``MACs × cycles/MAC ÷ clock`` for MCU targets (an estimate,
            not a measurement), else ``None``.
        ram_needed_bytes, flash_needed_bytes: The totals compared with the target's.
    """

    target: str
    fits: bool | None
    reasons: list[str] = field(default_factory=list)
    estimated_latency_ms: float | None = None
    ram_needed_bytes: int | None = None
    flash_needed_bytes: int | None = None

    @property
    def verdict(self) -> str:
        return {True: "fits", False: "does not fit", None: "unknown"}[self.fits]

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "verdict": self.verdict}


def _kib(n: int) -> str:
    return f"{n / KIB:,.1f} KiB"


class _Checks:
    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.failed = False
        self.unknown = False

    def passed(self, text: str) -> None:
        self.reasons.append(f"ok: {text}")

    def fail(self, text: str) -> None:
        self.failed = True
        self.reasons.append(f"FAIL: {text}")

    def missing(self, text: str) -> None:
        self.unknown = True
        self.reasons.append(f"unknown: {text}")

    def note(self, text: str) -> None:
        self.reasons.append(f"note: {text}")

    @property
    def fits(self) -> bool | None:
        return False if self.failed else None if self.unknown else True


def _notes(checks: _Checks, reasons: Sequence[str], limit: int = 5) -> None:
    for reason in reasons[:limit]:
        checks.note(reason)
    if len(reasons) > limit:
        checks.note(f"… and {len(reasons) - limit} more findings of the static audit")


def _check_budget(checks: _Checks, what: str, need: int, parts: str, have: int) -> None:
    relation = "<=" if need <= have else ">"
    text = f"{what} {parts} = {_kib(need)} {relation} {_kib(have)}"
    (checks.passed if need <= have else checks.fail)(text)


def assess(
    target: TargetProfile,
    *,
    model_bytes: int,
    arena_bytes: int | None,
    macs: int | None,
    audit_verdict: tuple[bool, Sequence[str]] | None = None,
    int8: bool | None = None,
    runtime_error: str | None = None,
) -> Assessment:
    """Checks a model's measured figures against a target profile.

    Args:
        target: The profile.
        model_bytes: Size of the ``.tflite`` file (it is the flash image of the model).
        arena_bytes: Measured TFLM arena, or ``None`` if not measured.
        macs: MACs per inference, for the MCU latency estimate.
        audit_verdict: ``(ok, reasons)`` of the static audit for this target's runtime
            (``tfhsi.export``), when the caller has one; required to decide Edge TPU.
        int8: Whether the model computes in integers only (``None``: unknown).
        runtime_error: Why the target's runtime could not run the model, if it could not
            (e.g. "TFLite Micro has no kernel for CONV_3D").
    """
    checks = _Checks()
    ram_need = flash_need = None
    latency = None
    if runtime_error:
        checks.fail(f"{target.runtime} cannot run the model: {runtime_error}")
    if target.requires_int8:
        if int8 is False:
            checks.fail(f"{target.title} needs an int8 model; this one computes in float")
        elif int8 is None:
            checks.missing("whether the model is int8")
    if target.kind == "mcu":
        assert target.ram_bytes is not None and target.flash_bytes is not None
        if arena_bytes is not None:
            ram_need = arena_bytes + target.ram_overhead_bytes
            _check_budget(
                checks,
                "RAM:",
                ram_need,
                f"arena {_kib(arena_bytes)} + overhead {_kib(target.ram_overhead_bytes)} (assumed)",
                target.ram_bytes,
            )
        elif not runtime_error:
            checks.missing("RAM: the TFLM arena was not measured")
        flash_need = model_bytes + target.runtime_code_bytes
        _check_budget(
            checks,
            "flash:",
            flash_need,
            f"model {_kib(model_bytes)} + runtime code {_kib(target.runtime_code_bytes)} (estimate)",
            target.flash_bytes,
        )
        audit_failed = audit_verdict is not None and not audit_verdict[0]
        if audit_failed and arena_bytes is None and not runtime_error:
            assert audit_verdict is not None
            _notes(checks, [f"audit: {r}" for r in audit_verdict[1]])
        if macs is not None and int8 is False:
            checks.note("no latency estimate: cycles_per_mac is for int8 kernels")
        elif macs is not None:
            latency = target.estimated_latency_ms(macs)
            if latency is not None and target.clock_hz is not None:
                checks.note(
                    f"latency estimate {latency:,.1f} ms = {macs:,} MACs × "
                    f"{target.cycles_per_mac} cycles/MAC ÷ {target.clock_hz / 1e6:g} MHz "
                    "(an estimate, not a measurement)"
                )
    elif target.kind == "edgetpu":
        if audit_verdict is None:
            checks.missing("Edge TPU compatibility was not audited (needs tfhsi.export)")
        else:
            ok, reasons = audit_verdict
            (checks.passed if ok else checks.fail)(
                reasons[0] if reasons else "Edge TPU audit " + ("passed" if ok else "failed")
            )
            _notes(checks, [r for r in reasons[1:] if "compiler was not run" not in r])
            checks.note("static audit only: run edgetpu_compiler on the file for the final word")
        if target.ram_bytes is not None and model_bytes > target.ram_bytes:
            checks.note(
                f"model {_kib(model_bytes)} > on-chip cache {_kib(target.ram_bytes)}: weights "
                "are streamed from host memory on every inference (slower)"
            )
    else:  # phone
        if not runtime_error:
            checks.passed("LiteRT loads and runs the model")
        if audit_verdict is not None:
            _notes(checks, audit_verdict[1])
        if target.ram_bytes is not None and model_bytes > target.ram_bytes:
            checks.fail(f"model {_kib(model_bytes)} > RAM budget {_kib(target.ram_bytes)}")
    return Assessment(
        target=target.name,
        fits=checks.fits,
        reasons=checks.reasons,
        estimated_latency_ms=latency,
        ram_needed_bytes=ram_need,
        flash_needed_bytes=flash_need,
    )
