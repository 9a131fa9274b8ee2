"""Tables and plots of docs/BENCHMARK.md, generated from finished study runs (no hand copying).

For each run (e.g. the random and the disjoint split of ``study_indian_pines``) it writes the
report's headline table (mean ± std over seeds, every row measured on the exported file), the
knowledge-distillation comparison per student (the same student distilled, distilled with the
unlabelled transfer set, and trained alone; per-seed OA and the paired difference), and copies
the run's accuracy-vs-size/latency plots next to the tables. With several runs of one recipe
(its splits), a last table puts each exported file's OA on every split side by side with its
gzip size, TFLite Micro arena and the targets it fits (those from the first run). Runs of one
recipe and split (a study whose seeds ran one at a time) are read as one run of all their seeds.

    .venv/bin/python tools/benchmark_tables.py runs/study_indian_pines/<random> \
        runs/study_indian_pines/<disjoint> --out docs/benchmark
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from dataclasses import replace
from pathlib import Path

from tfhsi.atomic import write_text
from tfhsi.env import shown_path
from tfhsi.report.aggregate import aggregate_rows
from tfhsi.report.markdown import table_markdown
from tfhsi.report.results import RunResults, load_results
from tfhsi.report.tables import fmt_bytes, fmt_stat, headline_table

PLOTS = ("pareto_size.png", "pareto_latency.png")
STUDENTS = ("student2d", "student3d")


def _keras_oa(results: RunResults, variant: str) -> dict[int, float]:
    return {
        r.seed: r.oa
        for r in results.rows
        if r.variant == variant and r.format == "keras" and r.oa is not None and not r.error
    }


def _stat(values: list[float], *, signed: bool = False) -> str:
    if not values:
        return "–"
    mean = f"{100 * statistics.mean(values):{'+' if signed else ''}.2f}"
    if len(values) < 2:
        return mean
    return f"{mean} ± {100 * statistics.stdev(values):.2f}"


def _gains(other: dict[int, float], scratch: dict[int, float]) -> list[float]:
    """Per-seed OA differences ``other − scratch`` on the seeds both have."""
    return [other[s] - scratch[s] for s in sorted(scratch) if s in other]


def kd_table(results: RunResults) -> str:
    """Per student: OA of KD, KD + transfer set and scratch over seeds, and the paired gains."""
    lines = [
        "| student | seeds | scratch OA % | KD OA % | KD − scratch (pp, paired) | KD + transfer OA % | KD + transfer − scratch (pp, paired) | wins (transfer vs scratch) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for student in STUDENTS:
        scratch = _keras_oa(results, f"{student}_scratch")
        if not scratch:
            continue
        kd = _keras_oa(results, f"{student}_kd")
        transfer = _keras_oa(results, f"{student}_kd_transfer")
        seeds = sorted(scratch)
        kd_gain, transfer_gain = _gains(kd, scratch), _gains(transfer, scratch)
        wins = sum(1 for g in transfer_gain if g > 0)
        lines.append(
            f"| {student} | {', '.join(map(str, seeds))} | {_stat([scratch[s] for s in seeds])} | "
            f"{_stat(list(kd.values()))} | {_stat(kd_gain, signed=True)} | {_stat(list(transfer.values()))} | "
            f"{_stat(transfer_gain, signed=True)} | {wins} of {len(transfer_gain)} |"
        )
    return "\n".join(lines) + "\n"


def per_seed_table(results: RunResults) -> str:
    variants = [f"{s}_{kind}" for s in STUDENTS for kind in ("scratch", "kd", "kd_transfer")]
    seeds = sorted({r.seed for r in results.rows})
    lines = ["| variant | " + " | ".join(f"seed {s}" for s in seeds) + " |"]
    lines.append("|---|" + "---|" * len(seeds))
    for variant in variants:
        oa = _keras_oa(results, variant)
        if oa:
            cells = [f"{100 * oa[s]:.2f}" if s in oa else "–" for s in seeds]
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def splits_table(runs: list[RunResults]) -> str:
    """One line per exported file (variant, format): OA % of the file on each run's split, and
    the first run's gzip size, arena and fitting targets."""
    by_run = [{(r.variant, r.format): r for r in aggregate_rows(res.rows)} for res in runs]
    head = " | ".join(f"{res.split} OA %" for res in runs)
    lines = [
        f"| variant | format | precision | {head} | gzip | TFLM arena | fits |",
        "|---|---|---|" + "---|" * len(runs) + "---|---|---|",
    ]
    for key, row in by_run[0].items():
        if row.format == "keras" and row.variant != "teacher":
            continue
        cells = [fmt_stat(table[key].oa) if key in table else "–" for table in by_run]
        fits = ", ".join(name for name, t in row.targets.items() if t.fits) or "none"
        lines.append(
            f"| {row.variant} | {row.format} | {row.precision or '–'} | {' | '.join(cells)} | "
            f"{fmt_bytes(row.gzip_bytes)} | {fmt_bytes(row.arena_bytes)} | "
            f"{fits if row.targets else '–'} |"
        )
    return "\n".join(lines) + "\n"


