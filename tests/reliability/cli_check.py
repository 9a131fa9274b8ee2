"""Running ``tfhsi`` as a user does and checking the two promises of every failure.

1. One clear line: a non-zero exit (2 for user errors), exactly one ``error:`` line that
   names the file or field and the fix, and no traceback.
2. Nothing lost: an earlier run is byte-identical afterwards and no ``.part`` temp file
   is left anywhere under the folders the command touched.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from tfhsi.cli import app

RUNNER = CliRunner()
ENV = {"COLUMNS": "200", "TF_CPP_MIN_LOG_LEVEL": "2"}
MAIN = "from tfhsi.cli import main; main()"


def tfhsi(*args: object, env: dict[str, str] | None = None) -> Result:
    """``tfhsi ARGS`` in this process (CliRunner), stdout and stderr captured together."""
    return RUNNER.invoke(app, [str(a) for a in args], env={**ENV, **(env or {})})


def spawn(*args: object, env: dict[str, str] | None = None, prelude: str = "") -> subprocess.Popen:
    """``tfhsi ARGS`` in a child process (for signals); ``prelude`` runs before the CLI.

    The child gets the default SIGINT disposition even when the test run itself ignores SIGINT
    (a shell starts background jobs that way), as a terminal's Ctrl-C would find it.
    """
    code = f"{prelude}\n{MAIN}" if prelude else MAIN
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ENV, **(env or {})},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def assert_one_error(result: Result, *fragments: str, code: int = 2) -> str:
    """The command failed with ``code`` and one ``error:`` line holding every fragment."""
    output = result.output
    assert result.exit_code == code, f"exit {result.exit_code}, expected {code}:\n{output}"
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    lines = error_lines(output)
    assert len(lines) == 1, f"expected one error line:\n{output}"
    assert lines[0] == output.strip().splitlines()[-1], f"the error is not the last line:\n{output}"
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} missing from: {lines[0]}"
    return lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def part_files(folders: Iterable[Path]) -> list[Path]:
    """Temp files of atomic writes (``.part``) left under ``folders``."""
    return [p for f in folders if f.exists() for p in f.rglob("*") if ".part" in p.name]


def assert_nothing_lost(
    earlier: tuple[Path, dict[str, str]],
    *,
    touched: Sequence[Path] = (),
    absent: Sequence[Path] = (),
) -> None:
    """The earlier run is unchanged, no temp file is left, and no half-made run exists."""
    folder, before = earlier
    assert snapshot(folder) == before, f"the earlier run {folder} changed"
    assert part_files([folder, *touched]) == []
    for path in absent:
        assert not path.exists(), f"{path} was left behind by a failed command"
