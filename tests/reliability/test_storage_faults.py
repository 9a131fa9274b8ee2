"""Disks, permissions and the network: unreadable or read-only data, a full disk mid-run or
mid-download, a download URL that is gone.

A full disk is simulated where it surfaces for tfhsi: the fsync of an atomic write's temp
file fails with ENOSPC (see ``simulate.full_disk``). Permission faults use ``chmod`` and,
as root, the equivalent errors at the ``os`` level (see ``simulate.denied``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_check import assert_nothing_lost, assert_one_error, snapshot, tfhsi
from conftest import TINY
from simulate import denied, file_server, full_disk, serve_scene_from, write_ksc

KSC_TRAIN = ("--dataset", "ksc", "--model", "student2d", "--patch", "5", "--epochs", "1")


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """KSC's files served from a loopback server; ``tfhsi data download ksc`` fetches them."""
    files = tmp_path / "served"
    write_ksc(files)
    with file_server(files / "ksc") as url:
        serve_scene_from(monkeypatch, url)
        yield files / "ksc"


def test_unreadable_scene_folder_is_named_with_the_fix(tmp_path: Path, runs: Path, earlier) -> None:
    data = tmp_path / "data"
    write_ksc(data)
    with denied(data / "ksc", writes_only=False):
        result = tfhsi("train", *KSC_TRAIN, "--out", runs / "new", "--data-dir", data)
    assert_one_error(result, f"cannot read {data / 'ksc'}", "permission denied", "chmod -R a+rX")
    assert_nothing_lost(earlier, touched=[data, runs], absent=[runs / "new"])


def test_unreadable_scene_file_is_named_with_the_fix(tmp_path: Path, runs: Path, earlier) -> None:
    data = tmp_path / "data"
    cube, _ = write_ksc(data)
    with denied(cube, writes_only=False):
        result = tfhsi("train", *KSC_TRAIN, "--out", runs / "new", "--data-dir", data)
    assert_one_error(result, f"cannot read {cube}", "permission denied", "readable copy")
    assert_nothing_lost(earlier, touched=[data, runs], absent=[runs / "new"])


def test_download_from_a_url_that_is_gone_names_the_url_and_the_manual_fix(
    tmp_path: Path, runs: Path, earlier, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    (tmp_path / "empty").mkdir()
    with file_server(tmp_path / "empty") as url:
        serve_scene_from(monkeypatch, url)
        result = tfhsi("data", "download", "ksc", "--data-dir", data)
    assert_one_error(
        result, f"cannot download {url}KSC.mat", "404", f"place it at {data / 'ksc' / 'KSC.mat'}"
    )
    assert not (data / "ksc" / "KSC.mat").exists()
    assert_nothing_lost(earlier, touched=[data, runs])


def test_read_only_data_directory_is_enough_to_train(tmp_path: Path, runs: Path, earlier) -> None:
    data = tmp_path / "data"
    write_ksc(data)
    before = snapshot(data)
    with denied(data, writes_only=True):
        result = tfhsi("train", *KSC_TRAIN, "--out", runs / "new", "--data-dir", data)
    assert result.exit_code == 0, result.output
    assert snapshot(data) == before
    assert_nothing_lost(earlier, touched=[runs])


@pytest.mark.parametrize("scene_folder_exists", [False, True], ids=["empty", "scene_folder"])
def test_download_into_read_only_data_directory_is_refused_with_the_fix(
    served: Path, tmp_path: Path, runs: Path, earlier, scene_folder_exists: bool
) -> None:
    data = tmp_path / "data"
    (data / "ksc" if scene_folder_exists else data).mkdir(parents=True)
    with denied(data, writes_only=True):
        result = tfhsi("data", "download", "ksc", "--data-dir", data)
    line = assert_one_error(result, str(data), "writable")
    assert "read-only" in line.lower()
    assert not (data / "ksc" / "KSC.mat").exists()
    assert_nothing_lost(earlier, touched=[data, runs])


def test_full_disk_during_download_keeps_nothing_and_says_free_space(
    served: Path, tmp_path: Path, runs: Path, earlier, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    with full_disk(monkeypatch, name="KSC.mat"):
        result = tfhsi("data", "download", "ksc", "--data-dir", data)
    assert_one_error(
        result, f"cannot write {data / 'ksc' / 'KSC.mat'}", "no space left", "free disk space"
    )
    assert not (data / "ksc" / "KSC.mat").exists()
    assert_nothing_lost(earlier, touched=[data, runs])
    again = tfhsi("data", "download", "ksc", "--data-dir", data)  # space freed: it works
    assert again.exit_code == 0, again.output
    assert (data / "ksc" / "KSC.mat").read_bytes() == (served / "KSC.mat").read_bytes()


def test_full_disk_mid_training_keeps_finished_epochs_and_resume_completes(
    runs: Path, earlier, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = runs / "new"
    train = ("train", *TINY, "--epochs", "3", "--patience", "10", "--out", out)
    with full_disk(monkeypatch, name="history.json", after=1):  # epoch 2's record fails
        result = tfhsi(*train)
    assert_one_error(
        result,
        f"cannot write {out / 'history.json'}",
        "no space left",
        "free disk space",
        "--resume",
    )
    history = json.loads((out / "history.json").read_text())  # the old file, complete
    assert len(history["epochs"]) == 1 and not history["completed"]
    assert not (out / "metrics.json").exists()
    assert_nothing_lost(earlier, touched=[runs])

    resumed = tfhsi(*train, "--resume")
    assert resumed.exit_code == 0, resumed.output
    history = json.loads((out / "history.json").read_text())
    assert len(history["epochs"]) == 3 and history["completed"]
    assert (out / "metrics.json").is_file()
    assert_nothing_lost(earlier, touched=[runs])


def test_full_disk_at_the_first_write_leaves_no_run_directory(
    runs: Path, earlier, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = runs / "new"
    with full_disk(monkeypatch, name="split.npz"):
        result = tfhsi("train", *TINY, "--epochs", "1", "--out", out)
    assert_one_error(result, f"cannot write {out / 'split.npz'}", "no space left")
    assert_nothing_lost(earlier, touched=[runs], absent=[out])


def test_read_only_runs_folder_is_refused_with_the_fix(runs: Path, earlier) -> None:
    with denied(runs, writes_only=True):
        result = tfhsi("train", *TINY, "--epochs", "1", "--out", runs / "new")
    assert_one_error(result, str(runs / "new"), "read-only", "choose a writable --out")
    assert_nothing_lost(earlier, absent=[runs / "new"])
