"""``tfhsi report``: show a run in the terminal, build its report files, compare runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tfhsi.cli._console import console

if TYPE_CHECKING:
    from rich.table import Table as RichTable

    from tfhsi.report.tables import Table

app = typer.Typer(
    help="Show, build and compare reports of recipe runs (never imports TensorFlow).",
    no_args_is_help=True,
)

RunDir = Annotated[
    Path, typer.Argument(help="A run directory (runs/<recipe>/<stamp>) holding results.json.")
]
_STYLES = {"failed": "red", "teacher": "cyan", "partial": "yellow"}
_NOTICE_STYLES = {"synthetic": "bold white on red", "quick": "bold black on yellow",
                  "failed": "bold red", "leak": "blue"}  # fmt: skip


def _terminal_rows(table: Table) -> list[list[str]]:
    """Rows padded to full width; a spanning failure message becomes "failed" (see Failures)."""
    width = len(table.columns)
    return [
        row.cells[:-1] + ["failed"] + [""] * (width - len(row.cells))
        if len(row.cells) < width
        else list(row.cells)
        for row in table.rows
    ]


def split_columns(table: Table, at: str, *, keys: int) -> list[Table]:
    """Two narrower tables for a terminal: columns before ``at``, then the first ``keys`` + the rest."""
    from tfhsi.report.tables import Table as ReportTable
    from tfhsi.report.tables import TableRow

    names = [c.name for c in table.columns]
    if at not in names:
        return [table]
    cut = names.index(at)
    rows = _terminal_rows(table)
    parts = []
    for title, picks in (
        (f"{table.title}: accuracy", list(range(cut))),
        (f"{table.title}: cost and deployment", [*range(keys), *range(cut, len(names))]),
    ):
        parts.append(
            ReportTable(
                title,
                [table.columns[j] for j in picks],
                [
                    TableRow([cells[j] for j in picks], row.kind)
                    for cells, row in zip(rows, table.rows, strict=True)
                ],
            )
        )
    parts[-1].notes = table.notes
    return parts


def to_rich(table: Table) -> RichTable:
    """The report table as a rich table, notes as its caption."""
    from rich import box
    from rich.table import Table as RichTable

    out = RichTable(
        title=table.title,
        caption="\n".join(table.notes) or None,
        caption_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
    )
    rows = _terminal_rows(table)
    for j, column in enumerate(table.columns):
        longest = max((len(cells[j]) for cells in rows), default=0)
        out.add_column(
            column.name,
            justify=column.align,
            no_wrap=not column.wrap,
            min_width=None if column.wrap else min(longest, 20),
            overflow="fold",
        )
    for cells, row in zip(rows, table.rows, strict=True):
        out.add_row(*cells, style=_STYLES.get(row.kind))
    return out


@app.command("show")
def show(run_dir: RunDir) -> None:
    """Print a run's headline table, targets and failures."""
    from tfhsi.report.aggregate import aggregate_rows
    from tfhsi.report.document import warnings_for
    from tfhsi.report.results import load_results
    from tfhsi.report.tables import failures_table, headline_table, targets_table

    results = load_results(run_dir)
    rows = aggregate_rows(results.rows)
    console.print(f"[bold]{results.recipe}[/] — {results.description}", highlight=False)
    for notice in warnings_for(results):
        style = _NOTICE_STYLES.get(notice.kind, "")
        console.print(f"[{style}] {notice.title} [/] {notice.text}", highlight=False)
    seeds = ", ".join(map(str, results.seeds))
    console.print(
        f"dataset {results.dataset.title} · split {results.split} · seeds {seeds}", highlight=False
    )
    for table in (
        *split_columns(headline_table(results, rows), "params", keys=3),
        targets_table(results, rows),
        failures_table(results),
    ):
        if table is not None:
            console.print(to_rich(table))
    if results.command:
        console.print(f"command: {results.command}", highlight=False, soft_wrap=True)


@app.command("build")
def build(
    run_dir: RunDir,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the report files (default: the run directory).")
    ] = None,
) -> None:
    """Write report.md, report.html (self-contained), results.csv and plots/ for a run."""
    from tfhsi.report.build import build_report

    written = build_report(run_dir, out_dir=out)
    for name in ("report.html", "report.md", "results.csv"):
        console.print(f"[green]✓[/] {written[name]}", highlight=False)
    plots = [name for name in written if name.startswith("plots/")]
    console.print(
        f"[green]✓[/] {len(plots)} plots in {(out or run_dir) / 'plots'}", highlight=False
    )


@app.command("compare")
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two or more run directories.")],
    out: Annotated[
        Path | None, typer.Option(help="Also write compare.md and compare.html into this folder.")
    ] = None,
) -> None:
    """Set several runs side by side: one line per run × variant/format."""
    from tfhsi.report.build import load_runs, write_compare
    from tfhsi.report.tables import compare_table, runs_table

    runs = load_runs(run_dirs)
    for table in split_columns(compare_table(runs), "params", keys=2):
        console.print(to_rich(table))
    console.print(to_rich(runs_table(runs, run_dirs)))
    if out is not None:
        for path in write_compare(run_dirs, out).values():
            console.print(f"[green]✓[/] {path}", highlight=False)
