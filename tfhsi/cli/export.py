"""``tfhsi audit`` and ``tfhsi export``: what a ``.tflite`` really is, and firmware sources.

The audit imports no TensorFlow (it reads the flatbuffer with LiteRT's schema),
so ``tfhsi audit MODEL.tflite`` answers in well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tfhsi.cli._console import console

if TYPE_CHECKING:
    from tfhsi.export.inspect import ModelAudit

app = typer.Typer(
    help="Export trained models to .tflite, and .tflite to firmware sources.", no_args_is_help=True
)

# Static (the CLI starts without the preset table); tests/export/test_presets.py keeps it whole.
PRESET_HELP = (
    "A preset: fp32, fp16, dynamic, int8, int8-mixed, int16x8, w4a8, auto-mixed "
    "(`tfhsi export presets`)."
)
ModelArg = Annotated[Path, typer.Argument(help="A .tflite file.", show_default=False)]


@app.callback()
def export() -> None:
    """Export trained models to .tflite, and .tflite to firmware sources."""


@app.command("tflite")
def tflite(
    model: Annotated[Path, typer.Argument(help="A .keras model or a training run directory.")],
    preset: Annotated[str, typer.Option(help=PRESET_HELP)] = "int8",
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Where to write (default: <run>/<preset>.tflite)."),
    ] = None,
    run: Annotated[
        Path | None, typer.Option(help="Training run whose training patches calibrate int8.")
    ] = None,
    lower: Annotated[
        bool,
        typer.Option(
            help="Lower Conv3D to Conv2D for the presets that need it (int8, int16x8); "
            "--no-lower makes those fail on a Conv3D model."
        ),
    ] = True,
    keep_int8: Annotated[
        list[str] | None,
        typer.Option(
            "--keep-int8",
            help="w4a8 / auto-mixed: a layer name or regex kept at int8 weights (repeatable).",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", envvar="TFHSI_DATA_DIR", help="Data directory.")
    ] = None,
) -> None:
    """Convert a trained Keras model to .tflite (batch 1, static shapes); the audit of the file must match the preset.

    int8 and int16x8 files are integer end to end (Conv3D is lowered to Conv2D for them), or
    nothing is written and the error names the float ops; int8-mixed keeps the converter's
    float islands.
    """
    from tfhsi._keras import keras
    from tfhsi.deployment import export_tflite
    from tfhsi.experiment import MODEL_FILE, find_run_dir, load_run
    from tfhsi.export.inspect import audit as audit_model
    from tfhsi.export.presets import PRESETS

    PRESETS.get(preset)  # an unknown name fails before any work, with suggestions
    path = model / MODEL_FILE if model.is_dir() else model
    loaded = load_run(run or find_run_dir(model), data_dir=data_dir)
    keras_model = keras.models.load_model(str(path), compile=False)
    exported = export_tflite(
        keras_model,
        preset,
        out or loaded.folder / f"{preset}.tflite",
        prepared=loaded.prepared,
        patch=loaded.patch_size,
        layout=loaded.layout,
        lower=lower,
        keep_int8=keep_int8 or (),
    )
    lowered = " (Conv3D lowered to Conv2D: the file takes 2-D patches)" if exported.lowered else ""
    console.print(f"{exported.path}: {audit_model(exported.data).summary()}{lowered}")


def audit(
    model: ModelArg,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the audit as JSON (machine-readable).")
    ] = False,
    tflm_smoke: Annotated[
        bool,
        typer.Option(
            "--tflm-smoke", help="Also load and invoke the model once in the TFLite Micro runtime."
        ),
    ] = False,
    require: Annotated[
        list[str] | None,
        typer.Option(
            "--require",
            help="Exit with code 1 unless the model fits this target "
            "(litert-xnnpack, tflm, edgetpu); repeatable.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Audit a .tflite op by op: dtypes, float islands, and whether it fits LiteRT+XNNPACK, TFLite Micro and the Edge TPU.

    A model is called full int8, or said to fit a target, only if every operator says
    so. The Edge TPU check is static: the Edge TPU compiler is not run.
    """
    from tfhsi.export.inspect import audit as run_audit
    from tfhsi.export.targets import TARGETS

    for name in require or []:
        TARGETS.get(name)  # unknown names fail before the work, with suggestions
    from tfhsi.export.metadata import read_metadata

    report = run_audit(model, tflm_smoke=tflm_smoke)
    metadata = read_metadata(model.read_bytes())
    if json_out:
        typer.echo(json.dumps({**report.to_dict(), "metadata": metadata}, indent=2))
    else:
        render_audit(report)
        render_metadata(metadata)
    missed = [name for name in require or [] if not report.verdicts[name].ok]
    if missed:
        if not json_out:
            console.print(f"[red]required target(s) not met: {', '.join(missed)}[/]")
        raise typer.Exit(1)


