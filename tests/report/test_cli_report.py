"""``tfhsi report show | build | compare`` through the real CLI app."""

from __future__ import annotations

from pathlib import Path

from fake_run import write_fake_run
from typer.testing import CliRunner

from tfhsi.cli.report import app

runner = CliRunner()


def test_show_prints_headline_and_warnings(tmp_path: Path) -> None:
    write_fake_run(tmp_path, with_maps=False)
    result = runner.invoke(app, ["show", str(tmp_path)], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    assert "Headline results" in result.output
    assert "SYNTHETIC DATA" in result.output and "QUICK RUN" in result.output
    assert "kd_student" in result.output and "±" in result.output
    assert "int16x8 conversion needs a representative dataset" in result.output


def test_build_writes_the_report_into_out(tmp_path: Path) -> None:
    write_fake_run(tmp_path / "run", with_maps=False)
    result = runner.invoke(app, ["build", str(tmp_path / "run"), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rep" / "report.html").is_file()
    assert (tmp_path / "rep" / "plots" / "pareto_size.png").is_file()


def test_compare_prints_both_runs_and_writes_files(tmp_path: Path) -> None:
    write_fake_run(tmp_path / "a", with_maps=False)
    write_fake_run(tmp_path / "b", with_maps=False)
    result = runner.invoke(
        app,
        ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c")],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output
    assert "kd_indian_pines (a)" in result.output and "kd_indian_pines (b)" in result.output
    assert (tmp_path / "c" / "compare.html").is_file()


def test_missing_run_record_is_a_user_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["show", str(tmp_path)])
    assert result.exit_code != 0
    assert "no run record" in str(result.exception)
