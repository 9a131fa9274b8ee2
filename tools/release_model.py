"""Release a measured .tflite from a recipe run into tflite_models/<name>/ with its model card.

The folder is self-contained for evaluation: ``model.tflite``, ``model.labels.txt``, and the
``run.json`` / ``split.npz`` / ``transform.npz`` of the run whose split and preprocessing the
model was measured on, so ``tfhsi evaluate tflite_models/<name>/model.tflite --data-dir D``
reproduces the card's accuracy. Every figure on the card is measured here, on the file:

    python tools/release_model.py runs/study_indian_pines/<stamp> --pick mcu \
        --name indian_pines_mcu_student2d_int8 --data-dir ../shared/data
    python tools/release_model.py RUN --variant student3d_kd --format int8 --name NAME

``--format`` is the export preset of the run's row (``int8``, ``int8-mixed``, ``fp32`` ...);
runs recorded before ``int8`` lowered Conv3D itself are read with today's names (their
``int8-lowered`` rows are ``int8``, their mixed ``int8`` rows ``int8-mixed``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from tfhsi.atomic import write_bytes, write_json, write_text
from tfhsi.deployment import measure
from tfhsi.env import environment, shown_path
from tfhsi.experiment import evaluate_path, load_run
from tfhsi.export.inspect import audit
from tfhsi.export.metadata import read_metadata, restamp_metadata
from tfhsi.profile.targets import load_targets
from tfhsi.report.aggregate import aggregate_rows, teacher_reference
from tfhsi.report.results import current_format, load_results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--variant", help="with --format; or let --pick choose")
    parser.add_argument("--format", help="the export preset of the row, e.g. int8")
    parser.add_argument(
        "--pick",
        choices=sorted(RULES),
        help="choose the variant/format by the rule of docs/BENCHMARK.md over all seeds: "
        + "; ".join(f"{k}: {v}" for k, v in RULES.items()),
    )
    parser.add_argument("--seed", type=int, default=None, help="default: the run's first seed")
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", type=Path, default=Path("tflite_models"))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--role", default="", help="one line: what this model is the best candidate for"
    )
    parser.add_argument("--author", default="tfhsi contributors", help="metadata author")
    parser.add_argument(
        "--licence",
        default="Apache-2.0 (model); trained on the Indian Pines scene, see its terms of use",
        help="metadata licence",
    )
    args = parser.parse_args()

    results = json.loads((args.run_dir / "results.json").read_text())
    if args.pick:
        args.variant, args.format, why = pick(args.run_dir, results["rows"], args.pick)
        print(f"{args.pick}: {args.variant}/{args.format} ({why})")
        args.role = args.role or f"Best {args.pick} candidate: {why}."
    elif not (args.variant and args.format):
        parser.error("give --variant and --format, or --pick")
    seed = results["seeds"][0] if args.seed is None else args.seed
    row = next(
        (
            r
            for r in results["rows"]
            if r["seed"] == seed and r["variant"] == args.variant and _format(r) == args.format
        ),
        None,
    )
    if row is None:
        raise SystemExit(f"{args.run_dir} has no row {args.variant}/{args.format} for seed {seed}")
    teacher_run = Path(
        json.loads((args.run_dir / f"seed_{seed}" / "teacher" / "teacher.json").read_text())[
            "cache"
        ]
    )
    folder = args.out / args.name
    folder.mkdir(parents=True, exist_ok=True)
    tflite = Path(row["tflite"])
    stamped = restamp_metadata(
        tflite.read_bytes(),
        name=args.name,
        author=args.author,
        licence=args.licence,
    )
    write_bytes(folder / "model.tflite", stamped)
    shutil.copyfile(tflite.with_suffix(".labels.txt"), folder / "model.labels.txt")
    variant_dir = args.run_dir / f"seed_{seed}" / args.variant
    for name in ("run.json", "split.npz", "transform.npz"):
        # A student with its own preprocessing (e.g. all bands under a PCA teacher) saved its
        # transform in its variant folder; the split is always the teacher's.
        own = variant_dir / name
        source = own if name == "transform.npz" and own.is_file() else teacher_run / name
        shutil.copyfile(source, folder / name)

    # Measured again, on the released file and the released split/transform.
    metrics = evaluate_path(folder / "model.tflite", load_run(folder, data_dir=args.data_dir))
    metadata = read_metadata(stamped)
    if abs(metrics.oa - row["oa"]) > 1e-12:
        raise SystemExit(f"OA {metrics.oa} of the released file differs from the run's {row['oa']}")
    data = (folder / "model.tflite").read_bytes()
    targets = list(load_targets())
    measured = measure(
        data, targets=targets, threads=1, latency_runs=100, tflm=True, source=args.name
    )
    report = audit(data)
    transform = load_run(folder, data_dir=args.data_dir).prepared.transform
    record = {
        "name": args.name,
        "input": _input_text(metadata, transform),
        "preprocessing": (
            f"per-band standardisation (in the file's metadata), then PCA to "
            f"{transform.out_bands} components (the file's first layer), both fitted on the "
            "training pixels only"
            if transform.pca_components is not None
            else "per-band standardisation fitted on the training pixels only (in the file's "
            "metadata)"
        )
        if metadata is not None
        else "per-band standardisation and PCA outside the file (`transform.npz`)",
        "metadata": metadata,
        "role": args.role,
        "source_run": shown_path(args.run_dir),
        "variant": args.variant,
        "format": args.format,
        "seed": seed,
        "dataset": results["dataset"],
        "split": results["split"],
        "metrics": metrics.to_dict(),
        "measurement": measured.to_row(),
        "ops": report.op_counts,
        "environment": environment(),
    }
    write_json(folder / "card.json", record)
    write_text(folder / "README.md", card(record, metrics, report))
    print(folder / "README.md")
    return 0


MIN_AA = 0.90
"""Average accuracy every seed of a released model must reach: a model that misses whole
classes (e.g. Oats at 0 %) is not released, however high its OA."""

RULES = {
    "mcu": "int8 end to end and run by TFLite Micro on every seed, AA >= 90 % on every seed, "
    "mean OA at most 1 pp below the teacher's, then the smallest mean arena",
    "phone": "fits android-cpu and runs whole in XNNPACK on every seed, AA >= 90 % on every "
    "seed, then the highest mean OA (ties: lower latency)",
}


def pick(run_dir: Path, rows: list[dict], role: str) -> tuple[str, str, str]:
    """(variant, format, why) chosen by ``RULES[role]`` from a run's results (means over seeds,
    as the report aggregates them; only results measured on every seed compete)."""
    results = load_results(run_dir)
    aggregated = aggregate_rows(results.rows)
    reference = teacher_reference(aggregated).oa.mean  # type: ignore[union-attr]
    lowest_aa: dict[tuple[str, str], float] = {}
    for r in rows:
        if r.get("aa") is not None:
            key = (r["variant"], _format(r))
            lowest_aa[key] = min(lowest_aa.get(key, 1.0), r["aa"])
    complete = [
        a
        for a in aggregated
        if a.format != "keras"
        and a.oa is not None
        and a.n == len(results.seeds)
        and lowest_aa.get((a.variant, a.format), 0.0) >= MIN_AA
    ]
    if role == "mcu":
        eligible = [
            a for a in complete if a.full_int8 and a.arena_bytes and a.oa.mean >= reference - 0.01
        ]
        if not eligible:
            raise SystemExit(f"no result of {run_dir} meets the {role} rule: {RULES[role]}")
        best = min(eligible, key=lambda a: (a.arena_bytes, -a.oa.mean))
        why = f"arena {best.arena_bytes:,.0f} B"
    else:
        # The XNNPACK verdict is not in the report's rows: read it from the raw ones.
        not_whole = {
            (r["variant"], _format(r))
            for r in rows
            if not r.get("verdicts", {}).get("litert-xnnpack", {}).get("ok")
        }
        eligible = [
            a
            for a in complete
            if a.targets.get("android-cpu")
            and a.targets["android-cpu"].fits
            and (a.variant, a.format) not in not_whole
        ]
        if not eligible:
            raise SystemExit(f"no result of {run_dir} meets the {role} rule: {RULES[role]}")
        best = max(eligible, key=lambda a: (a.oa.mean, -a.latency.mean))  # type: ignore[union-attr]
        why = f"{best.latency.mean:.3f} ms on 1 host thread"  # type: ignore[union-attr]
    why += (
        f", OA {100 * best.oa.mean:.2f} % vs teacher {100 * reference:.2f} % "  # type: ignore[union-attr]
        f"over {best.n} seeds, lowest AA {100 * lowest_aa[(best.variant, best.format)]:.2f} %"
    )
    return best.variant, best.format, why


def _format(row: dict) -> str:
    """Today's preset name of a raw results.json row (older runs named some differently)."""
    return current_format(row["format"], row.get("precision"))


