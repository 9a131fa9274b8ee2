"""The report's tables as plain data (cells are strings), rendered by the terminal, Markdown and HTML.

One builder per table, so the terminal, ``report.md`` and ``report.html`` always show the same
figures. Accuracy is in percent (Kappa × 100) as ``mean ± std`` over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from tfhsi.report.aggregate import AggregateRow, MeanStd, teacher_reference
from tfhsi.report.pareto import pareto_front
from tfhsi.report.results import RunResults

__all__ = [
    "Column",
    "Table",
    "TableRow",
    "compare_table",
    "failures_table",
    "fmt_bytes",
    "fmt_count",
    "headline_table",
    "pareto_labels",
    "per_class_table",
    "runs_table",
    "seeds_table",
    "targets_table",
]

DASH = "—"
RowKind = Literal["", "teacher", "failed", "partial"]


@dataclass(frozen=True)
class Column:
    """A column; ``wrap`` lets long text (errors, reasons) break over lines."""

    name: str
    align: Literal["left", "right", "center"] = "right"
    wrap: bool = False


@dataclass
class TableRow:
    """Cells left to right; a row shorter than the columns has its last cell span the rest."""

    cells: list[str]
    kind: RowKind = ""

    def padded(self, width: int) -> list[str]:
        return self.cells + [""] * (width - len(self.cells))


@dataclass
class Table:
    """A titled grid of strings; ``notes`` explain the columns under the table."""

    title: str
    columns: list[Column]
    rows: list[TableRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def without_empty_columns(self, *, keep: int = 1) -> Table:
        """A copy without the columns (after the first ``keep``) that hold only dashes.

        Rows shorter than the columns (a spanning failure message) keep their length.
        """
        full = [r for r in self.rows if len(r.cells) == len(self.columns)]
        drop = {
            j
            for j in range(keep, len(self.columns))
            if full and all(r.cells[j] in (DASH, "") for r in full)
        }
        columns = [c for j, c in enumerate(self.columns) if j not in drop]
        rows = []
        for row in self.rows:
            spanning = len(row.cells) - 1 if len(row.cells) < len(self.columns) else None
            cells = [c for j, c in enumerate(row.cells) if j not in drop or j == spanning]
            rows.append(TableRow(cells, row.kind))
        return Table(self.title, columns, rows, list(self.notes))


# --- cell formats --------------------------------------------------------------------------


def fmt_stat(stat: MeanStd | None, *, scale: float = 100.0, digits: int = 2) -> str:
    return DASH if stat is None else stat.format(scale=scale, digits=digits)


def fmt_bytes(value: float | None) -> str:
    """Bytes in KiB / MiB (``"175.8 KiB"``); sizes of models and arenas."""
    if value is None:
        return DASH
    if value < 1024:
        return f"{value:.0f} B"
    if value < 1024**2:
        return f"{value / 1024:.1f} KiB"
    return f"{value / 1024**2:.2f} MiB"


def fmt_count(value: float | None) -> str:
    """``"44.6 k"``, ``"4.30 M"``, ``"1.20 G"``: parameters and MACs."""
    if value is None:
        return DASH
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.{1 if unit == 'k' else 2}f} {unit}"
    return f"{value:.0f}"


def fmt_ms(stat: MeanStd | float | None) -> str:
    if stat is None:
        return DASH
    if isinstance(stat, MeanStd):
        digits = 3 if stat.mean < 1 else 2
        return stat.format(scale=1.0, digits=digits)
    return f"{stat:.3f}" if stat < 1 else f"{stat:.2f}"


def fmt_bool(value: bool | None) -> str:
    return DASH if value is None else ("yes" if value else "no")


def fmt_fraction(value: float | None) -> str:
    return DASH if value is None or math.isnan(value) else f"{value * 100:.2f}"


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the run's tables ----------------------------------------------------------------------


def _latency_ms(row: AggregateRow) -> float | None:
    return None if row.latency is None else row.latency.mean


COSTS = {"size": lambda r: r.deploy_bytes, "latency": _latency_ms}


def pareto_labels(rows: Sequence[AggregateRow]) -> dict[str, set[str]]:
    """``{label: {"size", "latency"}}`` for the rows on each accuracy-vs-cost front."""
    out: dict[str, set[str]] = {}
    for name, cost in COSTS.items():
        usable = [r for r in rows if r.oa is not None and cost(r) is not None]
        points = [(float(cost(r)), r.oa.mean) for r in usable]  # type: ignore[arg-type, union-attr]
        for i in pareto_front(points):
            out.setdefault(usable[i].label, set()).add(name)
    return out


def _fits(row: AggregateRow) -> str:
    if not row.targets:
        return DASH
    fitting = [name for name, t in row.targets.items() if t.fits]
    return ", ".join(fitting) if fitting else "none"


def _seeds(row: AggregateRow) -> str:
    if not row.failures:
        return str(row.n)
    return f"{row.n} ({len(row.failures)} failed)"


def headline_table(results: RunResults, rows: Sequence[AggregateRow]) -> Table:
    """Teacher vs compressed: accuracy over seeds, cost, deployability; one line per variant/format."""
    reference = teacher_reference(rows)
    fronts = pareto_labels(rows)
    threads = {r.latency_threads for r in rows if r.latency_threads}
    cpu = results.environment.get("cpu")
    on = (f" with {threads.pop()} thread(s)" if len(threads) == 1 else "") + (
        f" on {cpu}" if cpu else ""
    )
    table = Table(
        title="Headline results",
        columns=[
            Column("variant", "left"), Column("model", "left"), Column("format", "left"),
            Column("precision", "left"), Column("seeds"), Column("OA %"), Column("AA %"),
            Column("κ ×100"), Column("ΔOA pp"),
            Column("params"), Column("MACs"), Column(".tflite"), Column("gzip"),
            Column("sparsity %"), Column("latency ms"), Column("arena"), Column("int8 e2e", "center"),
            Column("fits", "left", wrap=True),
        ],
    )  # fmt: skip
    for row in rows:
        if row.all_failed:
            message = f"failed: {_one_line(row.failures[0][1], 100)}"
            cells = [row.variant, row.model or DASH, row.format, DASH, _seeds(row), message]
            table.rows.append(TableRow(cells, "failed"))  # the message spans the rest
            continue
        if reference is None or row.oa is None:
            delta = DASH
        elif row is reference:
            delta = "ref"
        else:
            delta = f"{(row.oa.mean - reference.oa.mean) * 100:+.2f}"  # type: ignore[union-attr]
        kind: RowKind = "partial" if row.failures else ("teacher" if row.is_teacher else "")
        front = fronts.get(row.label, set())
        gzip = fmt_bytes(row.gzip_bytes) + (" ★" if "size" in front and row.gzip_bytes else "")
        raw = fmt_bytes(row.size_bytes) + (" ★" if "size" in front and not row.gzip_bytes else "")
        latency = fmt_ms(row.latency) + (" ★" if "latency" in front else "")
        table.rows.append(
            TableRow(
                [
                    row.variant, row.model or DASH, row.format, row.precision or DASH,
                    _seeds(row), fmt_stat(row.oa), fmt_stat(row.aa), fmt_stat(row.kappa), delta,
                    fmt_count(row.parameters), fmt_count(row.macs), raw, gzip,
                    fmt_fraction(row.sparsity), latency, fmt_bytes(row.arena_bytes),
                    fmt_bool(row.full_int8), _fits(row),
                ],
                kind,
            )
        )  # fmt: skip
    seeds = ", ".join(map(str, results.seeds)) or "?"
    table.notes = [
        f"mean ± sample std (ddof=1) over seeds {seeds}; Kappa × 100; ΔOA in percentage points "
        f"against the teacher{f' ({reference.label})' if reference else ''}.",
        f"latency: measured on the host CPU{on}, not on a microcontroller.",
        "format: the export preset asked for; precision: what the audit of the file found "
        "(mixed: float ops between integer ones).",
        ".tflite / gzip: file size raw and gzip-compressed; arena: TFLite Micro tensor arena; "
        "int8 e2e: every op and the input/output run in int8; fits: targets whose flash, RAM "
        "and op set hold the model.",
        "★ Pareto-optimal: no other result is both smaller (gzip size) or faster (latency) "
        "and more accurate.",
    ]
    return table.without_empty_columns(keep=3)


def short_reasons(reasons: Sequence[str]) -> str:
    """The failed checks of a target verdict in a few words each (results.json keeps them whole):
    ``FAIL: RAM: arena … = 991.8 KiB > 256.0 KiB`` → ``RAM 991.8 KiB > 256.0 KiB``,
    ``FAIL: tflm cannot run …; CONV_3D#1: CONV_3D has no TFLite Micro kernel`` → the last part."""
    short = []
    for reason in reasons:
        if not reason.startswith("FAIL: "):
            continue
        text = reason.removeprefix("FAIL: ")
        kind, _, rest = text.partition(": ")
        if kind in ("RAM", "flash") and " = " in rest:
            text = f"{kind} {rest.rsplit(' = ', 1)[1]}"
        elif "needs an int8 model" in text:
            text = "not int8"
        elif "stop mapping at " in text:
            text = "CPU from " + text.split("stop mapping at ", 1)[1].split(";", 1)[0]
        elif "; " in text:
            text = text.rsplit("; ", 1)[1]
            text = text.split(": ", 1)[1] if "#" in text.split(": ", 1)[0] else text
        short.append(text)
    return "; ".join(dict.fromkeys(short)) or "does not fit"


