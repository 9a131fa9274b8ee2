"""Report figures as PNG bytes: Pareto fronts, per-class accuracy, confusion matrices.

matplotlib with the Agg backend only; class colours follow :data:`tfhsi.report.maps.PALETTE`
so a class looks the same in every figure. Every figure of a synthetic or quick run carries
that warning in red at its top.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tfhsi.atomic import write_bytes
from tfhsi.report.aggregate import AggregateRow, best_int8, teacher_reference
from tfhsi.report.maps import PALETTE
from tfhsi.report.pareto import pareto_front
from tfhsi.report.results import RunResults
from tfhsi.report.tables import COSTS

__all__ = ["confusion_plot", "pareto_plot", "per_class_plot", "run_stamp", "write_plots"]

MARKERS = {"keras": "o", "fp32": "s", "fp16": "^", "dynamic": "v", "int8": "*", "int16x8": "P",
           "int8-mixed": "X"}  # fmt: skip
WARN = "#c0392b"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def run_stamp(results: RunResults) -> str:
    """The warning every page and figure of this run carries ('' for a real, full run)."""
    parts = []
    if results.dataset.synthetic:
        parts.append("SYNTHETIC DATA")
    if results.quick:
        parts.append("QUICK RUN — not for publication")
    return " · ".join(parts)


def _plain_log_ticks(ax: Any) -> None:
    """Log-x ticks at 1, 2, 5 × 10^k written as plain numbers (0.2, 0.5, 1, 2 ...)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _spread_labels(
    ax: Any, texts: list[Any], anchors: np.ndarray, *, labelled: list[int] | None = None
) -> None:
    """Moves each label to the first nearby spot clear of other labels and other points' markers.

    ``anchors`` are all points in data coordinates; ``texts[k]`` labels point ``labelled[k]``
    (default: every point, in order). Spots tried: right-above, right-below, left-above,
    left-below, then further below on the right; a spot must keep the label inside the axes.
    """
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    pixels = ax.transData.transform(anchors)
    half = 9  # marker half-size in pixels, with a margin
    markers = [Bbox.from_bounds(x - half, y - half, 2 * half, 2 * half) for x, y in pixels]
    spots = [(7, 5, "left"), (7, -13, "left"), (-7, 5, "right"), (-7, -13, "right")]
    spots += [(7, -13 - 9 * k, "left") for k in range(1, 8)]
    frame = ax.get_window_extent(renderer)
    placed: list[Any] = []
    owner = list(range(len(texts))) if labelled is None else labelled
    for k in sorted(range(len(texts)), key=lambda k: -pixels[owner[k], 1]):
        text, i = texts[k], owner[k]
        obstacles = placed + [m for j, m in enumerate(markers) if j != i]
        for dx, dy, align in spots:
            text.set_position((dx, dy))
            text.set_horizontalalignment(align)
            box = text.get_window_extent(renderer)
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            if inside and not any(box.overlaps(o) for o in obstacles):
                break
        else:
            text.set_position(spots[0][:2])
            text.set_horizontalalignment("left")
        placed.append(text.get_window_extent(renderer))


LABEL_ALL_UP_TO = 12
"""Above this many points a Pareto plot names only the Pareto-optimal ones and the teacher."""


