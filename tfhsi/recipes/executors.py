"""Executors: how a recipe's independent tasks run — here, in a local process pool, or on Ray.

Every executor takes the same task function and plain arguments and yields ``(task, rows)``
as tasks finish. Tasks are idempotent (a finished one returns its saved rows), so a retry
after a lost worker recomputes nothing that had finished.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any, Protocol

from tfhsi import plugins
from tfhsi.recipes.tasks import Task, run_task

Rows = list[dict[str, Any]]
Log = Callable[[str], None]


class Executor(Protocol):
    def run(
        self, recipe_data: dict[str, Any], tasks: Sequence[Task], run_dir: str, data_dir: str | None
    ) -> Iterator[tuple[Task, Rows]]: ...


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _init_worker(threads: int) -> None:
    """Splits the cores between workers before TensorFlow starts in this process."""
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ["OMP_NUM_THREADS"] = str(threads)


def _quiet(_: str) -> None:
    return None


class LocalExecutor:
    """Runs tasks in this process (``workers=1``) or in a pool of fresh processes."""

    def __init__(self, workers: int = 1, *, log: Log = print) -> None:
        self.workers = max(1, workers)
        self.log = log

    def run(
        self, recipe_data: dict[str, Any], tasks: Sequence[Task], run_dir: str, data_dir: str | None
    ) -> Iterator[tuple[Task, Rows]]:
        if self.workers == 1 or len(tasks) <= 1:
            for task in tasks:
                self.log(f"▶ {task.label}")
                yield task, run_task(recipe_data, task, run_dir, data_dir, self.log)
            return
        threads = threads_per_worker(self.workers)
        context = get_context("spawn")  # a fresh interpreter: TensorFlow is not fork-safe
        with ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_init_worker, initargs=(threads,)
        ) as pool:
            pending: dict[Future[Rows], Task] = {}
            for task in tasks:
                self.log(f"▶ {task.label} (pool of {self.workers}, {threads} thread(s) each)")
                pending[
                    pool.submit(
                        run_task, recipe_data, task, run_dir, data_dir, _quiet, plugins.sources()
                    )
                ] = task
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    task = pending.pop(future)
                    yield task, future.result()


def make_executor(kind: str, *, workers: int | None, address: str | None, log: Log) -> Executor:
    """``local`` or ``ray`` (the Ray backend is an optional extra)."""
    from tfhsi.errors import ConfigError

    if kind == "local":
        return LocalExecutor(workers or 1, log=log)
    if kind == "ray":
        from tfhsi.recipes.ray_executor import RayExecutor

        return RayExecutor(address=address, workers=workers, log=log)
    raise ConfigError(f"unknown executor {kind!r}; use 'local' or 'ray'.")