def targets_table(results: RunResults, rows: Sequence[AggregateRow]) -> Table | None:
    """Per target: fits or why not, and the estimated on-device latency."""
    names = list(dict.fromkeys([*results.targets, *(t for r in rows for t in r.targets)]))
    measured = [r for r in rows if r.targets]
    if not names or not measured:
        return None
    table = Table(
        title="Deployment targets",
        columns=[Column("variant/format", "left")] + [Column(n, "left", wrap=True) for n in names],
    )
    for row in measured:
        cells = [row.label]
        for name in names:
            fit = row.targets.get(name)
            if fit is None or fit.fits is None:
                cells.append(DASH)
                continue
            text = "fits" if fit.fits else "no: " + short_reasons(fit.reasons)
            if fit.estimated_latency_ms is not None:
                text += f" (≈{fmt_ms(fit.estimated_latency_ms)} ms)"
            cells.append(_one_line(text, 200))
        table.rows.append(TableRow(cells, "teacher" if row.is_teacher else ""))
    table.notes = ["≈ ms: estimated latency on the target, not measured on hardware."]
    rule_based = _edgetpu_targets(names)
    if rule_based:
        table.notes.append(
            f"{', '.join(rule_based)}: a rule-based verdict from the file's op table (8-bit ops "
            "the Edge TPU maps, tensor ranks); the Edge TPU compiler was not run."
        )
    return table