def pareto_plot(
    rows: Sequence[AggregateRow],
    *,
    cost: Literal["size", "latency"],
    stamp: str = "",
    title: str = "",
) -> bytes | None:
    """OA vs gzip size (or latency), log-x, with the Pareto front drawn; ``None`` without data."""
    get = COSTS[cost]
    usable = [r for r in rows if r.oa is not None and get(r) is not None and get(r) > 0]  # type: ignore[operator]
    if not usable:
        return None
    plt = _pyplot()
    xs = np.array([float(get(r)) for r in usable])  # type: ignore[arg-type]
    if cost == "size":
        xs = xs / 1024
        gz = all(r.gzip_bytes is not None for r in usable)
        xlabel = f"{'gzip-compressed' if gz else 'raw'} .tflite size (KiB, log scale)"
    else:
        threads = {r.latency_threads for r in usable if r.latency_threads}
        xlabel = "latency (ms, log scale" + (
            f", {threads.pop()} thread(s))" if len(threads) == 1 else ")"
        )
    ys = np.array([r.oa.mean * 100 for r in usable])  # type: ignore[union-attr]
    errs = np.array([r.oa.std * 100 for r in usable])  # type: ignore[union-attr]
    front = pareto_front(list(zip(xs.tolist(), ys.tolist(), strict=True)))
    variants = list(dict.fromkeys(r.variant for r in usable))
    palette = 10 if len(variants) <= 10 else 20
    colours = plt.get_cmap(f"tab{palette}")
    # Many points: name only the Pareto-optimal ones and the teacher; a legend names the colours.
    crowded = len(usable) > LABEL_ALL_UP_TO
    fig, ax = plt.subplots(figsize=(9.6, 5.2) if crowded else (7.2, 4.8))
    if len(front) > 1:
        ax.plot(xs[front], ys[front], "-", color="#444", lw=1.2, zorder=1, label="Pareto front")
    texts, named = [], []
    for i, row in enumerate(usable):
        colour = colours(variants.index(row.variant) % palette)
        on = i in front
        ax.errorbar(xs[i], ys[i], yerr=errs[i], fmt=MARKERS.get(row.format, "o"), color=colour,
                    ms=11 if on else 8, mec="black" if on else colour, mew=1.4 if on else 0.5,
                    capsize=3, zorder=3)  # fmt: skip
        if crowded and not (on or row.variant == "teacher"):
            continue
        named.append(i)
        texts.append(ax.annotate(row.label, (xs[i], ys[i]), xytext=(7, 5), textcoords="offset points",
                                 fontsize=8, weight="bold" if on else "normal"))  # fmt: skip
    ax.set_xscale("log")
    _plain_log_ticks(ax)
    span = xs.max() / xs.min()
    ax.set_xlim(xs.min() / (1.6 if span > 1.5 else 2.5), xs.max() * (2.2 if span > 1.5 else 3))
    ax.margins(y=0.15)  # room for labels above and below the outermost points
    ax.set_xlabel(xlabel)
    ax.set_ylabel("overall accuracy (%)")
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    handles = [plt.Line2D([], [], ls="", marker=MARKERS.get(f, "o"), color="#555", label=f)
               for f in dict.fromkeys(r.format for r in usable)]  # fmt: skip
    if len(front) > 1:
        handles.append(plt.Line2D([], [], color="#444", label="Pareto front"))
    formats = ax.legend(
        handles=handles, fontsize=8, loc="lower right", title="format", title_fontsize=8
    )
    if crowded:
        ax.add_artist(formats)
        swatches = [plt.Line2D([], [], ls="", marker="s", color=colours(k % palette), label=v)
                    for k, v in enumerate(variants)]  # fmt: skip
        ax.legend(handles=swatches, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  title="variant", title_fontsize=8, frameon=False)  # fmt: skip
    heading = title or f"Accuracy vs {'model size' if cost == 'size' else 'latency'}"
    heading += "  (bold / outlined: Pareto-optimal; bars: ±1 std over seeds)"
    if crowded:
        heading += "\nnamed: the Pareto-optimal points and the teacher; colours: the variant legend"
    fig.suptitle(heading, fontsize=11, y=0.955 if stamp else 0.99)
    fig.tight_layout(rect=(0, 0, 1, 0.93 if stamp else 0.96))
    fig.canvas.draw()
    _spread_labels(ax, texts, np.column_stack([xs, ys]), labelled=named)
    return _save(fig, stamp, heading)


def _class_strip(fig: Any, ax: Any, n: int) -> None:
    """A column of class colours (the classification-map palette) left of ``ax``'s rows."""
    box = ax.get_position()
    strip = fig.add_axes((box.x0 - 0.018, box.y0, 0.012, box.height))
    strip.imshow(
        PALETTE[np.arange(n) % len(PALETTE)][:, None, :], aspect="auto", interpolation="nearest"
    )
    strip.set_axis_off()


def per_class_plot(
    rows: Sequence[AggregateRow], class_names: Sequence[str], *, stamp: str = ""
) -> bytes | None:
    """Heatmap of per-class accuracy (%): classes × variant/format, values written in the cells."""
    shown = [r for r in rows if r.per_class]
    if not shown:
        return None
    plt = _pyplot()
    n = max(len(r.per_class) for r in shown)
    names = [*class_names, *(f"class {k + 1}" for k in range(len(class_names), n))][:n]
    grid = np.full((n, len(shown)), np.nan)
    for j, row in enumerate(shown):
        for k, stat in enumerate(row.per_class):
            grid[k, j] = math.nan if stat is None else stat.mean * 100
    fig, ax = plt.subplots(figsize=(2.6 + 1.05 * len(shown), 1.4 + 0.32 * n))
    cmap = plt.get_cmap("RdYlGn").with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=50, vmax=100, aspect="auto")
    for k in range(n):
        for j in range(len(shown)):
            value = grid[k, j]
            ax.text(j, k, "n/a" if math.isnan(value) else f"{value:.0f}", ha="center", va="center",
                    fontsize=8, color="black" if math.isnan(value) or 62 < value < 92 else "white")  # fmt: skip
    ax.set_xticks(range(len(shown)), [r.label for r in shown], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(n), [f"{k + 1} {name}" for k, name in enumerate(names)], fontsize=8)
    ax.tick_params(axis="y", pad=14)
    fig.colorbar(
        image, ax=ax, fraction=0.04, pad=0.02, extend="min", label="accuracy (%), below 50 clipped"
    )
    png_title = "Per-class accuracy (%), mean over seeds"
    fig.suptitle(png_title)
    fig.tight_layout(rect=(0, 0, 1, 0.92 if stamp else 0.95))
    _class_strip(fig, ax, n)
    return _save(fig, stamp, png_title)


