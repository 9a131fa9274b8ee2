"""Builds a run's report files and compares runs. Reads run records only (no TensorFlow)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

from tfhsi.atomic import write_text
from tfhsi.report.aggregate import AggregateRow, aggregate_rows
from tfhsi.report.csvfile import results_csv
from tfhsi.report.document import run_document, warnings_for
from tfhsi.report.html import page, render_html, table_html
from tfhsi.report.markdown import render_markdown, table_markdown
from tfhsi.report.plots import run_stamp, write_plots
from tfhsi.report.results import RunResults, load_results
from tfhsi.report.tables import Table, compare_table, runs_table

__all__ = ["build_report", "compare_runs", "load_runs", "write_compare"]


def build_report(run_dir: str | Path, *, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Writes ``report.md``, ``report.html``, ``results.csv`` and ``plots/*.png``.

    Args:
        run_dir: A run directory holding ``results.json``.
        out_dir: Where to write (default: ``run_dir``).

    Returns:
        ``{relative name: path}`` of every file written, e.g. ``"plots/per_class.png"``.
    """
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir
    rows = aggregate_rows(results.rows)
    plots = write_plots(results, rows, out / "plots")
    doc = run_document(results, rows, run_dir=run_dir, report_dir=out, plots=plots)
    written = {f"plots/{name}": path for name, path in plots.items()}
    written["results.csv"] = write_text(out / "results.csv", results_csv(results))
    written["report.md"] = write_text(out / "report.md", render_markdown(doc))
    written["report.html"] = write_text(out / "report.html", render_html(doc))
    return written


def _labels(runs: Sequence[tuple[Path, RunResults]]) -> list[str]:
    recipes = [r.recipe for _, r in runs]
    return [
        r.recipe if recipes.count(r.recipe) == 1 else f"{r.recipe} ({path.name})"
        for path, r in runs
    ]


def load_runs(run_dirs: Sequence[str | Path]) -> list[tuple[str, RunResults, list[AggregateRow]]]:
    """``(label, record, aggregated rows)`` per run; labels are recipe names, made unique."""
    loaded = [(Path(d), load_results(d)) for d in run_dirs]
    return [
        (label, results, aggregate_rows(results.rows))
        for label, (_, results) in zip(_labels(loaded), loaded, strict=True)
    ]


def compare_runs(run_dirs: Sequence[str | Path]) -> Table:
    """One table setting several runs side by side (rows = run × variant/format)."""
    return compare_table(load_runs(run_dirs))


def write_compare(run_dirs: Sequence[str | Path], out_dir: str | Path) -> dict[str, Path]:
    """Writes ``compare.md`` and ``compare.html`` into ``out_dir``."""
    runs = load_runs(run_dirs)
    table = compare_table(runs)
    about = runs_table(runs, [Path(d) for d in run_dirs])
    out = Path(out_dir)
    banner = " | ".join(f"{label}: {run_stamp(r)}" for label, r, _ in runs if run_stamp(r))
    notices = [
        (label, n)
        for label, r, _ in runs
        for n in warnings_for(r)
        if n.kind in ("synthetic", "quick")
    ]
    md = ["# tfhsi runs compared", ""]
    if banner:
        md += [f"> **{banner}**", ""]
    md += [f"> **{label}: {n.title}.** {n.text}\n" for label, n in notices]
    md += [table_markdown(table, heading=""), "", table_markdown(about, heading="##")]
    html = ["<h1>tfhsi runs compared</h1>"]
    html += [
        f'<div class="notice {n.kind}"><strong>{escape(label)}: {escape(n.title)}.</strong> '
        f"{escape(n.text)}</div>"
        for label, n in notices
    ]
    html += [table_html(table, heading=""), table_html(about, heading="h2")]
    return {
        "compare.md": write_text(out / "compare.md", "\n".join(md) + "\n"),
        "compare.html": write_text(
            out / "compare.html", page("tfhsi runs compared", "\n".join(html), stamp=banner)
        ),
    }
