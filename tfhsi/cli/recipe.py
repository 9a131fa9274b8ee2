"""``tfhsi recipe``: list, show, validate and run declarative studies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tfhsi.cli._console import console, err_console
from tfhsi.cli.data import DataDir

app = typer.Typer(
    help="List, show, validate and run recipes (declarative studies).", no_args_is_help=True
)

RecipeArg = Annotated[str, typer.Argument(help="A shipped recipe name or a path to a .yaml file.")]
Overrides = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a field: key.path=value (repeatable), e.g. teacher.train.epochs=50."
    ),
]


@app.command("list")
def list_recipes() -> None:
    """List the shipped recipes (and those in $TFHSI_RECIPES_DIR)."""
    from tfhsi.recipes.loading import list_recipes as found
    from tfhsi.recipes.loading import load_recipe

    table = Table(title="Recipes")
    for column in ("name", "dataset", "teacher", "variants", "seeds", "description"):
        table.add_column(column, no_wrap=column in ("name",))
    for name, path in found().items():
        recipe, _ = load_recipe(str(path))
        table.add_row(
            name,
            recipe.dataset,
            recipe.teacher.model,
            ", ".join(v.name for v in recipe.variants) or "-",
            ",".join(map(str, recipe.seeds)),
            recipe.description,
        )
    console.print(table)


@app.command("show")
def show(
    recipe: RecipeArg, overrides: Overrides = None, quick: bool = typer.Option(False, "--quick")
) -> None:
    """Print the resolved recipe (defaults filled in, overrides applied) as YAML."""
    from tfhsi.recipes.loading import load_recipe
    from tfhsi.recipes.resolve import resolved_yaml

    loaded, path = load_recipe(recipe, overrides=tuple(overrides or ()))
    console.print(f"# {path}", highlight=False)
    console.print(resolved_yaml(loaded, quick=quick), highlight=False, soft_wrap=True)


@app.command("validate")
def validate(recipe: RecipeArg, overrides: Overrides = None) -> None:
    """Check a recipe against the schema; exit 2 with the field and the fix if it is wrong."""
    from tfhsi.recipes.loading import load_recipe

    loaded, path = load_recipe(recipe, overrides=tuple(overrides or ()))
    console.print(
        f"[green]ok[/]: {path} ({loaded.name}: {len(loaded.variants)} variants × {len(loaded.seeds)} seeds)"
    )


@app.command("run")
def run(
    recipe: RecipeArg,
    overrides: Overrides = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Few epochs, few latency runs: a smoke test.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default: runs/<recipe>/<timestamp>).")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue the latest (or --out) run stage by stage; variants edited, added "
            "or removed in the recipe since run again (scene, split, seeds, teacher may not change)."
        ),
    ] = False,
    executor: Annotated[
        str, typer.Option(help="local (process pool) or ray (an existing Ray cluster).")
    ] = "local",
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Parallel tasks (default: 1 locally; the cluster's CPUs on Ray)."),
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (default: $RAY_ADDRESS or local).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Run a recipe end to end: teacher → variants → .tflite → audit → profile → report."""
    from tfhsi.recipes.executors import make_executor
    from tfhsi.recipes.loading import load_recipe
    from tfhsi.recipes.runner import run_recipe

    loaded, _ = load_recipe(recipe, overrides=tuple(overrides or ()))
    if loaded.search is not None:  # trials are generated: the search runs them
        from tfhsi.cli.search import run_with_progress
        from tfhsi.search.engine import search_dir, settings_from_recipe

        run_with_progress(
            settings_from_recipe(loaded, quick=quick),
            out=search_dir(loaded.name, out, resume=resume), executor=executor,
            workers=workers, address=address, storage=None, resume=resume, data_dir=data_dir,
        )  # fmt: skip
        return
    run_dir = run_recipe(
        loaded,
        quick=quick,
        out=out,
        resume=resume,
        data_dir=data_dir,
        log=err_console.print,
        executor=make_executor(executor, workers=workers, address=address, log=err_console.print),
    )
    console.print(f"report: {run_dir / 'report.html'}")
