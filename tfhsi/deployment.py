"""Measuring one ``.tflite`` for deployment: audit + size + MACs + LiteRT latency + TFLM arena
+ per-target verdicts. Used by ``tfhsi profile`` and by the recipe runner, so both report
the same figures measured the same way.

Composes :mod:`tfhsi.export` (the static op audit) and :mod:`tfhsi.profile` (runtimes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tfhsi.errors import UnsupportedError

AUDIT_KEYS = {"tflm": "tflm", "edgetpu": "edgetpu", "litert": "litert-xnnpack"}
"""Target runtime → the audit verdict that decides it."""


@dataclass
class Measurement:
    """What one ``.tflite`` file measured; ``to_row()`` gives the results.json fields."""

    size_bytes: int
    gzip_bytes: int
    macs: int
    precision: str
    full_int8: bool
    float_ops: list[str]
    verdicts: dict[str, Any]
    latency_ms: float | None = None
    latency_threads: int | None = None
    arena_bytes: int | None = None
    tflm_error: str | None = None
    targets: dict[str, Any] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        return {
            "size_bytes": self.size_bytes,
            "gzip_bytes": self.gzip_bytes,
            "macs": self.macs,
            "precision": self.precision,
            "full_int8": self.full_int8,
            "float_ops": self.float_ops,
            "verdicts": self.verdicts,
            "latency_ms": self.latency_ms,
            "latency_threads": self.latency_threads,
            "arena_bytes": self.arena_bytes,
            "tflm_error": self.tflm_error,
            "targets": self.targets,
        }


def measure(
    data: bytes,
    *,
    targets: Sequence[str] = (),
    threads: int = 1,
    latency_runs: int = 50,
    tflm: bool = True,
    source: str = "<bytes>",
) -> Measurement:
    """Audits and profiles ``data``; TFLM is tried only when the audit says it can run it."""
    from tfhsi.export.inspect import audit
    from tfhsi.profile.latency import measure_latency
    from tfhsi.profile.macs import count_macs
    from tfhsi.profile.mcu import find_min_arena
    from tfhsi.profile.size import model_size
    from tfhsi.profile.targets import load_targets

    report = audit(data)
    size = model_size(data)
    result = Measurement(
        size_bytes=size.raw_bytes,
        gzip_bytes=size.gzip_bytes,
        macs=count_macs(data).per_sample,
        precision=report.precision,
        full_int8=report.is_full_int8,
        float_ops=sorted({op.name for op in report.float_ops}),
        verdicts={name: v.to_dict() for name, v in report.verdicts.items()},
    )
    stats = measure_latency(
        data, threads=threads, xnnpack=True, warmup=min(10, latency_runs), runs=latency_runs
    )
    result.latency_ms, result.latency_threads = stats.median_ms, threads
    tflm_verdict = report.verdicts.get("tflm")
    if tflm and tflm_verdict is not None and tflm_verdict.ok:
        try:
            result.arena_bytes = find_min_arena(data, source=source).min_bytes
        except UnsupportedError as exc:
            result.tflm_error = str(exc)
    elif tflm_verdict is not None and not tflm_verdict.ok:
        result.tflm_error = "; ".join(tflm_verdict.reasons[:2])
    profiles = load_targets()
    verdicts = {name: (v.ok, list(v.reasons)) for name, v in report.verdicts.items()}
    for assessment in assess_targets(
        [profiles.get(name) for name in targets],
        model_bytes=size.raw_bytes,
        arena_bytes=result.arena_bytes,
        macs=result.macs,
        verdicts=verdicts,
        int8=report.is_full_int8,
        tflm_error=result.tflm_error,
    ):
        result.targets[assessment.target] = assessment.to_dict()
    return result


def assess_targets(
    profiles: Sequence[Any],
    *,
    model_bytes: int,
    arena_bytes: int | None,
    macs: int | None,
    verdicts: dict[str, tuple[bool, list[str]]] | None,
    int8: bool | None,
    tflm_error: str | None,
) -> list[Any]:
    """Each target profile's fits / does-not-fit, given the audit verdict of its runtime."""
    from tfhsi.profile.targets import assess

    return [
        assess(
            profile,
            model_bytes=model_bytes,
            arena_bytes=arena_bytes,
            macs=macs,
            audit_verdict=(verdicts or {}).get(AUDIT_KEYS[profile.runtime]),
            int8=int8,
            runtime_error=tflm_error if profile.runtime == "tflm" else None,
        )
        for profile in profiles
    ]
