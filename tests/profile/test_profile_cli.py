"""``tfhsi profile`` as a user runs it (registered on a local app, as the lead does)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tfhsi.cli import _ErrorReportingGroup
from tfhsi.cli.profile import profile

app = typer.Typer(cls=_ErrorReportingGroup)
app.command("profile")(profile)


@app.command("noop", hidden=True)
def _noop() -> None:  # a second command keeps "profile" a sub-command
    pass


runner = CliRunner()
FAST = ["--runs", "5", "--warmup", "1"]


def invoke(*args: str):
    return runner.invoke(app, ["profile", *args], env={"COLUMNS": "200"})


@pytest.fixture(autouse=True)
def _no_user_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TFHSI_TARGETS_DIR", raising=False)


def test_fat_model_does_not_fit_cortex_m4_flash(fat_dense: bytes, tmp_path: Path) -> None:
    path = tmp_path / "fat.tflite"
    path.write_bytes(fat_dense)
    assert len(fat_dense) > 1024 * 1024
    result = invoke(str(path), "--target", "cortex-m4", "--no-benchmark", *FAST)
    assert result.exit_code == 0, result.output
    assert "cortex-m4" in result.output and "does not fit" in result.output
    assert "FAIL: flash: model" in result.output and "> 1,024.0 KiB" in result.output
    assert "TFLite Micro arena" in result.output


def test_json_record_has_every_measurement_and_the_environment(
    int8_2d_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "profile.json"
    result = invoke(
        str(int8_2d_path), "--json", "--out", str(out), "-t", "cortex-m7", "-t", "esp32-s3", *FAST
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert json.loads(out.read_text()) == record
    assert record["macs"]["per_sample"] == 463_552
    assert record["size"]["raw_bytes"] == int8_2d_path.stat().st_size
    configs = {(s["threads"], s["xnnpack"]) for s in record["latency"]}
    assert {(1, True), (1, False)} <= configs and len(configs) in (2, 4)
    assert record["litert_benchmark"] and "threads" in record["litert_benchmark"][0]
    arena = record["tflm"]["arena"]
    assert arena["verified_fail_at"] < arena["min_bytes"] == arena["verified_ok_at"]
    builtin = next(a for a in record["tflm"]["agreement"] if not a["xnnpack"])
    assert builtin["max_lsb_diff"] <= 1
    assert [t["target"] for t in record["targets"]] == ["cortex-m7", "esp32-s3"]
    assert all(t["verdict"] == "fits" for t in record["targets"])
    assert record["targets"][0]["estimated_latency_ms"] > 0
    assert record["environment"]["packages"]["ai-edge-litert"]


def test_conv3d_model_reports_the_missing_tflm_kernel_per_mcu_target(
    int8_conv3d: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "c3d.tflite"
    path.write_bytes(int8_conv3d)
    result = invoke(str(path), "-t", "cortex-m7", "--no-benchmark", "--json", *FAST)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert "CONV_3D" in record["tflm"]["error"]
    (m7,) = record["targets"]
    assert m7["verdict"] == "does not fit"
    assert any("CONV_3D" in r for r in m7["reasons"])


def test_unknown_target_exits_2_with_suggestion(int8_2d_path: Path) -> None:
    result = invoke(str(int8_2d_path), "--target", "cortex-m5")
    assert result.exit_code == 2
    assert "unknown target 'cortex-m5'" in result.output and "cortex-m4" in result.output


def test_missing_model_file_exits_2(tmp_path: Path) -> None:
    result = invoke(str(tmp_path / "nope.tflite"), "--no-tflm", "--no-benchmark")
    assert result.exit_code == 2
    assert "nope.tflite does not exist" in result.output
