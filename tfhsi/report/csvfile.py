"""``results.csv``: one line per result row, flat columns, raw numbers (fractions, bytes, ms)."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from tfhsi.report.results import RunResults

__all__ = ["CSV_COLUMNS", "results_csv"]

CSV_COLUMNS = (
    "recipe", "dataset", "synthetic", "quick", "split", "seed", "variant", "model", "stage",
    "format", "precision", "oa", "aa", "kappa", "parameters", "macs", "size_bytes", "gzip_bytes", "sparsity",
    "latency_ms", "latency_threads", "arena_bytes", "full_int8", "tflite", "map", "error", "notes",
)  # fmt: skip


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def results_csv(results: RunResults) -> str:
    """The record as CSV text; per-target and per-class columns follow the fixed ones.

    Per target ``fits_<target>`` / ``est_latency_ms_<target>``; per class
    ``acc_<k>_<name>`` (a fraction, empty where the class is absent). Empty cell = not measured.
    """
    targets = list(dict.fromkeys([*results.targets, *(t for r in results.rows for t in r.targets)]))
    n_classes = max([len(results.class_names), *(len(r.per_class_accuracy) for r in results.rows)])
    names = [*results.class_names, *[""] * n_classes][:n_classes]
    class_cols = [f"acc_{k + 1}_{_slug(name)}".rstrip("_") for k, name in enumerate(names)]
    header = [*CSV_COLUMNS]
    for t in targets:
        header += [f"fits_{t}", f"est_latency_ms_{t}"]
    header += class_cols
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    common = {
        "recipe": results.recipe, "dataset": results.dataset.name,
        "synthetic": results.dataset.synthetic, "quick": results.quick, "split": results.split,
    }  # fmt: skip
    for row in results.rows:
        fields = {**common, **{k: getattr(row, k) for k in CSV_COLUMNS if k not in common}}
        fields["notes"] = "; ".join(row.notes)
        line = [_value(fields[k]) for k in CSV_COLUMNS]
        for t in targets:
            fit = row.targets.get(t)
            line += [_value(fit and fit.fits), _value(fit and fit.estimated_latency_ms)]
        accs = row.per_class_accuracy
        line += [_value(accs[k] if k < len(accs) else None) for k in range(n_classes)]
        writer.writerow(line)
    return buffer.getvalue()
