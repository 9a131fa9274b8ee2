"""What a search leaves: ``search.json``, the report (Markdown, HTML, plots) and ``best/``.

* ``search.json``: every trial (number, parameters, state, validation OA/AA, arena, flash,
  estimated latency, wall time), the budget, the Pareto front of the fitting trials and the
  chosen one. Rewritten after every batch, so a stopped search has a record too.
* The front's **test** figures are measured once, at the end, on each front trial's file;
  nothing during the search read a test pixel (the report says so).
* ``best/``: the chosen trial's ``model.tflite`` with its labels, the split and transform it
  was measured with and the teacher run's ``run.json`` (so ``tfhsi evaluate best/model.tflite``
  reproduces its test figures), ``card.json`` and a model card ``README.md``.
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfhsi.atomic import write_bytes, write_json, write_text
from tfhsi.env import environment
from tfhsi.search.constraints import Budget, kib
from tfhsi.search.trial import TEACHER_DIR, evaluate_file, trial_dir

if TYPE_CHECKING:
    from tfhsi.search.engine import SearchOutcome, SearchSettings

SEARCH_JSON = "search.json"
PLOTS = "plots"
TEST_NOTE = (
    "Trials were scored on validation pixels only; the test pixels were read once, after the "
    "search, to measure the front's files."
)


def feasible(record: dict[str, Any]) -> bool:
    return record.get("state") == "complete" and all(v <= 0 for v in record["constraints"])


def pareto_front(records: list[dict[str, Any]], metric: str, cost: str) -> list[dict[str, Any]]:
    """The fitting trials no other fitting trial beats on both ``metric`` (up) and ``cost``
    (down), by ascending cost."""
    fits = [r for r in records if feasible(r) and r.get(cost) is not None]
    front = [
        r
        for r in fits
        if not any(
            o[metric] >= r[metric] and o[cost] <= r[cost]
            and (o[metric] > r[metric] or o[cost] < r[cost])
            for o in fits
        )
    ]  # fmt: skip
    return sorted(front, key=lambda r: (r[cost], -r[metric], r["number"]))


def choose(fits: list[dict[str, Any]], metric: str, cost: str) -> dict[str, Any] | None:
    """The most accurate fitting trial. Ties (a few hundred validation pixels make them
    common): the better other metric (AA for an OA search, OA for an AA one), then the
    cheaper, then the earlier."""
    other = "val_aa" if metric == "val_oa" else "val_oa"
    return min(
        fits,
        key=lambda r: (-r[metric], -(r.get(other) or 0.0), r[cost], r["number"]),
        default=None,
    )


def _fields(settings: SearchSettings) -> tuple[str, str]:
    from tfhsi.search.engine import COST_FIELD

    return f"val_{settings.objective}", COST_FIELD[settings.cost]


def write_record(
    out: Path,
    settings: SearchSettings,
    budget: Budget,
    records: list[dict[str, Any]],
    *,
    wall_time_s: float,
    front: list[dict[str, Any]] | None = None,
    chosen: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Writes ``search.json`` (the front without test figures unless given)."""
    metric, cost = _fields(settings)
    front = pareto_front(records, metric, cost) if front is None else front
    data = {
        "settings": settings.to_dict(),
        "budget": budget.to_dict(),
        "objectives": {"maximize": metric, "minimize": cost},
        "note": TEST_NOTE,
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": round(wall_time_s, 1),
        "trial_time_s": round(sum(r.get("wall_time_s", 0.0) for r in records), 1),
        "counts": {
            state: sum(r.get("state") == state for r in records)
            for state in ("complete", "rejected", "failed")
        }
        | {"fitting": sum(feasible(r) for r in records)},
        "trials": sorted(records, key=lambda r: r["number"]),
        "front": front,
        "chosen": None if chosen is None else chosen["number"],
        "environment": environment(),
    }
    write_json(out / SEARCH_JSON, data)
    return data


