"""Shared fixtures: where the real scenes are, and tiny fake scene files with the real layout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# CLI output is checked as text: a fixed console width, whatever terminal (or xdist worker
# without one) runs the tests, so rich never wraps a line differently from one run to the next.
os.environ["COLUMNS"] = "200"

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REAL_DATA = REPO.parent / "shared" / "data"


def real_data_root() -> Path:
    return Path(os.environ.get("TFHSI_TEST_DATA", DEFAULT_REAL_DATA))


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real scenes (../shared/data or $TFHSI_TEST_DATA); skips the test when absent."""
    root = real_data_root()
    if not (root / "indian_pines" / "Indian_pines_corrected.mat").is_file():
        pytest.skip(f"real scenes not found in {root} (set TFHSI_TEST_DATA)")
    return root


@pytest.fixture
def fake_data_dir(tmp_path: Path) -> Path:
    """A data directory with tiny seeded fake files laid out like the real ones."""
    from fake_scenes import write_fake_scene

    for name in ("indian_pines", "pavia_u", "salinas_a"):
        write_fake_scene(name, tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("teacher_cache")


@pytest.fixture(autouse=True)
def _no_user_dirs(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory, _session_cache: Path
) -> None:
    """Tests never read or write the user's data directory or teacher cache by accident."""
    monkeypatch.setenv("TFHSI_DATA_DIR", str(tmp_path_factory.mktemp("empty_data_dir")))
    monkeypatch.setenv("TFHSI_CACHE_DIR", str(_session_cache))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files holding slow tests first: with ``--dist loadfile`` a slow file sent last would
    leave the other worker idle while it runs (stable order otherwise)."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``--dist loadfile``, with the files that start local Ray clusters as one work unit: one
    worker runs them one after the other instead of one worker idling on the other's cluster."""
    if config.getoption("dist") != "loadfile":
        return None  # xdist's own scheduler
    from ray_lock import RAY_TEST_FILES
    from xdist.scheduler import LoadFileScheduling

    class RayFilesTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return "local Ray clusters" if scope in RAY_TEST_FILES else scope

    return RayFilesTogether(config, log)  # type: ignore[arg-type]
