"""The ``tfhsi`` command line.

Sub-command modules import TensorFlow inside their command functions only, so
``tfhsi --help`` and the data commands start instantly. A :class:`TfhsiError`
raised anywhere below becomes one red line on stderr and exit code 2; so does an
``OSError`` from a full disk or a permission problem. SIGINT and SIGTERM unwind the same
way (temp files of atomic writes are removed, finished files kept): one line saying how
to continue, exit code 130 or 143.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from tfhsi.cli import data as data_cli
from tfhsi.cli import doctor as doctor_cli
from tfhsi.cli import export as export_cli
from tfhsi.cli import models as models_cli
from tfhsi.cli import profile as profile_cli
from tfhsi.cli import quant_report as quant_report_cli
from tfhsi.cli import recipe as recipe_cli
from tfhsi.cli import report as report_cli
from tfhsi.cli import search as search_cli
from tfhsi.cli import train as train_cli
from tfhsi.cli._console import err_console
from tfhsi.errors import TfhsiError, storage_error


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like SIGINT's KeyboardInterrupt so the same cleanup runs."""

    signal_name = "SIGTERM"
    exit_code = 128 + signal.SIGTERM


def _terminate(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated()


def _report_interrupt(exc: KeyboardInterrupt) -> int:
    name = getattr(exc, "signal_name", "SIGINT")
    err_console.print(
        f"[bold red]interrupted[/] ({name}): finished files are kept and no partial file is "
        "left; run the same command with --resume to continue a training or recipe run.",
        highlight=False,
        soft_wrap=True,
    )
    return int(getattr(exc, "exit_code", 128 + signal.SIGINT))


class _ErrorReportingGroup(TyperGroup):
    """Turns user errors into a one-line message and a non-zero exit, never a traceback."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except TfhsiError as exc:
            self._fail(exc)
        except OSError as exc:  # disk full, read-only or permissions outside tfhsi's own writes
            error = storage_error(exc, exc.filename or "a file", writing=None)
            if error is None:
                raise
            self._fail(error)
        except KeyboardInterrupt as exc:
            raise typer.Exit(_report_interrupt(exc)) from None

    @staticmethod
    def _fail(exc: TfhsiError) -> None:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    name="tfhsi",
    cls=_ErrorReportingGroup,
    help="Train, compress, export and profile hyperspectral image classifiers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data_cli.app, name="data")
app.add_typer(models_cli.app, name="models")
app.command("train")(train_cli.train)
app.command("evaluate")(train_cli.evaluate)
app.command("predict-map")(train_cli.predict_map)
app.command("audit")(export_cli.audit)
app.command("profile")(profile_cli.profile)
app.command("quant-report")(quant_report_cli.quant_report)
app.add_typer(export_cli.app, name="export")
app.add_typer(recipe_cli.app, name="recipe")
app.add_typer(report_cli.app, name="report")
app.command("search")(search_cli.search)
app.command("doctor")(doctor_cli.doctor)


def main() -> None:
    """Console entry point: SIGTERM unwinds like SIGINT (see the module docstring)."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except KeyboardInterrupt as exc:  # before or after a command ran
        sys.exit(_report_interrupt(exc))