def _save(fig: Any, stamp: str, title: str) -> bytes:
    """Adds the warning stamp and the title to a laid-out figure and returns it as PNG bytes."""
    plt = _pyplot()
    if stamp:
        fig.text(0.5, 0.995, stamp, ha="center", va="top", color=WARN, fontsize=10, weight="bold")
    fig.suptitle(title, fontsize=11, y=0.955 if stamp else 0.99)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def confusion_plot(
    row: AggregateRow, class_names: Sequence[str], *, stamp: str = ""
) -> bytes | None:
    """Row-normalised confusion matrix (recall per true class), summed over seeds."""
    if row.confusion is None:
        return None
    plt = _pyplot()
    cm = row.confusion.astype(np.float64)
    n = cm.shape[0]
    totals = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, totals, out=np.full_like(cm, np.nan), where=totals > 0) * 100
    names = [*class_names, *(f"class {k + 1}" for k in range(len(class_names), n))][:n]
    side = 2.4 + 0.27 * n
    fig, ax = plt.subplots(figsize=(side + 1.9, side))
    cmap = plt.get_cmap("Blues").with_extremes(bad="#eeeeee")
    image = ax.imshow(np.ma.masked_invalid(norm), cmap=cmap, vmin=0, vmax=100)
    if n <= 24:
        for k in range(n):
            for j in range(n):
                value = norm[k, j]
                if not math.isnan(value) and value >= 0.5:
                    ax.text(j, k, f"{value:.0f}", ha="center", va="center", fontsize=7.5,
                            color="white" if value > 60 else "black")  # fmt: skip
    ax.set_xticks(range(n), [str(k + 1) for k in range(n)], fontsize=9)
    ax.set_yticks(range(n), [f"{k + 1} {name}" for k, name in enumerate(names)], fontsize=9)
    ax.tick_params(axis="y", pad=14)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="% of the true class")
    seeds = f"{row.n} seed{'s' if row.n != 1 else ''}"
    title = f"Confusion matrix: {row.label} (row-normalised, summed over {seeds})"
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.92 if stamp else 0.95))
    _class_strip(fig, ax, n)
    return _save(fig, stamp, title)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def confusion_rows(rows: Sequence[AggregateRow]) -> list[AggregateRow]:
    """The teacher reference and the best int8 candidate (once if they are the same)."""
    chosen: list[AggregateRow] = []
    for row in (teacher_reference(rows), best_int8(rows)):
        if row is not None and row.confusion is not None and all(row is not c for c in chosen):
            chosen.append(row)
    return chosen


def confusion_name(row: AggregateRow) -> str:
    return f"confusion_{_slug(row.variant)}_{_slug(row.format)}.png"


def write_plots(
    results: RunResults, rows: Sequence[AggregateRow], out_dir: str | Path
) -> dict[str, Path]:
    """Writes the run's figures into ``out_dir`` (``plots/``); returns ``{file name: path}``.

    Figures without data (no sizes, no latencies, no confusion matrix) are skipped.
    """
    out = Path(out_dir)
    stamp = run_stamp(results)
    figures: dict[str, bytes | None] = {
        "pareto_size.png": pareto_plot(rows, cost="size", stamp=stamp),
        "pareto_latency.png": pareto_plot(rows, cost="latency", stamp=stamp),
        "per_class.png": per_class_plot(rows, results.class_names, stamp=stamp),
    }
    for row in confusion_rows(rows):
        figures[confusion_name(row)] = confusion_plot(row, results.class_names, stamp=stamp)
    return {name: write_bytes(out / name, png) for name, png in figures.items() if png is not None}
