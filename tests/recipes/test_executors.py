"""Executors give the same study whatever runs the tasks: in-process, a local pool, or Ray.

The tiny study (a teacher and 2 cheap variants on a synthetic scene) trains its own
teachers in every run (one teacher cache per run). Training is seeded, so runs with the same
TensorFlow thread count per task (the 2-worker pool and Ray: 1 thread each) agree exactly;
the in-process run uses both cores, and TensorFlow's multi-threaded float reductions may move
a logit by an ulp and flip a test pixel or two, hence a tolerance there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tiny_recipe import PRUNE, PTQ, tiny_recipe

from tfhsi.errors import SetupError
from tfhsi.recipes.executors import LocalExecutor
from tfhsi.recipes.runner import run_recipe
from tfhsi.recipes.schema import Recipe

HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed: pip install 'tfhsi[ray]'")
TASK_TITLE = "ray::_run_recipe_task"  # the process title of a Ray worker running a task
ONE_THREAD_TASKS_AGREE = 0.0
TEST_PIXELS_TOLERANCE = 0.03  # 4 of the ~133 test pixels of the 14x14 scene

SEEDS = (0,)
TINY = tiny_recipe("tiny_study", seeds=list(SEEDS), variants=[PTQ, PRUNE])
EXPECTED = {
    (seed, variant, fmt)
    for seed in SEEDS
    for variant, formats in (
        ("teacher", ("keras", "fp32")),
        ("ptq", ("keras", "int8")),
        ("prune", ("keras", "fp32", "int8")),
    )
    for fmt in formats
}


def run_study(base: Path, executor: Any) -> list[dict[str, Any]]:
    """Runs the tiny study with its own teacher cache; returns its result rows."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TFHSI_CACHE_DIR", str(base / "cache"))
        run_dir = run_recipe(
            Recipe.model_validate(TINY), out=base / "run", executor=executor, log=lambda _: None
        )
    return json.loads((run_dir / "results.json").read_text())["rows"]


def by_key(rows: list[dict[str, Any]]) -> dict[tuple[int, str, str], dict[str, Any]]:
    counts = Counter((r["seed"], r["variant"], r["format"]) for r in rows)
    assert {k: n for k, n in counts.items() if n != 1} == {}, "a result appears more than once"
    assert set(counts) == EXPECTED
    assert [r["error"] for r in rows if r.get("error")] == []
    return {(r["seed"], r["variant"], r["format"]): r for r in rows}


def assert_same_results(a: list[dict[str, Any]], b: list[dict[str, Any]], tol: float) -> None:
    left, right = by_key(a), by_key(b)
    for key, row in left.items():
        assert (row["model"], row["stage"]) == (right[key]["model"], right[key]["stage"]), key
        assert row["oa"] == pytest.approx(right[key]["oa"], abs=tol), key


@pytest.fixture(scope="module")
def pool_rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return run_study(tmp_path_factory.mktemp("pool"), LocalExecutor(2, log=lambda _: None))


@pytest.fixture(scope="module")
def ray_session() -> Iterator[Any]:
    if not HAS_RAY:
        pytest.skip("Ray is not installed: pip install 'tfhsi[ray]'")
    import ray
    from ray_lock import RAY_LOCK

    with RAY_LOCK:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield ray
        ray.shutdown()


def test_ray_executor_without_ray_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from tfhsi.recipes.executors import make_executor

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(SetupError, match=r"pip install 'tfhsi\[ray\]'"):
        make_executor("ray", workers=None, address=None, log=print)


@needs_ray
def test_storage_probe_names_the_folders_a_node_cannot_read(tmp_path: Path) -> None:
    from tfhsi.recipes.ray_executor import _probe

    seen = tmp_path / "seen"
    seen.write_text("token")
    stale = tmp_path / "stale"
    stale.write_text("other")
    markers = {"run": str(seen), "cache": str(stale), "data": str(tmp_path / "absent")}
    assert _probe(markers, "token") == ["cache", "data"]


