"""Budgets: sizes written as ``64KiB`` / ``1MiB``, a target's limits, and whether a measured
model keeps within them.

The hard limits of a search are the target profile's (RAM = arena + the profile's overhead,
flash = model + runtime code, int8 where the target needs it, a runtime that can run the
model) and the explicit ``--max-arena``, ``--max-flash`` (the ``.tflite`` file, the model's
flash image) and ``--max-latency`` (the target's estimate from MACs, else the host's LiteRT
median). :func:`violations` turns a measurement into Optuna constraint values (≤ 0 means
kept); an untrained int8 conversion has the arena and flash of the trained one, so a trial
is checked before it trains (:func:`precheck` in :mod:`tfhsi.search.trial`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ByteSize, TypeAdapter, ValidationError

from tfhsi.errors import ConfigError

KIB = 1024
_SIZE = TypeAdapter(ByteSize)
_FORM = re.compile(r"\d+(\.\d+)?\s*([kKmMgG]i?[bB]|[bB])?")


def parse_size(value: str | int, *, option: str = "size") -> int:
    """Bytes from ``65536``, ``"64KiB"``, ``"64 KiB"``, ``"1MiB"``, ``"1.5MB"`` (SI: ``kB`` /
    ``MB`` are powers of 1000, ``KiB`` / ``MiB`` of 1024).

    Raises:
        ConfigError: naming ``option`` and the accepted forms.
    """
    text = value.strip() if isinstance(value, str) else value
    try:
        well_formed = not isinstance(text, str) or _FORM.fullmatch(text) is not None
        size = int(_SIZE.validate_python(text)) if well_formed else -1
    except ValidationError:
        size = -1
    if size <= 0:
        raise ConfigError(
            f"{option}: {value!r} is not a size; write bytes (65536) or a number with a unit: "
            "64KiB, 1MiB (powers of 1024) or 64kB, 1MB (powers of 1000)."
        )
    return size


def kib(n: float | None) -> str:
    return "-" if n is None else f"{n / KIB:,.1f} KiB"


@dataclass(frozen=True)
class Budget:
    """The hard limits a fitting model keeps within (None: no such limit).

    Attributes:
        target: The target profile's name.
        arena_bytes: TFLite Micro arena (target RAM minus its overhead, or ``--max-arena``).
        flash_bytes: ``.tflite`` bytes (target flash minus runtime code, or ``--max-flash``).
        latency_ms: Estimated (or host) latency, ``--max-latency``.
        int8: The target runs integer models only.
    """

    target: str
    arena_bytes: int | None
    flash_bytes: int | None
    latency_ms: float | None
    int8: bool

    def describe(self) -> str:
        parts = [f"arena ≤ {kib(self.arena_bytes)}" if self.arena_bytes else ""]
        parts.append(f"model ≤ {kib(self.flash_bytes)}" if self.flash_bytes else "")
        parts.append(f"latency ≤ {self.latency_ms:g} ms" if self.latency_ms else "")
        return f"{self.target}: " + (", ".join(p for p in parts if p) or "its runtime only")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tighter(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def make_budget(
    target: str,
    *,
    max_arena: str | int | None = None,
    max_flash: str | int | None = None,
    max_latency_ms: float | None = None,
) -> Budget:
    """The target profile's limits, tightened by the explicit ones.

    Raises:
        ConfigError: unknown target (with the valid names), a malformed size, a latency ≤ 0.
    """
    from tfhsi.profile.targets import load_targets

    profile = load_targets().get(target)
    arena = flash = None
    if profile.kind == "mcu" and profile.ram_bytes and profile.flash_bytes:
        arena = profile.ram_bytes - profile.ram_overhead_bytes
        flash = profile.flash_bytes - profile.runtime_code_bytes
    if max_latency_ms is not None and max_latency_ms <= 0:
        raise ConfigError(f"--max-latency must be > 0 ms, got {max_latency_ms}.")
    return Budget(
        target=profile.name,
        arena_bytes=_tighter(
            arena, None if max_arena is None else parse_size(max_arena, option="--max-arena")
        ),
        flash_bytes=_tighter(
            flash, None if max_flash is None else parse_size(max_flash, option="--max-flash")
        ),
        latency_ms=max_latency_ms,
        int8=profile.requires_int8,
    )


@dataclass(frozen=True)
class Figures:
    """What a trial's exported file measured (the inputs of the constraints)."""

    arena_bytes: int | None
    size_bytes: int
    macs: int
    latency_ms: float | None
    """The target's estimate, else the host's LiteRT median."""
    full_int8: bool
    fits: bool | None
    """The target profile's verdict (runtime, op set, int8, RAM, flash)."""
    reasons: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: dict[str, Any], target: str) -> Figures:
        """From :meth:`tfhsi.deployment.Measurement.to_row`."""
        verdict = row.get("targets", {}).get(target, {})
        estimate = verdict.get("estimated_latency_ms")
        return cls(
            arena_bytes=row.get("arena_bytes"),
            size_bytes=int(row["size_bytes"]),
            macs=int(row["macs"]),
            latency_ms=estimate if estimate is not None else row.get("latency_ms"),
            full_int8=bool(row.get("full_int8")),
            fits=verdict.get("fits"),
            reasons=tuple(r for r in verdict.get("reasons", []) if r.startswith("FAIL")),
        )


def violations(figures: Figures, budget: Budget) -> list[float]:
    """Optuna constraint values, one per limit: ≤ 0 kept, > 0 broken (relative excess).

    Order: arena, flash, latency, the target's own verdict (1.0 when it says "does not fit"
    for a reason the other three do not cover: runtime, op set, int8).
    """

    def over(value: float | None, limit: float | None) -> float:
        if limit is None:
            return 0.0
        if value is None:
            return 1.0  # not measurable (e.g. no arena: the runtime cannot run it)
        return (value - limit) / limit

    return [
        over(figures.arena_bytes, budget.arena_bytes),
        over(figures.size_bytes, budget.flash_bytes),
        over(figures.latency_ms, budget.latency_ms),
        0.0 if figures.fits is not False else 1.0,
    ]


def broken(figures: Figures, budget: Budget) -> list[str]:
    """The limits ``figures`` break, one phrase each (empty: it fits)."""
    names = ("arena", "model", "latency", budget.target)
    values = (
        kib(figures.arena_bytes),
        kib(figures.size_bytes),
        "-" if figures.latency_ms is None else f"{figures.latency_ms:.2f} ms",
        "; ".join(figures.reasons) or "does not fit",
    )
    limits = (
        kib(budget.arena_bytes),
        kib(budget.flash_bytes),
        f"{budget.latency_ms} ms",
        "",
    )
    found = []
    for name, value, limit, v in zip(
        names, values, limits, violations(figures, budget), strict=True
    ):
        if v > 0:
            found.append(f"{name} {value} > {limit}" if limit else f"{name}: {value}")
    return found
