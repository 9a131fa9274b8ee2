"""`tfhsi doctor` flags the setups that break TF-MOT, with the fix."""

from __future__ import annotations

from typer.testing import CliRunner

from tfhsi.cli import app
from tfhsi.env import environment, setup_problems

GOOD = {
    "tensorflow": "2.21.0",
    "tf-keras": "2.21.0",
    "tensorflow-model-optimization": "0.8.1",
    "ai-edge-litert": "2.3.0",
    "tflite-micro": "0.dev1",
}


def test_consistent_stack_has_no_problems() -> None:
    assert setup_problems(GOOD) == []


def test_minor_mismatch_is_flagged_with_pip_fix() -> None:
    problems = setup_problems({**GOOD, "tf-keras": "2.20.1"})
    assert problems == [
        "TensorFlow 2.21.0 and tf-keras 2.20.1 differ in minor version; `pip install 'tf-keras==2.21.*'`."
    ]


def test_keras3_only_setup_is_flagged() -> None:
    problems = setup_problems({**GOOD, "tf-keras": None, "keras": "3.15.1"})
    assert len(problems) == 1
    assert "only Keras 3.15.1 (Keras 3) is installed" in problems[0]
    assert "pip install 'tf-keras==2.21.*'" in problems[0]


def test_doctor_reports_versions_of_this_environment() -> None:
    result = CliRunner().invoke(app, ["doctor", "--no-import"], env={"COLUMNS": "120"})
    packages = environment()["packages"]
    assert isinstance(packages, dict)
    assert packages["tensorflow"] in result.output
    assert result.exit_code == 0, result.output