def finish(
    out: Path,
    settings: SearchSettings,
    budget: Budget,
    records: list[dict[str, Any]],
    *,
    wall_time_s: float,
    data_dir: str | None,
) -> SearchOutcome:
    """The front's test figures (measured here, once), ``best/``, ``search.json``, report."""
    from tfhsi.search.engine import SearchOutcome

    metric, cost = _fields(settings)
    front = pareto_front(records, metric, cost)
    chosen = choose([r for r in records if feasible(r)], metric, cost)
    if chosen is not None:
        on_front = {r["number"] for r in front}
        extra = [] if chosen["number"] in on_front else [chosen]
        measured = _with_test_figures(out, settings, front + extra, data_dir)
        front = [r for r in measured if r["number"] in on_front]
        chosen = next(r for r in measured if r["number"] == chosen["number"])
        tested = {r["number"]: r for r in measured}
        records = [tested.get(r["number"], r) for r in records]
    if chosen is not None:
        write_best(out, settings, budget, chosen)
    data = write_record(
        out, settings, budget, records, wall_time_s=wall_time_s, front=front, chosen=chosen
    )
    write_report(out, data)
    return SearchOutcome(out, records, front, chosen)


def _with_test_figures(
    out: Path, settings: SearchSettings, front: list[dict[str, Any]], data_dir: str | None
) -> list[dict[str, Any]]:
    from tfhsi.data.datasets import open_dataset
    from tfhsi.data.prepared import load_prepared

    scene = open_dataset(settings.dataset, data_dir=data_dir)
    measured = []
    for record in front:
        prepared = load_prepared(scene, trial_dir(out, record["number"]))
        metrics = evaluate_file(Path(record["tflite"]), prepared, "test")
        measured.append({
            **record,
            "test": {"oa": float(metrics.oa), "aa": float(metrics.aa),
                     "kappa": float(metrics.kappa)},
        })  # fmt: skip
    return measured


def write_best(out: Path, settings: SearchSettings, budget: Budget, chosen: dict[str, Any]) -> Path:
    """``best/``: the chosen file, its labels, split, transform, run.json and model card."""
    import json

    folder = out / "best"
    folder.mkdir(parents=True, exist_ok=True)
    tflite = Path(chosen["tflite"])
    write_bytes(folder / "model.tflite", tflite.read_bytes())
    labels = tflite.with_suffix(".labels.txt")
    if labels.is_file():
        write_bytes(folder / "model.labels.txt", labels.read_bytes())
    trial = trial_dir(out, chosen["number"])
    for name in ("split.npz", "transform.npz"):
        write_bytes(folder / name, (trial / name).read_bytes())
    teacher = json.loads((out / TEACHER_DIR / "teacher.json").read_text(encoding="utf-8"))
    shutil.copyfile(Path(teacher["cache"]) / "run.json", folder / "run.json")
    card = {
        "name": "search_"
        + re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{settings.dataset}_{settings.target}"),
        "dataset": settings.dataset,
        "split": settings.split,
        "seed": settings.seed,
        "target": settings.target,
        "budget": budget.to_dict(),
        "trial": chosen["number"],
        "params": chosen["params"],
        "stage": chosen.get("stage"),
        "validation": {"oa": chosen["val_oa"], "aa": chosen["val_aa"]},
        "test": chosen.get("test"),
        "measurement": {
            k: chosen.get(k)
            for k in (
                "arena_bytes",
                "size_bytes",
                "flash_bytes",
                "macs",
                "latency_ms",
                "host_latency_ms",
                "precision",
                "full_int8",
                "fits_target",
            )
        },
        "note": TEST_NOTE,
        "environment": environment(),
    }
    write_json(folder / "card.json", card)
    write_text(folder / "README.md", model_card(card))
    return folder


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def model_card(card: dict[str, Any]) -> str:
    m, test = card["measurement"], card.get("test") or {}
    params = ", ".join(f"{k}={v}" for k, v in card["params"].items())
    latency = "-" if m["latency_ms"] is None else f"{m['latency_ms']:.2f} ms"
    return f"""# {card["name"]}

The most accurate model of a `tfhsi search` that fits {card["target"]} (trial {card["trial"]}).

| | |
|---|---|
| dataset, split | {card["dataset"]}, `{card["split"]}`, seed {card["seed"]} (masks in `split.npz`) |
| trial parameters | {params} |
| stages | {card["stage"]} |
| OA / AA (this .tflite, validation pixels) | {_pct(card["validation"]["oa"])} / {_pct(card["validation"]["aa"])} |
| OA / AA (this .tflite, test pixels, measured once after the search) | {_pct(test.get("oa"))} / {_pct(test.get("aa"))} |
| precision | {m["precision"]}; int8 end to end: {"yes" if m["full_int8"] else "no"} |
| TFLite Micro arena | {m["arena_bytes"]:,} bytes ({kib(m["arena_bytes"])}) |
| model (flash image) | {m["size_bytes"]:,} bytes ({kib(m["size_bytes"])}) |
| MACs per inference | {m["macs"]:,} |
| latency ({card["target"]} estimate from MACs) | {latency} |
| budget | {Budget(**card["budget"]).describe()} |

{card["note"]}

Reproduce the test figures: `tfhsi evaluate best/model.tflite --data-dir DATA`; profile it:
`tfhsi profile best/model.tflite --target {card["target"]}`.
"""