def merged_runs(paths: list[Path]) -> list[tuple[list[Path], RunResults]]:
    """The runs grouped by (recipe, split), each group's rows as one result: a study whose
    seeds ran one at a time (``--set seeds=[S]``) reads as the run of all its seeds."""
    groups: dict[tuple[str, str], list[tuple[Path, RunResults]]] = {}
    for path in paths:
        results = load_results(path)
        groups.setdefault((results.recipe, results.split), []).append((path, results))
    out = []
    for members in groups.values():
        seeds = [s for _, r in members for s in sorted({row.seed for row in r.rows})]
        if len(seeds) != len(set(seeds)):
            raise SystemExit(f"runs {[str(p) for p, _ in members]} repeat a seed: {seeds}")
        first = members[0][1]
        out.append(
            (
                [p for p, _ in members],
                replace(
                    first,
                    rows=[row for _, r in members for row in r.rows],
                    seeds=sorted(seeds),
                    wall_time_s=sum(r.wall_time_s or 0.0 for _, r in members),
                ),
            )
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmark"))
    args = parser.parse_args()

    parts = [
        "<!-- generated by tools/benchmark_tables.py from the runs named below; do not edit -->\n"
    ]
    loaded = merged_runs(args.runs)
    for runs, results in loaded:
        split = results.split.replace(":", "_")
        seeds = sorted({r.seed for r in results.rows})
        names = ", ".join(f"`{shown_path(run)}`" for run in runs)
        wall = "wall time of its last invocation" if len(runs) == 1 else "summed wall times"
        minutes = f"{results.wall_time_s / 60:.0f} min" if results.wall_time_s else "not recorded"
        parts.append(
            f"## {results.recipe} · split {results.split} · seeds {', '.join(map(str, seeds))}\n\n"
            f"Run{'s' if len(runs) > 1 else ''}: {names} ({wall}: {minutes}).\n"
        )
        aggregated = aggregate_rows(results.rows)
        parts.append(table_markdown(headline_table(results, aggregated)))
        parts.append("\n### Knowledge distillation vs the same student trained alone (Keras OA)\n")
        parts.append(kd_table(results))
        parts.append("\n" + per_seed_table(results))
        own = len(runs) == 1 and (runs[0] / "plots").is_dir()
        plots = runs[0] / "plots" if own else None
        if plots is None:  # several runs (or none with plots): the plots of their rows together
            from tfhsi.report.plots import write_plots

            write_plots(results, aggregated, args.out / f"_{split}_plots")
            plots = args.out / f"_{split}_plots"
        for plot in PLOTS:
            source = plots / plot
            if source.is_file():
                target = args.out / f"{split}_{plot}"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
                parts.append(f"\n![{plot} ({results.split})]({target.name})\n")
        if not own:
            shutil.rmtree(plots, ignore_errors=True)
        parts.append("\n")
    if len(loaded) > 1 and len({r.recipe for _, r in loaded}) == 1:
        parts.append(
            f"## {loaded[0][1].recipe} · every split\n\n" + splits_table([r for _, r in loaded])
        )
    write_text(args.out / "tables.md", "\n".join(parts))
    print(f"wrote {args.out / 'tables.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
