"""Seeds folded together: one :class:`AggregateRow` per (variant, format), mean ± std over seeds."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tfhsi.report.results import ResultRow

__all__ = [
    "AggregateRow",
    "MeanStd",
    "TargetSummary",
    "aggregate_rows",
    "best_int8",
    "teacher_reference",
]

INT8_FORMATS = ("int8",)
"""Formats :func:`best_int8` picks from (records of older versions are read with today's
names: ``int8-lowered`` is ``int8``, see :func:`tfhsi.report.results.current_format`)."""


@dataclass(frozen=True)
class MeanStd:
    """Mean and sample standard deviation (``ddof=1``; 0.0 for one value) of ``n`` values."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float | None]) -> MeanStd | None:
        present = [float(v) for v in values if v is not None and not math.isnan(v)]
        if not present:
            return None
        arr = np.array(present)
        return cls(float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, len(arr))

    def format(self, *, scale: float = 100.0, digits: int = 2) -> str:
        """``"95.12 ± 0.34"`` (scaled, e.g. to percent); no ``±`` part for a single value."""
        mean = f"{self.mean * scale:.{digits}f}"
        return mean if self.n < 2 else f"{mean} ± {self.std * scale:.{digits}f}"


@dataclass(frozen=True)
class TargetSummary:
    """A target over seeds: ``fits`` only if every measured seed fits."""

    fits: bool | None
    reasons: tuple[str, ...] = ()
    estimated_latency_ms: float | None = None


@dataclass(frozen=True)
class AggregateRow:
    """One variant in one format (the preset asked for), over the seeds where it succeeded;
    ``precision``: what the audit of the files found (``a / b`` when seeds differ)."""

    variant: str
    format: str
    model: str
    stage: str
    seeds: tuple[int, ...]
    failures: tuple[tuple[int, str], ...]
    oa: MeanStd | None
    aa: MeanStd | None
    kappa: MeanStd | None
    per_class: tuple[MeanStd | None, ...]
    precision: str | None = None
    confusion: np.ndarray | None = field(default=None, compare=False)
    parameters: float | None = None
    macs: float | None = None
    size_bytes: float | None = None
    gzip_bytes: float | None = None
    sparsity: float | None = None
    latency: MeanStd | None = None
    latency_threads: int | None = None
    arena_bytes: float | None = None
    full_int8: bool | None = None
    targets: dict[str, TargetSummary] = field(default_factory=dict)
    maps: tuple[tuple[int, str], ...] = ()
    tflite: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        """Seeds that produced a result."""
        return len(self.seeds)

    @property
    def label(self) -> str:
        return f"{self.variant}/{self.format}"

    @property
    def is_teacher(self) -> bool:
        return self.stage == "teacher" or self.variant == "teacher"

    @property
    def all_failed(self) -> bool:
        return not self.seeds and bool(self.failures)

    @property
    def deploy_bytes(self) -> float | None:
        """gzip size of the ``.tflite`` when known, else its raw size."""
        return self.gzip_bytes if self.gzip_bytes is not None else self.size_bytes


def _mean_of(values: Sequence[float | None]) -> float | None:
    stat = MeanStd.of(values)
    return None if stat is None else stat.mean


def _mean(rows: Sequence[ResultRow], get: Callable[[ResultRow], float | None]) -> float | None:
    return _mean_of([get(r) for r in rows])


def _all(values: list[bool | None]) -> bool | None:
    known = [v for v in values if v is not None]
    return None if not known else all(known)


def _targets(rows: Sequence[ResultRow]) -> dict[str, TargetSummary]:
    names = list(dict.fromkeys(name for row in rows for name in row.targets))
    out = {}
    for name in names:
        fits = [row.targets[name] for row in rows if name in row.targets]
        out[name] = TargetSummary(
            fits=_all([f.fits for f in fits]),
            reasons=tuple(dict.fromkeys(reason for f in fits for reason in f.reasons)),
            estimated_latency_ms=_mean_of([f.estimated_latency_ms for f in fits]),
        )
    return out