def render_audit(report: ModelAudit) -> None:
    """Prints the op table, float islands and per-target verdicts."""
    from tfhsi.export.targets import TARGETS, describe_kind

    island_ops = {op.label for island in report.float_islands for op in island.ops}
    float_ops = {op.label for op in report.float_ops}
    table = Table(title=f"{report.source}: {report.summary()}", title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("op", no_wrap=True)
    table.add_column("computes")
    table.add_column("inputs", overflow="fold")
    table.add_column("weights", overflow="fold")
    table.add_column("outputs", overflow="fold")
    for op in report.ops:
        kind = report.kinds[op.label]
        style = (
            "bold red" if op.label in island_ops else ("yellow" if op.label in float_ops else "")
        )
        data = [t.describe() for t in op.inputs if not t.is_constant]
        weights = [t.describe() for t in op.weights]
        table.add_row(
            str(op.index) if not op.subgraph else f"{op.index}@{op.subgraph}",
            op.name,
            describe_kind(op, kind).removeprefix("computes in "),
            ", ".join(data),
            ", ".join(weights),
            ", ".join(t.describe() for t in op.outputs),
            style=style,
        )
    console.print(table)
    io = ", ".join(t.describe() for t in report.inputs) + " → "
    io += ", ".join(t.describe() for t in report.outputs)
    console.print(f"model I/O: {io}")
    if report.class_names is not None:
        console.print(
            f"labels: {len(report.class_names)} classes ({', '.join(report.class_names[:6])}"
            + (", …)" if len(report.class_names) > 6 else ")")
        )
    for island in report.float_islands:
        console.print(f"[bold red]float island:[/] {island.describe()}", highlight=False)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    for name, verdict in report.verdicts.items():
        mark = "[green]✓[/]" if verdict.ok else "[red]✗[/]"
        console.print(f"{mark} [bold]{TARGETS.get(name).title}[/] ({name})", highlight=False)
        for reason in verdict.reasons:
            console.print(f"    {reason}", highlight=False, soft_wrap=True)


def render_metadata(metadata: dict | None) -> None:
    """Prints what the file's TFLite metadata says its input and output are."""
    from tfhsi.export.metadata import input_stage

    if metadata is None:
        console.print(
            "metadata: none (the run's transform.npz says how to prepare the input)",
            highlight=False,
        )
        return
    console.print(
        f"metadata: {metadata['name']} ({metadata['version']}): {metadata['description']}",
        highlight=False,
    )
    for key in ("author", "license"):
        if metadata.get(key):
            console.print(f"  {key}: {metadata[key]}", highlight=False)
    for tensor in metadata["inputs"]:
        norm, stats = tensor["normalization"], tensor["stats"]
        console.print(
            f"  input {tensor['name']!r} ({tensor['layout']}): {tensor['description']}",
            highlight=False,
        )
        stage = input_stage(metadata)
        if norm is not None:
            console.print(
                f"    normalisation: (x - mean) / std for {len(norm['mean'])} bands"
                + (
                    f"; constant bands → 0: {norm['constant_bands']}"
                    if norm["constant_bands"]
                    else ""
                ),
                highlight=False,
            )
        else:
            console.print(f"    normalisation: none (input: {stage} bands)", highlight=False)
        if stats is not None:
            console.print(
                f"    value range: {min(stats['min']):.4g} … {max(stats['max']):.4g}",
                highlight=False,
            )
    for tensor in metadata["outputs"]:
        labels = tensor["labels"] or []
        console.print(
            f"  output {tensor['name']!r}: {len(labels)} labels packed in the file"
            + (f" ({', '.join(labels[:6])}{', …' if len(labels) > 6 else ''})" if labels else ""),
            highlight=False,
        )


@app.command("presets")
def presets() -> None:
    """List the export presets: what each asks for, whether it calibrates, what Conv3D gets, what the audit must find."""
    table = Table(title="export presets (a request: the audit of the file says what it is)")
    columns = ("preset", "weights", "activations", "calibration", "Conv3D", "audit", "runtimes")
    for column in columns:
        table.add_column(column)
    from tfhsi.export.presets import PRESET_NAMES, PRESETS

    for name in PRESET_NAMES:
        spec = PRESETS.get(name)
        if spec.promise:
            promise = f"must be {' or '.join(spec.accepts)} end to end"
            if spec.same_as:
                promise += f"; refused when it is the {spec.same_as} file"
        elif spec.same_as:
            promise = f"recorded; refused when it is the {spec.same_as} file"
        else:
            promise = "recorded"
        table.add_row(
            name,
            spec.weights,
            spec.activations,
            "yes" if spec.calibration else "no",
            "lowered to Conv2D" if spec.conv3d == "lower" else "kept",
            promise,
            ", ".join(spec.runtimes),
        )
    console.print(table)


@app.command("c-array")
def c_array(
    model: ModelArg,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Output path without suffix (default: beside the model, <stem>_data).",
            show_default=False,
        ),
    ] = None,
    name: Annotated[str, typer.Option(help="C identifier of the array.")] = "g_model",
    alignment: Annotated[int, typer.Option(help="alignas() of the array (TFLM needs 16).")] = 16,
) -> None:
    """Write a .tflite as C++ sources (<out>.h, <out>.cc) for firmware; labels come from <stem>.labels.txt if present."""
    from tfhsi.export.c_array import write_c_array
    from tfhsi.export.graph import read_model_bytes
    from tfhsi.export.tflite import labels_path

    data = read_model_bytes(model)
    sidecar = labels_path(model)
    labels = None
    if sidecar.is_file():
        labels = [n.strip() for n in sidecar.read_text(encoding="utf-8").splitlines() if n.strip()]
    stem = out if out is not None else model.with_name(f"{model.stem}_data")
    header, source = write_c_array(data, stem, name=name, alignment=alignment, class_names=labels)
    extra = f", {len(labels)} labels" if labels else ""
    console.print(f"wrote {header} and {source} ({len(data):,} bytes, alignas({alignment}){extra})")
