"""Fixtures of the reliability suite: an earlier run that must survive every failure."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_check import snapshot, tfhsi

TINY = ("--dataset", "synthetic:12x12x6x3", "--model", "student2d", "--patch", "5")


@pytest.fixture(scope="session", autouse=True)
def _private_teacher_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Recipe runs (and their children) never touch the user's teacher cache.

    Session-scoped so it is in place before module- and session-scoped fixtures run.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TFHSI_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished ``tfhsi train`` run on a tiny synthetic scene (trained once per session)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    result = tfhsi("train", *TINY, "--epochs", "1", "--out", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """The folder of runs: failing commands write their --out here, beside the earlier run."""
    folder = tmp_path / "runs"
    folder.mkdir()
    return folder


@pytest.fixture
def earlier(trained_run: Path, runs: Path) -> tuple[Path, dict[str, str]]:
    """An earlier run in ``runs/`` and the sha256 of each of its files."""
    folder = runs / "earlier"
    shutil.copytree(trained_run, folder)
    return folder, snapshot(folder)