def _input_text(metadata: dict | None, transform) -> str:
    """What the file's input tensor takes, from its metadata."""
    if metadata is None:
        return f"{transform.out_bands} bands after `transform.npz`"
    tensor = metadata["inputs"][0]
    stats, norm = tensor["stats"], tensor["normalization"]
    constant = (
        f"constant bands {norm['constant_bands']} become 0"
        if norm and norm["constant_bands"]
        else "no band is constant on the training pixels"
    )
    values = (
        f"(x - mean) / std per band with the metadata's mean/std ({constant})"
        if norm
        else "the raw band values"
    )
    span = (
        f"; training-pixel range {min(stats['min']):.3g} … {max(stats['max']):.3g}" if stats else ""
    )
    return f"all {transform.in_bands} raw bands of the scene, {tensor['layout']} layout, fed as {values}{span}"


def card(record: dict, metrics, report) -> str:
    m = record["measurement"]
    fits = [f"{name}: {t['verdict']}" for name, t in m["targets"].items()]
    per_class = "\n".join(
        f"| {name} | {int(metrics.support[i])} | {100 * metrics.per_class_accuracy[i]:.2f} |"
        for i, name in enumerate(metrics.class_names)
    )
    ops = ", ".join(f"{name} ×{count}" for name, count in sorted(record["ops"].items()))
    arena = (
        f"{m['arena_bytes']:,} bytes"
        if m["arena_bytes"]
        else f"not runnable on TFLite Micro ({m['tflm_error']})"
    )
    return f"""# {record["name"]}

{record["role"]}

| | |
|---|---|
| dataset | {record["dataset"]["display"]} (files sha256: {", ".join(f"{k} {v[:12]}…" for k, v in record["dataset"]["sources"].items())}) |
| split | `{record["split"]}`, seed {record["seed"]} (masks in `split.npz`) |
| input | {record["input"]} |
| preprocessing | {record["preprocessing"]} |
| made by | variant `{record["variant"]}`, export `{record["format"]}` of run `{record["source_run"]}` |
| OA / AA / Kappa (this .tflite, test pixels) | {100 * metrics.oa:.2f} % / {100 * metrics.aa:.2f} % / {metrics.kappa:.4f} |
| size | {m["size_bytes"]:,} bytes ({m["gzip_bytes"]:,} gzip) |
| precision | {m["precision"]}; int8 end to end: {"yes" if m["full_int8"] else "no"} |
| MACs per inference | {m["macs"]:,} |
| LiteRT latency (host, 1 thread, XNNPACK) | {m["latency_ms"]:.3f} ms median |
| TFLite Micro arena | {arena} |
| targets | {"; ".join(fits)} (Coral: a rule-based verdict from the op table; the Edge TPU compiler was not run) |
| operators | {ops} |

Per-class accuracy of the `.tflite`:

| class | test pixels | accuracy % |
|---|---|---|
{per_class}

Without tfhsi: `python examples/standalone_inference.py tflite_models/{record["name"]}/model.tflite
--cube Indian_pines_corrected.mat --labels Indian_pines_gt.mat --test-mask
tflite_models/{record["name"]}/split.npz` (numpy, scipy, ai-edge-litert; normalisation and
labels from the file's metadata) prints the OA / AA / kappa above.

Reproduce: `tfhsi evaluate tflite_models/{record["name"]}/model.tflite --data-dir DATA`
(same OA), `tfhsi audit tflite_models/{record["name"]}/model.tflite`, `tfhsi profile
tflite_models/{record["name"]}/model.tflite --target cortex-m4`. Measured with tfhsi on
{record["environment"]["cpu"]} ({record["environment"]["cpu_count"]} cores), TensorFlow
{record["environment"]["packages"]["tensorflow"]}, LiteRT {record["environment"]["packages"]["ai-edge-litert"]}.
"""


if __name__ == "__main__":
    sys.exit(main())