# --------------------------------------------------------------------------------------------
# The report


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _scatter(data: dict[str, Any], x: str, xlabel: str, path: Path) -> Path:
    plt = _pyplot()
    metric = data["objectives"]["maximize"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    trials = [r for r in data["trials"] if r.get(x) is not None]
    groups = (
        ("fits", "#2471a3", "o", [r for r in trials if feasible(r)]),
        ("trained, breaks the budget", "#aaaaaa", "x",
         [r for r in trials if r.get("state") == "complete" and not feasible(r)]),
    )  # fmt: skip
    scale = 1024 if x.endswith("bytes") else 1
    for label, colour, marker, rows in groups:
        if rows:
            ax.scatter([r[x] / scale for r in rows], [100 * r[metric] for r in rows],
                       c=colour, marker=marker, label=label, s=28)  # fmt: skip
    front = sorted((r for r in data["front"] if r.get(x) is not None), key=lambda r: r[x])
    if front:
        ax.plot([r[x] / scale for r in front], [100 * r[metric] for r in front], "-",
                c="#2471a3", lw=1, alpha=0.6, label="Pareto front (by the search's cost)")  # fmt: skip
    chosen = next((r for r in data["trials"] if r["number"] == data["chosen"]), None)
    if chosen is not None and chosen.get(x) is not None:
        ax.scatter([chosen[x] / scale], [100 * chosen[metric]], marker="*", s=260,
                   c="#e67e22", edgecolors="black", zorder=5, label=f"chosen (trial {chosen['number']})")  # fmt: skip
    limit = {"arena_bytes": "arena_bytes", "latency_ms": "latency_ms"}.get(x)
    bound = data["budget"].get(limit) if limit else None
    if bound:
        ax.axvline(bound / scale, ls="--", c="#c0392b", lw=1, label="budget")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"validation {metric.removeprefix('val_').upper()} (%)")
    return _finish(plt, fig, ax, path)


def _finish(plt: Any, fig: Any, ax: Any, path: Path) -> Path:
    """Grid, legend (when something is labelled), layout; writes the PNG atomically."""
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buffer = _png(fig)
    plt.close(fig)
    return write_bytes(path, buffer)


