"""SIGINT / SIGTERM in the middle of training, conversion, a download and report writing.

Each child process is the real ``tfhsi`` command. Where the moment matters, the child's
atomic writes announce themselves and pause before their rename (``simulate.slow_writes``),
and the signal is sent then: the worst case for a half-written file under a final name.
Afterwards: exit 130 (SIGINT) or 143 (SIGTERM), one ``interrupted`` line pointing to
``--resume``, no ``.part`` file, every file either the old or a complete one, and the
command (or ``--resume``) completes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from cli_check import assert_nothing_lost, part_files, snapshot, spawn, tfhsi
from conftest import TINY
from simulate import (
    file_server,
    prelude_serving,
    serve_scene_from,
    signal_when,
    slow_writes,
    write_ksc,
)

from tfhsi.profile.interpreter import TFLiteModel

SIGNALS = pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
TEACHER_ONLY = """\
name: tiny
dataset: synthetic:12x12x6x3
teacher: {model: student2d, patch: 5, train: {epochs: 2}}
maps: false
profile: {latency_runs: 1, tflm: false}
"""


def _interrupted_line(stderr: str, sig: int) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1, stderr
    assert signal.Signals(sig).name in lines[0] and "--resume" in lines[0]
    return lines[0]


def _nth(marker: str, n: int):
    seen = 0

    def ready(line: str) -> bool:
        nonlocal seen
        seen += marker in line
        return seen >= n

    return ready


@SIGNALS
def test_signal_mid_training_keeps_finished_epochs_and_resume_completes(
    sig: int, code: int, runs: Path, earlier
) -> None:
    out = runs / "new"
    train = ("train", *TINY, "--epochs", "4", "--patience", "10", "--out", out)
    child = spawn(*train, prelude=slow_writes("history.json"))
    _, stderr = signal_when(child, _nth("ATOMIC-WRITE .history.json.", 2), sig)  # epoch 2
    assert child.returncode == code, stderr
    _interrupted_line(stderr, sig)
    history = json.loads((out / "history.json").read_text())
    assert len(history["epochs"]) == 1 and not history["completed"]  # epoch 2 not half-recorded
    assert not (out / "metrics.json").exists() and part_files([out]) == []

    resumed = tfhsi(*train, "--resume")
    assert resumed.exit_code == 0, resumed.output
    history = json.loads((out / "history.json").read_text())
    assert len(history["epochs"]) == 4 and history["completed"]
    assert_nothing_lost(earlier, touched=[runs])


def test_sigterm_mid_conversion_leaves_no_tflite_and_resume_exports_a_valid_one(
    tmp_path: Path, runs: Path, earlier
) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TEACHER_ONLY)
    out = runs / "recipe"
    child = spawn("recipe", "run", recipe, "--out", out, prelude=slow_writes("fp32.tflite"))
    _, stderr = signal_when(child, _nth("ATOMIC-WRITE .fp32.tflite.", 1), signal.SIGTERM)
    assert child.returncode == 143, stderr
    _interrupted_line(stderr, signal.SIGTERM)
    export = out / "seed_0" / "teacher" / "export"
    assert not (export / "fp32.tflite").exists()
    assert part_files([out, Path(os.environ["TFHSI_CACHE_DIR"])]) == []

    resumed = tfhsi("recipe", "run", recipe, "--out", out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "cached" in resumed.output  # the teacher trained before the signal is reused
    assert TFLiteModel(export / "fp32.tflite").input_shape == (1, 5, 5, 6)
    assert_nothing_lost(earlier, touched=[runs])


@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -signal.SIGKILL)],
    ids=["SIGINT", "SIGTERM", "SIGKILL"],
)
def test_signal_mid_download_keeps_nothing_and_the_next_download_completes(
    sig: int, code: int, tmp_path: Path, runs: Path, earlier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL cannot be handled: its temp file stays, but never under the final name."""
    served = tmp_path / "served"
    write_ksc(served)
    (served / "ksc" / "KSC.mat").write_bytes(bytes(range(256)) * 16384)  # 4 MiB
    data = tmp_path / "data"
    with file_server(served / "ksc", delay=0.05) as url:  # about 3 s for the cube
        child = spawn("data", "download", "ksc", "--data-dir", data, prelude=prelude_serving(url))
        deadline = time.monotonic() + 120
        while not part_files([data]) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert part_files([data]), "the download never started"
        child.send_signal(sig)
        _, stderr = child.communicate(timeout=60)
        assert child.returncode == code, stderr
        assert not (data / "ksc" / "KSC.mat").exists()
        if sig != signal.SIGKILL:
            _interrupted_line(stderr, sig)
            assert part_files([data]) == []

        serve_scene_from(monkeypatch, url)
        again = tfhsi("data", "download", "ksc", "--data-dir", data)  # the lock is free again
    assert again.exit_code == 0, again.output
    assert (data / "ksc" / "KSC.mat").read_bytes() == (served / "ksc" / "KSC.mat").read_bytes()
    assert_nothing_lost(earlier, touched=[runs])


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished teacher-only recipe run with its report."""
    folder = tmp_path_factory.mktemp("recipe")
    recipe = folder / "tiny.yaml"
    recipe.write_text(TEACHER_ONLY)
    result = tfhsi("recipe", "run", recipe, "--out", folder / "run")
    assert result.exit_code == 0, result.output
    return folder / "run"


def test_sigint_mid_report_writing_keeps_the_old_report_and_a_rebuild_completes(
    recipe_run: Path, runs: Path, earlier
) -> None:
    run = runs / "recipe"
    shutil.copytree(recipe_run, run)
    before = snapshot(run)
    child = spawn("report", "build", run, prelude=slow_writes("report.html"))
    _, stderr = signal_when(child, _nth("ATOMIC-WRITE .report.html.", 1), signal.SIGINT)
    assert child.returncode == 130, stderr
    _interrupted_line(stderr, signal.SIGINT)
    assert (run / "report.html").read_bytes() == (recipe_run / "report.html").read_bytes()
    after = snapshot(run)
    assert set(after) == set(before) and part_files([run]) == []

    rebuilt = tfhsi("report", "build", run)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert (run / "report.html").read_text().rstrip().endswith("</html>")
    assert_nothing_lost(earlier, touched=[runs])