def _confusion(rows: Sequence[ResultRow]) -> np.ndarray | None:
    matrices = [np.asarray(r.confusion, dtype=np.int64) for r in rows if r.confusion]
    shapes = {m.shape for m in matrices}
    return sum(matrices[1:], matrices[0]) if matrices and len(shapes) == 1 else None


def _aggregate(group: list[ResultRow]) -> AggregateRow:
    ok = [r for r in group if not r.failed]
    first = ok[0] if ok else group[0]
    n_classes = max((len(r.per_class_accuracy) for r in ok), default=0)
    per_class = tuple(
        MeanStd.of([r.per_class_accuracy[k] for r in ok if k < len(r.per_class_accuracy)])
        for k in range(n_classes)
    )
    threads = {r.latency_threads for r in ok if r.latency_threads is not None}
    return AggregateRow(
        variant=first.variant,
        format=first.format,
        model=first.model,
        stage=first.stage,
        seeds=tuple(r.seed for r in ok),
        failures=tuple((r.seed, r.error or "") for r in group if r.failed),
        oa=MeanStd.of([r.oa for r in ok]),
        aa=MeanStd.of([r.aa for r in ok]),
        kappa=MeanStd.of([r.kappa for r in ok]),
        per_class=per_class,
        precision=" / ".join(sorted({r.precision for r in ok if r.precision})) or None,
        confusion=_confusion(ok),
        parameters=_mean(ok, lambda r: r.parameters),
        macs=_mean(ok, lambda r: r.macs),
        size_bytes=_mean(ok, lambda r: r.size_bytes),
        gzip_bytes=_mean(ok, lambda r: r.gzip_bytes),
        sparsity=_mean(ok, lambda r: r.sparsity),
        latency=MeanStd.of([r.latency_ms for r in ok]),
        latency_threads=threads.pop() if len(threads) == 1 else None,
        arena_bytes=_mean(ok, lambda r: r.arena_bytes),
        full_int8=_all([r.full_int8 for r in ok]),
        targets=_targets(ok),
        maps=tuple((r.seed, r.map) for r in ok if r.map),
        tflite=next((r.tflite for r in ok if r.tflite), None),
        notes=tuple(dict.fromkeys(note for r in ok for note in r.notes)),
    )


def aggregate_rows(rows: Sequence[ResultRow]) -> list[AggregateRow]:
    """Groups rows by (variant, format), in order of first appearance, over seeds.

    Failed rows are counted in ``failures`` and left out of every mean; a group whose every
    seed failed still appears (``all_failed``) so reports can show it.
    """
    groups: dict[tuple[str, str], list[ResultRow]] = {}
    for row in rows:
        groups.setdefault((row.variant, row.format), []).append(row)
    return [_aggregate(group) for group in groups.values()]


def teacher_reference(rows: Sequence[AggregateRow]) -> AggregateRow | None:
    """The teacher's Keras result (else its fp32 ``.tflite``, else any teacher row) with an OA."""
    teachers = [r for r in rows if r.is_teacher and r.oa is not None]
    for fmt in ("keras", "fp32"):
        for row in teachers:
            if row.format == fmt:
                return row
    return teachers[0] if teachers else None


def best_int8(rows: Sequence[AggregateRow]) -> AggregateRow | None:
    """The int8 result with the highest mean OA, preferring compressed variants over the teacher
    and files the audit found int8 end to end."""
    candidates = [
        r for r in rows if (r.format in INT8_FORMATS or r.precision == "int8") and r.oa is not None
    ]
    students = [r for r in candidates if not r.is_teacher] or candidates
    if not students:
        return None
    return max(students, key=lambda r: (r.full_int8 is not False, r.oa.mean))  # type: ignore[union-attr]
