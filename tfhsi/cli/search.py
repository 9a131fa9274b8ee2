"""``tfhsi search``: the most accurate model that fits a target's budget."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tfhsi.cli._console import console, err_console
from tfhsi.cli.data import DataDir


def run_with_progress(settings: Any, *, out: Path, executor: str, workers: int | None,
                      address: str | None, storage: str | None, resume: bool,
                      data_dir: Any) -> Any:  # fmt: skip
    """Runs :func:`tfhsi.search.run_search` under a progress bar; prints where the results are."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tfhsi.search import run_search
    from tfhsi.search.engine import recipe_data
    from tfhsi.search.workers import make_workers

    settings.budget()  # bad target, sizes, scene or teacher: one line before any bar is drawn
    recipe_data(settings)
    metric = f"val_{settings.objective}"
    best: list[float] = []
    with Progress(
        TextColumn("[bold]search[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.description}"), console=err_console, transient=False,
    ) as bar:  # fmt: skip
        task = bar.add_task("", total=settings.trials)

        def progress(event: str, record: dict[str, Any] | None, done: int, total: int) -> None:
            if record is not None and event == "trial":
                fits = record.get("state") == "complete" and all(
                    v <= 0 for v in record.get("constraints", [1])
                )
                if fits:
                    best.append(record[metric])
                state = "fits" if fits else record.get("state", "?")
                shown = f"best fitting {100 * max(best):.2f} %" if best else "none fits yet"
                bar.console.print(
                    f"trial {record['number']}: {state}"
                    + (f", {metric} {100 * record[metric]:.2f} %" if record.get(metric) else "")
                    + (f" ({record['error']})" if record.get("error") else ""),
                    highlight=False,
                )
                bar.update(task, completed=done, total=total, description=shown)
            else:
                bar.update(task, completed=done, total=total)

        workers_ = make_workers(
            executor, workers=workers, address=address, folder=out, log=bar.console.print
        )
        outcome = run_search(
            settings, out=out, workers=workers_, parallel=workers or 1, storage=storage,
            resume=resume, data_dir=None if data_dir is None else str(data_dir),
            log=bar.console.print, progress=progress,
        )  # fmt: skip
    chosen = outcome.chosen
    assert chosen is not None  # else run_search raised NoFitError
    test = chosen.get("test") or {}
    console.print(
        f"chosen: trial {chosen['number']} — test OA {100 * test.get('oa', 0):.2f} %, AA "
        f"{100 * test.get('aa', 0):.2f} %, arena {chosen['arena_bytes']:,} B; "
        f"model: {out / 'best' / 'model.tflite'}; report: {out / 'report.html'}",
        highlight=False,
    )
    return outcome


def search(
    dataset: Annotated[str, typer.Option(help="A scene name, synthetic[:HxWxB[xC]] or a scene YAML.")],
    target: Annotated[str, typer.Option(help="Target profile, e.g. cortex-m4 (see tfhsi profile --help).")],
    out: Annotated[Path, typer.Option(help="Search folder: study.db, trials/, search.json, report, best/.")],
    split: Annotated[str, typer.Option(help="Split, e.g. random:0.1 (validation carved from training pixels).")] = "random:0.1",
    max_arena: Annotated[str | None, typer.Option(help="Largest TFLite Micro arena, e.g. 32KiB.")] = None,
    max_flash: Annotated[str | None, typer.Option(help="Largest .tflite (the model's flash image), e.g. 256KiB or 1MiB.")] = None,
    max_latency: Annotated[float | None, typer.Option(help="Largest latency in ms (the target's estimate from MACs).")] = None,
    objective: Annotated[str, typer.Option(help="Validation metric to maximize: oa or aa.")] = "oa",
    cost: Annotated[str, typer.Option(help="Second objective to minimize: arena, latency or flash.")] = "arena",
    trials: Annotated[int, typer.Option(min=1, help="Trials in all (a resumed search counts its finished ones).")] = 40,
    timeout: Annotated[float | None, typer.Option(min=0.1, help="Minutes after which no trial is proposed; the trials in flight finish.")] = None,
    space: Annotated[Path | None, typer.Option(help="YAML file overriding dimensions of the default space.")] = None,
    executor: Annotated[str, typer.Option(help="local (this process, or a pool with --workers > 1) or ray.")] = "local",
    workers: Annotated[int | None, typer.Option(min=1, help="Trials proposed and run at a time (default 1).")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster address (default: $RAY_ADDRESS or local).")] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna storage URL (default: sqlite in OUT/study.db).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the search in --out; finished trials are kept.")] = False,
    quick: Annotated[bool, typer.Option("--quick", help="Two epochs per stage: a smoke test.")] = False,
    seed: Annotated[int, typer.Option(min=0, help="Split, training and sampler seed.")] = 0,
    data_dir: DataDir = None,
) -> None:  # fmt: skip
    """Search students, distillation, pruning, clustering and quantization for the most accurate
    model that fits a target (int8, exact TFLite Micro arena); test pixels are read only at the end."""
    from tfhsi.errors import ConfigError
    from tfhsi.search import SearchSettings, load_space

    if objective not in ("oa", "aa"):
        raise ConfigError(f"--objective must be oa or aa, got {objective!r}.")
    if cost not in ("arena", "latency", "flash"):
        raise ConfigError(f"--cost must be arena, latency or flash, got {cost!r}.")
    settings = SearchSettings(
        dataset=dataset, target=target, split=split, seed=seed, max_arena=max_arena,
        max_flash=max_flash, max_latency_ms=max_latency, objective=objective,  # type: ignore[arg-type]
        cost=cost, trials=trials, timeout_min=timeout, space=load_space(space), quick=quick,  # type: ignore[arg-type]
        latency_runs=5 if quick else 10,
    )  # fmt: skip
    run_with_progress(
        settings, out=out, executor=executor, workers=workers, address=address,
        storage=storage, resume=resume, data_dir=data_dir,
    )  # fmt: skip
