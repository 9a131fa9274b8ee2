"""What a report says, independent of Markdown or HTML: header, warnings, sections, reproduction.

:func:`run_document` decides the content once; :mod:`tfhsi.report.markdown` and
:mod:`tfhsi.report.html` only lay it out, so both files always carry the same figures
and the same warnings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tfhsi.report import tables
from tfhsi.report.aggregate import AggregateRow
from tfhsi.report.plots import confusion_name, confusion_rows, run_stamp
from tfhsi.report.results import RunResults
from tfhsi.report.tables import Table

__all__ = ["Document", "Figure", "Notice", "Section", "run_document", "warnings_for"]

LEAK_NOTE = (
    "Random splits leak: training and test patches overlap, so accuracy is inflated; "
    "see the disjoint results."
)


@dataclass(frozen=True)
class Figure:
    """An image: ``path`` on disk (embedded in HTML), ``link`` relative to the report file."""

    path: Path
    link: str
    caption: str


@dataclass(frozen=True)
class Notice:
    kind: str  # "synthetic" | "quick" | "leak" | "failed"
    title: str
    text: str


@dataclass
class Section:
    title: str
    anchor: str
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    wide_figures: bool = False
    figures_first: bool = False


@dataclass
class Document:
    title: str
    subtitle: str
    stamp: str
    warnings: list[Notice]
    facts: list[tuple[str, str]]
    sections: list[Section]
    command: str = ""
    code: list[tuple[str, str]] = field(default_factory=list)


def warnings_for(results: RunResults) -> list[Notice]:
    out = []
    if results.dataset.synthetic:
        out.append(Notice("synthetic", "SYNTHETIC DATA",
                           "These figures come from a generated scene, not a real sensor: they "
                           "check the pipeline and say nothing about accuracy on real data."))  # fmt: skip
    if results.quick:
        out.append(Notice("quick", "QUICK RUN — not for publication",
                           "Made with --quick: shortened training and evaluation; every figure "
                           "here is a smoke-test value."))  # fmt: skip
    if results.random_split:
        out.append(Notice("leak", "Random split", LEAK_NOTE))
    failed = sum(r.failed for r in results.rows)
    if failed:
        out.append(Notice("failed", f"{failed} of {len(results.rows)} results failed",
                           "Their errors are listed under Failures; the means leave them out."))  # fmt: skip
    return out


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return tables.DASH
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _facts(results: RunResults, run_dir: Path) -> list[tuple[str, str]]:
    ds = results.dataset
    shape = "×".join(map(str, ds.shape)) if ds.shape else tables.DASH
    dataset = ds.title if ds.name in ds.title else f"{ds.title} ({ds.name})"
    return [
        ("recipe", results.recipe),
        ("dataset", f"{dataset}, {shape} (H×W×bands), {len(results.class_names)} classes"
         + (" — SYNTHETIC" if ds.synthetic else "")),
        ("split", results.split or tables.DASH),
        ("seeds", ", ".join(map(str, results.seeds)) or tables.DASH),
        ("targets", ", ".join(results.targets) or tables.DASH),
        ("started", results.started or tables.DASH),
        ("wall time", _duration(results.wall_time_s)),
        ("run directory", str(run_dir)),
    ]  # fmt: skip


def _environment(results: RunResults) -> list[tuple[str, str]]:
    env = dict(results.environment)
    packages = env.pop("packages", {}) or {}
    variables = env.pop("env", {}) or {}
    items = [(str(k), str(v)) for k, v in env.items() if v not in (None, "")]
    if isinstance(packages, dict):
        installed = [f"{name} {version}" for name, version in packages.items() if version]
        if installed:
            items.append(("packages", ", ".join(installed)))
    if isinstance(variables, dict):
        items += [(f"${k}", str(v)) for k, v in variables.items()]
    for file, digest in results.dataset.sources.items():
        items.append((f"data: {file}", f"sha256 {digest}"))
    return items


def _maps(
    rows: Sequence[AggregateRow], run_dir: Path, report_dir: Path
) -> tuple[list[Figure], list[str]]:
    figures, missing = [], []
    for row in rows:
        if not row.maps:
            continue
        seed, rel = row.maps[0]
        path = run_dir / rel
        if not path.is_file():
            missing.append(f"{row.label}: map file {rel} is missing")
            continue
        link = Path(_relpath(path, report_dir)).as_posix()
        figures.append(Figure(path, link, f"{row.label} (seed {seed})"))
    return figures, missing


QUANT_LAYERS_SHOWN = 8


def _quant_sections(results: RunResults, run_dir: Path, report_dir: Path) -> list[Section]:
    """One section per per-layer quantisation report the run's rows link (``quant_report``)."""
    import json

    from tfhsi.report.tables import Column, TableRow

    sections: list[Section] = []
    seen: set[str] = set()
    for row in results.rows:
        rel = row.extra.get("quant_report")
        if not rel or rel in seen:
            continue
        seen.add(rel)
        path = run_dir / rel
        if not path.is_file():
            sections.append(Section(f"Quantisation sensitivity: {row.variant}",
                                    f"quant-{row.variant}",
                                    text=[f"report file {rel} is missing"]))  # fmt: skip
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        whole = data["whole"]
        table = Table(
            f"{row.variant} ({data['model']}): validation OA each layer costs alone at int4",
            [
                Column("rank"),
                Column("layer", "left"),
                Column("op", "left"),
                Column("OA cost alone (pp)"),
                Column("SNR (dB)"),
                Column("cosine"),
            ],
            [
                TableRow(
                    [
                        str(i),
                        r["name"],
                        r["op"],
                        f"{r['oa_cost_pp']:.2f}",
                        f"{r['snr_db']:.1f}",
                        f"{r['cosine']:.4f}",
                    ]
                )
                for i, r in enumerate(data["layers"][:QUANT_LAYERS_SHOWN], start=1)
            ],
            notes=[
                f"{data['pixels']:,} validation pixels (never test); the {data['preset']} file "
                f"as a whole: OA {whole['oa'] * 100:.2f} % (float {data['float_oa'] * 100:.2f} %);"
                " SNR and cosine are of each layer's output in that file, against the float file "
                "(ai-edge-quantizer's model_validator)."
            ],
        )
        png = path.with_suffix(".png")
        figures = []
        if png.is_file():
            link = Path(_relpath(png, report_dir)).as_posix()
            figures = [Figure(png, link, f"{row.variant}: per-layer SNR and OA cost")]
        sections.append(Section(f"Quantisation sensitivity: {row.variant}",
                                f"quant-{row.variant}", [table], figures))  # fmt: skip
    return sections


