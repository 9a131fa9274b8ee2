"""train → evaluate → predict-map as a user runs them, on a tiny synthetic scene."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tfhsi.cli import app

runner = CliRunner()
DATASET = "synthetic:20x20x12x3"


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "160"})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "student2d"
    result = invoke(
        "train", "--dataset", DATASET, "--model", "student2d", "--patch", "5",
        "--epochs", "3", "--out", str(out), "--val", "0.1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_train_writes_a_complete_run_directory(run_dir: Path) -> None:
    names = {p.name for p in run_dir.iterdir()}
    assert {
        "run.json",
        "split.npz",
        "transform.npz",
        "history.json",
        "best.weights.h5",
        "model.keras",
        "metrics.json",
    } <= names
    assert not [n for n in names if ".part" in n]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["dataset"].endswith("(SYNTHETIC)")
    assert 0.0 <= metrics["keras"]["oa"] <= 1.0
    record = json.loads((run_dir / "run.json").read_text())
    assert record["dataset"]["synthetic"] is True
    assert record["environment"]["packages"]["tensorflow"]


def test_evaluate_reproduces_the_training_metrics(run_dir: Path) -> None:
    result = invoke("evaluate", str(run_dir / "model.keras"), "--json")
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.output)
    recorded = json.loads((run_dir / "metrics.json").read_text())["keras"]
    assert evaluated["oa"] == pytest.approx(recorded["oa"])
    assert evaluated["confusion"] == recorded["confusion"]


def test_predict_map_writes_png_and_labels(run_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "map.png"
    result = invoke("predict-map", str(run_dir), "--out", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    predicted = np.load(target.with_suffix(".npy"))
    assert predicted.shape == (20, 20) and set(np.unique(predicted)) <= {1, 2, 3}


def test_existing_run_is_not_overwritten_without_resume(run_dir: Path) -> None:
    before = (run_dir / "metrics.json").read_bytes()
    result = invoke(
        "train",
        "--dataset",
        DATASET,
        "--model",
        "student2d",
        "--patch",
        "5",
        "--epochs",
        "3",
        "--out",
        str(run_dir),
    )
    assert result.exit_code == 2
    assert "pass --resume" in result.output
    assert (run_dir / "metrics.json").read_bytes() == before


def test_resume_with_other_options_is_refused(run_dir: Path) -> None:
    result = invoke(
        "train", "--dataset", DATASET, "--model", "student2d", "--patch", "5", "--epochs", "4",
        "--out", str(run_dir), "--val", "0.1", "--resume",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "options differ from the interrupted run" in result.output


def test_missing_real_scene_is_an_error_not_synthetic(tmp_path: Path) -> None:
    result = invoke(
        "train",
        "--dataset",
        "pavia_u",
        "--model",
        "student2d",
        "--out",
        str(tmp_path / "r"),
        "--data-dir",
        str(tmp_path),
    )
    assert result.exit_code == 2
    assert (
        "PaviaU.mat not found" in result.output and "tfhsi data download pavia_u" in result.output
    )
    assert not (tmp_path / "r").exists()


def test_unknown_model_lists_valid_names(tmp_path: Path) -> None:
    result = invoke(
        "train", "--dataset", DATASET, "--model", "hamida", "--out", str(tmp_path / "r")
    )
    assert result.exit_code == 2
    assert "unknown model 'hamida'" in result.output and "hamida3d" in result.output
