"""The README's Python API example runs as written, on a small seeded synthetic scene (so it
cannot rot): a notebook-defined 3-D CNN through train → prune → lowering → QAT → int8 → audit →
TFLite Micro."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SETTINGS = re.compile(r"^SCENE, DATA_DIR, EPOCHS = .*$", re.MULTILINE)


def example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_example_sets_scene_data_dir_and_epochs_on_one_line() -> None:
    assert len(SETTINGS.findall(example())) == 1


@pytest.mark.slow
def test_readme_python_api_example_runs_to_a_full_int8_file_on_tflm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code = SETTINGS.sub('SCENE, DATA_DIR, EPOCHS = "synthetic:24x24x12x3@1", None, 1', example())
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out
    assert (tmp_path / "mine_int8.tflite").is_file()
    assert "int8 file OA" in out and "TFLite Micro arena" in out