def _edgetpu_targets(names: Sequence[str]) -> list[str]:
    """The targets among ``names`` whose runtime is the Edge TPU (their verdict is static)."""
    from tfhsi.errors import TfhsiError
    from tfhsi.profile.targets import load_targets

    try:
        profiles = load_targets()
    except TfhsiError:
        return []
    return [n for n in names if n in profiles and profiles.get(n).runtime == "edgetpu"]


def per_class_table(results: RunResults, rows: Sequence[AggregateRow]) -> Table | None:
    """Per-class accuracy in percent: one line per class, one column per variant/format."""
    shown = [r for r in rows if r.per_class]
    if not shown:
        return None
    n_classes = max(len(r.per_class) for r in shown)
    names = list(results.class_names) + [
        f"class {k + 1}" for k in range(len(results.class_names), n_classes)
    ]
    table = Table(
        title="Per-class accuracy",
        columns=[Column("#"), Column("class", "left")] + [Column(r.label) for r in shown],
    )
    for k in range(n_classes):
        cells = [str(k + 1), names[k]]
        for row in shown:
            stat = row.per_class[k] if k < len(row.per_class) else None
            cells.append("n/a" if stat is None else stat.format(digits=1))
        table.rows.append(TableRow(cells))
    table.notes = [
        "Accuracy (recall) in %, mean ± std over seeds; n/a: class absent from the test pixels of every seed."
    ]
    return table


