"""``tfhsi search`` stops on bad input with one line and exit code 2, leaving nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tfhsi.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--max-arena", "lots"], "--max-arena: 'lots' is not a size"),
        (["--target", "cortex-m9"], "unknown target 'cortex-m9'"),
        (["--objective", "kappa"], "--objective must be oa or aa"),
        (["--space", "SPACE"], "field 'width': [-1] out of range"),
    ],
)
def test_bad_search_input_is_one_line_and_leaves_no_folder(
    tmp_path: Path, extra: list[str], says: str
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("width: [-1]\n", encoding="utf-8")
    out = tmp_path / "search"
    args = ["search", "--dataset", "synthetic:14x14x24x3", "--target", "cortex-m4"]
    args += ["--out", str(out), *[str(space) if a == "SPACE" else a for a in extra]]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and says in result.output
    assert not out.exists()
