"""``tfhsi quant-report MODEL --run DIR``: which layer a quantisation hurts, on validation pixels.

The work is :func:`tfhsi.experiment.quantisation.quant_report` (a Keras model) or
``quant_report_file`` (a float ``.tflite``); this module parses options and writes ``<run>/quant_report/<model>_<preset>.{json,md,png}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tfhsi.cli._console import console
from tfhsi.cli.data import DataDir


def quant_report(
    model: Annotated[
        Path,
        typer.Argument(
            help="The float model: a .keras/.h5 file, a training run folder, or a float .tflite "
            "(e.g. a run's export/fp32.tflite)."
        ),
    ],
    run: Annotated[
        Path | None,
        typer.Option(help="Training run whose validation pixels score it (default: MODEL's run)."),
    ] = None,
    preset: Annotated[
        str, typer.Option(help="ai-edge-quantizer preset to analyse (w4a8, auto-mixed).")
    ] = "w4a8",
    keep_int8: Annotated[
        list[str] | None,
        typer.Option("--keep-int8", help="Layer name or regex kept at int8 weights (repeatable)."),
    ] = None,
    samples: Annotated[
        int, typer.Option(min=1, help="Validation patches the per-layer error averages over.")
    ] = 128,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the report (default: RUN/quant_report).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Per-layer quantisation error and OA cost of a model, on its run's validation pixels."""
    from tfhsi.experiment.folders import MODEL_FILE, find_run_dir, load_run
    from tfhsi.experiment.prediction import predictor
    from tfhsi.experiment.quantisation import quant_report as compute
    from tfhsi.experiment.quantisation import quant_report_file as compute_file
    from tfhsi.export.presets import Preset

    preset = Preset.parse(preset).value
    run_dir = run or find_run_dir(model)
    loaded = load_run(run_dir, data_dir=data_dir)
    path = model / MODEL_FILE if model.is_dir() else model
    if path.suffix not in (".keras", ".h5", ".tflite"):
        from tfhsi.errors import ConfigError

        raise ConfigError(
            f"quant-report MODEL must be a float model (.keras/.h5, a run folder or a float "
            f".tflite), not {path.name}; it makes and compares the quantised files itself."
        )
    predictor(path)  # a clear error for a missing or unreadable file
    if path.suffix == ".tflite":
        report, _ = compute_file(
            path, loaded.prepared, preset=preset, keep_int8=keep_int8, samples=samples
        )
    else:
        from tfhsi._keras import keras

        keras_model = keras.models.load_model(str(path), compile=False)
        report, _ = compute(
            keras_model, loaded.prepared, preset=preset, keep_int8=keep_int8, samples=samples
        )
    written = report.save(out or Path(run_dir) / "quant_report")
    console.print(report.markdown())
    console.print(f"written: {written}, .md, .png")
