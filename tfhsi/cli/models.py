"""``tfhsi models``: the model zoo.

TensorFlow is imported inside the command only when parameter counts are asked for
(they need the models built), so ``tfhsi models --help`` stays instant.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tfhsi.cli._console import console

app = typer.Typer(help="List the registered model architectures.", no_args_is_help=True)


@app.callback()
def models() -> None:
    """List the registered model architectures."""
    # A callback keeps `list` a sub-command even while it is the only command.


@app.command("list")
def list_models(
    bands: Annotated[
        int,
        typer.Option(
            help="Bands for the size columns, used when a model has no default (PCA) bands."
        ),
    ] = 200,
    classes: Annotated[int, typer.Option(help="Classes for the size columns.")] = 16,
    params: Annotated[
        bool,
        typer.Option(
            "--params/--no-params", help="Build each model to count parameters and MACs (loads TF)."
        ),
    ] = True,
) -> None:
    """List the models: kind, input layout, default patch and bands, size at the default patch, paper.

    Sizes are for the default patch with the model's default bands (or --bands when
    it takes all the scene's bands) and --classes: 200 bands and 16 classes is
    Indian Pines.
    """
    from tfhsi.models import MODELS, build_model, count_macs

    title = "Models" + (
        f" (size: default patch, default bands or {bands}, {classes} classes)" if params else ""
    )
    table = Table(title=title)
    table.add_column("name", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("input", no_wrap=True)
    table.add_column("patch", justify="right", no_wrap=True)
    table.add_column("bands", justify="right", no_wrap=True)
    if params:
        table.add_column("params", justify="right", no_wrap=True)
        table.add_column("MACs", justify="right", no_wrap=True)
    table.add_column("paper")
    for name, spec in MODELS.items():
        row = [
            name,
            spec.kind,
            _LAYOUTS[spec.layout],
            str(spec.default_patch) if spec.layout != "1d" else "-",
            str(spec.default_bands) if spec.default_bands else "all",
        ]
        if params:
            model = build_model(name, bands=spec.default_bands or bands, n_classes=classes)
            row += [f"{model.count_params():,}", _si(count_macs(model))]
        table.add_row(*row, spec.paper)
    console.print(table)


_LAYOUTS = {"3d": "k×k×B×1", "2d": "k×k×B", "1d": "B×1"}


def _si(value: int) -> str:
    """``1234567`` -> ``1.23M``: compact enough for an 80-column table."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.3g}{suffix}"
    return str(value)