def seeds_table(results: RunResults) -> Table:
    """Every row of the record, one line per seed × variant × format, failed rows included."""
    table = Table(
        title="Per-seed results",
        columns=[
            Column("seed"), Column("variant", "left"), Column("format", "left"),
            Column("precision", "left"), Column("OA %"), Column("AA %"), Column("κ ×100"),
            Column(".tflite"), Column("gzip"),
            Column("latency ms"), Column("arena"), Column("int8 e2e", "center"),
            Column("status", "left", wrap=True),
        ],
    )  # fmt: skip
    for r in results.rows:
        status = f"failed: {_one_line(r.error or '', 120)}" if r.failed else "ok"
        table.rows.append(
            TableRow(
                [
                    str(r.seed), r.variant, r.format, r.precision or DASH,
                    fmt_fraction(r.oa), fmt_fraction(r.aa),
                    fmt_fraction(r.kappa), fmt_bytes(r.size_bytes), fmt_bytes(r.gzip_bytes),
                    fmt_ms(r.latency_ms), fmt_bytes(r.arena_bytes), fmt_bool(r.full_int8), status,
                ],
                "failed" if r.failed else "",
            )
        )  # fmt: skip
    return table


def failures_table(results: RunResults) -> Table | None:
    failed = [r for r in results.rows if r.failed]
    if not failed:
        return None
    table = Table(
        title="Failures",
        columns=[
            Column("seed"),
            Column("variant/format", "left"),
            Column("error", "left", wrap=True),
        ],
    )
    for r in failed:
        table.rows.append(
            TableRow([str(r.seed), f"{r.variant}/{r.format}", r.error or ""], "failed")
        )
    table.notes = [
        "A failed step is recorded and the run goes on; its figures are left out of the means."
    ]
    return table


Run = tuple[str, RunResults, Sequence[AggregateRow]]


def _flags(results: RunResults) -> str:
    flags = [("SYNTHETIC", results.dataset.synthetic), ("QUICK", results.quick)]
    return ", ".join(name for name, on in flags if on)


def runs_table(runs: Sequence[Run], run_dirs: Sequence[object]) -> Table:
    """What each compared run was: dataset, split, seeds, warnings, folder."""
    table = Table(
        title="Runs",
        columns=[
            Column("run", "left"), Column("dataset", "left"), Column("split", "left"),
            Column("seeds", "left"), Column("warnings", "left"), Column("folder", "left", wrap=True),
        ],
    )  # fmt: skip
    for (label, results, _), folder in zip(runs, run_dirs, strict=True):
        warn = ", ".join(filter(None, [_flags(results), "random split" * results.random_split]))
        seeds = ", ".join(map(str, results.seeds)) or DASH
        cells = [
            label,
            results.dataset.title,
            results.split or DASH,
            seeds,
            warn or DASH,
            str(folder),
        ]
        table.rows.append(TableRow(cells, "partial" if _flags(results) else ""))
    table.notes = ["Random splits leak (train and test patches overlap); compare like with like."]
    return table


def compare_table(runs: Sequence[Run]) -> Table:
    """Several runs side by side: one line per run × variant/format."""
    table = Table(
        title="Runs compared",
        columns=[
            Column("run", "left"), Column("variant/format", "left"), Column("precision", "left"),
            Column("seeds"), Column("OA %"), Column("AA %"), Column("κ ×100"), Column("params"),
            Column("gzip"), Column("latency ms"), Column("arena"), Column("int8 e2e", "center"),
            Column("fits", "left", wrap=True),
        ],
    )  # fmt: skip
    for label, results, rows in runs:
        flags = _flags(results)
        name = f"{label} [{flags}]" if flags else label
        for row in rows:
            if row.all_failed:
                message = f"failed: {_one_line(row.failures[0][1], 100)}"
                cells = [name, row.label, DASH, _seeds(row), message]
                table.rows.append(TableRow(cells, "failed"))
                continue
            table.rows.append(
                TableRow(
                    [
                        name, row.label, row.precision or DASH, _seeds(row), fmt_stat(row.oa),
                        fmt_stat(row.aa), fmt_stat(row.kappa), fmt_count(row.parameters),
                        fmt_bytes(row.deploy_bytes),
                        fmt_ms(row.latency), fmt_bytes(row.arena_bytes), fmt_bool(row.full_int8),
                        _fits(row),
                    ],
                    "partial" if row.failures else ("teacher" if row.is_teacher else ""),
                )
            )  # fmt: skip
    table.notes = [
        "mean ± sample std over each run's seeds; gzip: gzip-compressed .tflite (raw size when "
        "gzip was not measured); [SYNTHETIC] / [QUICK]: not for publication.",
    ]
    return table