def _png(fig: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _progress(data: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    metric = data["objectives"]["maximize"]
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    trials = data["trials"]
    colours = {"complete": "#2471a3", "rejected": "#aaaaaa", "failed": "#c0392b"}
    for state, colour in colours.items():
        rows = [r for r in trials if r.get("state") == state]
        if rows:
            ax.scatter([r["number"] for r in rows], [100 * (r.get(metric) or 0) for r in rows],
                       c=colour, s=20, label=state + (" (before training)" if state == "rejected" else ""))  # fmt: skip
    best, xs, ys = None, [], []
    for r in trials:
        if feasible(r):
            best = max(best or 0.0, r[metric])
        if best is not None:
            xs.append(r["number"])
            ys.append(100 * best)
    if xs:
        ax.step(xs, ys, where="post", c="#e67e22", label="best fitting so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {metric.removeprefix('val_').upper()} (%)")
    return _finish(plt, fig, ax, path)


def _params(r: dict[str, Any]) -> str:
    p = r["params"]
    parts = [f"{p['model']} w{p['width']} p{p['patch']} pca{p['pca']}"]
    if p.get("distill"):
        parts.append(
            f"KD α{p['distill_alpha']:.2f} T{p['distill_temperature']:g} U{p['distill_unlabelled']:g}"
        )
    if p.get("class_weights"):
        parts.append("class weights")
    if p.get("prune"):
        parts.append(f"prune {p['prune']:g}")
    if p.get("cluster"):
        parts.append(f"cluster {p['cluster']}")
    parts.append(f"{p['quantize']} {p['precision']}")
    return ", ".join(parts)


def _rows(records: list[dict[str, Any]], with_test: bool) -> list[list[str]]:
    rows = []
    for r in records:
        test = r.get("test") or {}
        latency = r.get("latency_ms")
        row = [
            str(r["number"]), r.get("state", "?"), _params(r), _pct(r.get("val_oa")),
            _pct(r.get("val_aa")), kib(r.get("arena_bytes")), kib(r.get("size_bytes")),
            "-" if latency is None else f"{latency:.2f}",
            "yes" if feasible(r) else "; ".join(r.get("broken", [])) or r.get("error", "no"),
            f"{r.get('wall_time_s', 0):.0f}",
        ]  # fmt: skip
        if with_test:
            row[3:3] = [_pct(test.get("oa")), _pct(test.get("aa"))]
        rows.append(row)
    return rows


HEAD = ["trial", "state", "parameters", "val OA", "val AA", "arena", "model", "latency ms",
        "fits", "wall s"]  # fmt: skip


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(out: Path, data: dict[str, Any]) -> None:
    """``report.md`` and ``report.html`` with the front plots and the progress plot."""
    from html import escape

    from tfhsi.report.html import data_uri, page

    plots = out / PLOTS
    figures = [
        (_scatter(data, "arena_bytes", "TFLite Micro arena (KiB)", plots / "front_arena.png"),
         "validation accuracy vs arena (chosen point marked)"),
        (_scatter(data, "latency_ms", "estimated latency on the target (ms)", plots / "front_latency.png"),
         "validation accuracy vs estimated latency"),
        (_progress(data, plots / "progress.png"), "the search's progress over trials"),
    ]  # fmt: skip
    s = data["settings"]
    counts = data["counts"]
    chosen = next((r for r in data["trials"] if r["number"] == data["chosen"]), None)
    summary = [
        f"Scene {s['dataset']}, split `{s['split']}`, seed {s['seed']}; target {s['target']}; "
        f"budget: {Budget(**data['budget']).describe()}.",
        f"{len(data['trials'])} trials: {counts['complete']} trained, {counts['rejected']} "
        f"rejected before training, {counts['failed']} failed; {counts['fitting']} fit. "
        f"Objectives: maximize {data['objectives']['maximize']}, minimize "
        f"{data['objectives']['minimize']}." + (" Quick run (few epochs)." if s["quick"] else ""),
        data["note"],
    ]
    if chosen is not None:
        test = chosen.get("test") or {}
        summary.append(
            f"Chosen: trial {chosen['number']} ({_params(chosen)}): test OA {_pct(test.get('oa'))}, "
            f"AA {_pct(test.get('aa'))}; arena {kib(chosen['arena_bytes'])}, model "
            f"{kib(chosen['size_bytes'])}; exported to best/."
        )
    else:
        summary.append("No trial fits the budget.")
    front_head = [*HEAD[:3], "test OA", "test AA", *HEAD[3:]]
    md = [f"# Search: {s['dataset']} on {s['target']}", "", *(f"{t}\n" for t in summary)]
    md += ["## Pareto front", "", _md_table(front_head, _rows(data["front"], True)), ""]
    md += [f"![{cap}]({PLOTS}/{path.name})\n" for path, cap in figures]
    md += ["## Every trial", "", _md_table(HEAD, _rows(data["trials"], False)), ""]
    write_text(out / "report.md", "\n".join(md))

    def table(head: list[str], rows: list[list[str]]) -> str:
        th = "".join(f"<th>{escape(h)}</th>" for h in head)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows
        )
        return f'<div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'

    body = [f"<h1>Search: {escape(s['dataset'])} on {escape(s['target'])}</h1>"]
    body += [f"<p>{escape(t)}</p>" for t in summary]
    body += ["<h2>Pareto front</h2>", table(front_head, _rows(data["front"], True))]
    body += [
        f'<figure><img alt="{escape(cap)}" src="{data_uri(path)}"><figcaption>{escape(cap)}'
        "</figcaption></figure>"
        for path, cap in figures
    ]
    body += ["<h2>Every trial</h2>", table(HEAD, _rows(data["trials"], False))]
    stamp = "quick run: few epochs, figures not representative" if s["quick"] else ""
    write_text(out / "report.html", page(f"Search {s['dataset']}", "\n".join(body), stamp=stamp))
