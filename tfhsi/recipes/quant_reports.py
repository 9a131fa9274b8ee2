"""The per-layer quantisation report of a recipe variant that exports int4 weights.

A variant exporting an ai-edge-quantizer preset (``w4a8``, ``auto-mixed``) gets, on the
recipe's first seed, :func:`tfhsi.experiment.quantisation.quant_report` of its model: each
layer's output error and the validation OA it costs alone at int4, written beside its exports
(``quant_report/<model>_w4a8.{json,md,png}``) and shown in the run's report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from tfhsi.errors import TfhsiError
from tfhsi.export.presets import PRESETS
from tfhsi.methods import ModelState

QUANT_REPORT = "quant_report"
"""The row key naming the report's JSON, relative to the run folder."""

PRESET = "w4a8"
"""The preset whose per-layer figures the report shows (every layer int4 is what ranks them)."""

AEQ_PRESETS = frozenset(name for name, spec in PRESETS.items() if spec.aeq is not None)
"""The presets ai-edge-quantizer makes (their rows link the report)."""


def write_quant_report(
    state: ModelState,
    presets: Sequence[str],
    keep_int8: Sequence[str],
    folder: Path,
    run_dir: Path,
    log: Callable[[str], None],
) -> str | None:
    """Writes (or finds, when resumed) the variant's ``w4a8`` report; returns its JSON path
    relative to ``run_dir``, or None when no preset uses ai-edge-quantizer or the report
    cannot be made (e.g. a split without validation pixels; the reason is logged)."""
    if not AEQ_PRESETS.intersection(presets):
        return None
    from tfhsi.experiment.quantisation import quant_report, report_stem

    out = folder / QUANT_REPORT
    path = out / f"{report_stem(state.model.name, PRESET)}.json"
    if not path.is_file():
        log(f"  quant-report {PRESET} (each layer alone at int4, validation pixels)")
        try:
            report, _ = quant_report(
                state.model, state.prepared, preset=PRESET, keep_int8=list(keep_int8) or None
            )
        except TfhsiError as exc:
            log(f"  quant-report skipped: {exc}")
            return None
        path = report.save(out)
    return path.relative_to(run_dir).as_posix()