def _relpath(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), start.resolve())


def run_document(
    results: RunResults,
    rows: Sequence[AggregateRow],
    *,
    run_dir: Path,
    report_dir: Path,
    plots: dict[str, Path],
) -> Document:
    """The content of ``report.md`` / ``report.html`` for one run."""

    def fig(name: str, caption: str) -> list[Figure]:
        if name not in plots:
            return []
        return [Figure(plots[name], Path(_relpath(plots[name], report_dir)).as_posix(), caption)]

    sections = [Section("Headline results", "headline", [tables.headline_table(results, rows)])]
    costs = fig("pareto_size.png", "Overall accuracy vs .tflite size") + fig(
        "pareto_latency.png", "Overall accuracy vs latency"
    )
    sections.append(Section("Accuracy vs cost", "pareto", figures=costs,
                            text=[] if costs else ["No .tflite sizes or latencies were recorded."]))  # fmt: skip
    targets = tables.targets_table(results, rows)
    if targets:
        sections.append(Section("Deployment targets", "targets", [targets]))
    sections += _quant_sections(results, run_dir, report_dir)
    per_class = tables.per_class_table(results, rows)
    if per_class:
        sections.append(Section("Per-class accuracy", "per-class", [per_class],
                                fig("per_class.png", "Per-class accuracy (%), mean over seeds"),
                                wide_figures=True, figures_first=True))  # fmt: skip
    confusions = [f for row in confusion_rows(rows) for f in fig(confusion_name(row), row.label)]
    if confusions:
        sections.append(Section("Confusion matrices", "confusion", figures=confusions,
                                text=["The teacher and the most accurate int8 model; rows are "
                                      "true classes, normalised to 100 %."]))  # fmt: skip
    maps, missing = _maps(rows, run_dir, report_dir)
    if maps or missing:
        sections.append(Section("Classification maps", "maps", figures=maps, text=missing,
                                wide_figures=True))  # fmt: skip
    sections.append(Section("Per-seed results", "seeds", [tables.seeds_table(results)]))
    failures = tables.failures_table(results)
    if failures:
        sections.append(Section("Failures", "failures", [failures]))
    title = f"tfhsi report — {results.recipe}"
    return Document(
        title=title,
        subtitle=results.description,
        stamp=run_stamp(results),
        warnings=warnings_for(results),
        facts=_facts(results, run_dir),
        sections=sections,
        command=results.command,
        code=_environment(results),
    )
