"""``tfhsi quant-report`` on a training run, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tfhsi.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "160"})


def test_quant_report_writes_ranked_layers_markdown_and_plot_into_the_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    trained = invoke(
        "train", "--dataset", "synthetic:16x16x10x3", "--model", "student2d", "--patch", "5",
        "--epochs", "2", "--out", str(out), "--val", "0.2",
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    result = invoke("quant-report", str(out), "--samples", "8", "--keep-int8", "logits")
    assert result.exit_code == 0, result.output
    folder = out / "quant_report"
    record = json.loads((folder / "student2d_w4a8.json").read_text())
    costs = [layer["oa_cost_pp"] for layer in record["layers"]]
    assert costs == sorted(costs, reverse=True) and len(costs) >= 4
    assert record["subset"] == "val" and record["precision"] == "w4/8a8"
    assert (folder / "student2d_w4a8.png").read_bytes()[:4] == b"\x89PNG"
    assert "| rank | layer |" in (folder / "student2d_w4a8.md").read_text()

    # The same analysis of the run's exported float file; an integer file is refused.
    for preset in ("fp32", "int8"):
        exported = invoke("export", "tflite", str(out), "--preset", preset)
        assert exported.exit_code == 0, exported.output
    result = invoke("quant-report", str(out / "fp32.tflite"), "--run", str(out), "--samples", "8")
    assert result.exit_code == 0, result.output
    from_file = json.loads((folder / "fp32_w4a8.json").read_text())
    assert {layer["name"] for layer in from_file["layers"]} == {
        layer["name"] for layer in record["layers"]
    }
    assert from_file["float_oa"] == record["float_oa"]  # the same float model, on the same pixels
    refused = invoke("quant-report", str(out / "int8.tflite"), "--run", str(out))
    assert refused.exit_code == 2 and "int8 by its audit" in refused.output


def test_quant_report_with_a_bad_pattern_is_one_red_line_and_writes_nothing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    trained = invoke(
        "train", "--dataset", "synthetic:16x16x10x3", "--model", "student2d", "--patch", "5",
        "--epochs", "1", "--out", str(out), "--val", "0.2",
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    result = invoke("quant-report", str(out), "--keep-int8", "(")
    assert result.exit_code == 2
    assert "not a regular expression" in result.output
    assert not (out / "quant_report").exists()
