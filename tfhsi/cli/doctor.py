"""``tfhsi doctor``: versions of everything tfhsi stands on, and known-bad combinations."""

from __future__ import annotations

import typer
from rich.table import Table

from tfhsi.cli._console import console


def doctor(
    import_check: bool = typer.Option(
        True, "--import/--no-import", help="Also import TensorFlow and check tf.keras is Keras 2."
    ),
) -> None:
    """Report Python, TensorFlow, tf_keras, TF-MOT, LiteRT and TFLM versions; flag bad setups."""
    from tfhsi.env import environment, setup_problems

    env = environment()
    packages: dict[str, str | None] = env["packages"]  # type: ignore[assignment]
    table = Table(title="tfhsi environment", show_header=True)
    table.add_column("component")
    table.add_column("version")
    table.add_row("python", str(env["python"]))
    table.add_row("cpu", f"{env['cpu']} ({env['cpu_count']} logical cores)")
    for name, version in packages.items():
        table.add_row(name, version or "[dim]not installed[/]")
    console.print(table)

    problems = setup_problems(packages)
    if import_check and not problems:
        problems += _import_problems()
    if problems:
        for problem in problems:
            console.print(f"[bold red]problem:[/] {problem}")
        raise typer.Exit(1)
    console.print(
        "[green]ok[/]: TensorFlow uses Keras 2 (tf_keras); TF-MOT, LiteRT and TFLM are importable."
    )


def _import_problems() -> list[str]:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
        import tflite_micro  # noqa: F401

        from tfhsi._keras import keras, tf
    except Exception as exc:
        return [f"importing the stack failed: {type(exc).__name__}: {exc}"]
    if not keras.__version__.startswith("2.") or not tf.keras.__name__.startswith("tf_keras"):
        return [
            f"tf.keras is {tf.keras.__name__}, not tf_keras (Keras 2); set TF_USE_LEGACY_KERAS=1 before "
            "importing TensorFlow (tfhsi does this in tfhsi._keras) and install tf-keras."
        ]
    return []