@pytest.mark.slow
def test_local_pool_gives_the_results_of_the_in_process_run(
    tmp_path: Path, pool_rows: list[dict[str, Any]]
) -> None:
    sequential = run_study(tmp_path, LocalExecutor(1, log=lambda _: None))
    assert_same_results(sequential, pool_rows, TEST_PIXELS_TOLERANCE)


@needs_ray
@pytest.mark.slow
def test_ray_gives_the_results_of_the_local_pool(
    tmp_path: Path, pool_rows: list[dict[str, Any]], ray_session: Any
) -> None:
    from tfhsi.recipes.ray_executor import MARKER, RayExecutor

    lines: list[str] = []
    rows = run_study(tmp_path, RayExecutor(log=lines.append))
    assert_same_results(rows, pool_rows, ONE_THREAD_TASKS_AGREE)
    assert sum(line.startswith("▶ seed 0 · prune → Ray (1 CPU)") for line in lines) == 1
    assert not list(tmp_path.rglob(f"{MARKER}*"))  # the storage check cleans up


def _task_workers() -> list[Any]:
    """This test's Ray worker processes that are running a recipe task."""
    import psutil

    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if " ".join(process.cmdline()).startswith(TASK_TITLE):
                found.append(process)
        except psutil.Error:
            continue
    return found


def _watch(run_dir: Path, stop: threading.Event, killed: list[int], seen: dict[Path, float]):
    """Notes when each finished-work file first appears; kills one variant task's worker."""
    first_seen: float | None = None
    while not stop.is_set():
        for pattern in ("rows.json", "done.json", "*.row.json"):
            for path in run_dir.rglob(pattern):
                if ".part" in path.name or path in seen:  # atomic writes' temp files come and go
                    continue
                try:
                    seen[path] = path.stat().st_mtime_ns
                except FileNotFoundError:
                    continue
        teachers_done = all((run_dir / f"seed_{s}/teacher/rows.json").is_file() for s in SEEDS)
        workers = _task_workers() if teachers_done and not killed else []
        if workers:  # a variant task is running: let it get going, then kill its worker
            first_seen = first_seen or time.monotonic()
            if time.monotonic() - first_seen > 1.5:
                os.kill(workers[0].pid, signal.SIGKILL)
                killed.append(workers[0].pid)
        time.sleep(0.1)


@needs_ray
@pytest.mark.slow
def test_study_survives_a_killed_ray_worker_without_losing_or_redoing_work(
    tmp_path: Path, pool_rows: list[dict[str, Any]], ray_session: Any
) -> None:
    from tfhsi.recipes.ray_executor import RayExecutor

    stop, killed, seen = threading.Event(), [], {}
    watcher = threading.Thread(target=_watch, args=(tmp_path / "run", stop, killed, seen))
    watcher.start()
    try:
        rows = run_study(tmp_path, RayExecutor(log=lambda _: None, max_retries=2))
    finally:
        stop.set()
        watcher.join()

    assert len(killed) == 1, "the watcher never found a running variant task to kill"
    assert_same_results(rows, pool_rows, ONE_THREAD_TASKS_AGREE)  # every row, exactly once
    rewritten = [str(p) for p, mtime in seen.items() if p.stat().st_mtime_ns != mtime]
    assert rewritten == []  # nothing finished before the kill was computed again
    assert len([p for p in seen if p.name == "rows.json"]) == 3 * len(SEEDS)  # teacher + 2


def test_every_test_file_that_starts_a_local_ray_cluster_is_scheduled_with_the_others() -> None:
    from ray_lock import RAY_TEST_FILES

    tests = Path(__file__).resolve().parents[1]
    takers = {
        p.relative_to(tests.parent).as_posix()
        for p in tests.rglob("test_*.py")
        if "RAY_LOCK" in p.read_text(encoding="utf-8")
    }
    assert takers == set(RAY_TEST_FILES)
