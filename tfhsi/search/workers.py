"""Where trials run: in this process, in a local pool of fresh processes, or on Ray.

The search's driver proposes every trial itself (ask/tell, see :mod:`tfhsi.search.engine`)
and hands each one, as plain values, to one of these; they return the trial's record by
value. The pool and Ray run each call in a fresh process (the pool: a one-process executor per
call; Ray: ``max_calls=1``) with the same thread budget, as the recipe executors do
(:mod:`tfhsi.recipes.executors`, :mod:`tfhsi.recipes.ray_executor`, whose thread split,
cluster connection and shared-storage check are reused here).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol

from tfhsi import plugins
from tfhsi.errors import ConfigError, TfhsiError
from tfhsi.recipes.executors import _init_worker, threads_per_worker

Log = Callable[[str], None]
Call = tuple[Callable[..., Any], tuple[Any, ...]]
"""A function of plain values and its arguments; ``log`` and plugin modules are appended."""


class Workers(Protocol):
    """Runs calls; yields ``(index in calls, result)`` as each finishes."""

    def run(self, calls: Sequence[Call]) -> Iterator[tuple[int, Any]]: ...

    def close(self) -> None: ...


def _quiet(_: str) -> None:
    return None


class InProcess:
    """One call after the other, in this process."""

    def __init__(self, log: Log = print) -> None:
        self.log = log

    def run(self, calls: Sequence[Call]) -> Iterator[tuple[int, Any]]:
        for index, (fn, args) in enumerate(calls):
            yield index, fn(*args, self.log)

    def close(self) -> None:
        return None


class LocalPool:
    """Up to ``workers`` calls at a time, each in a fresh spawned process (its own one-process
    executor, so a dead worker is an error, never a hang), cores split evenly."""

    def __init__(self, workers: int, log: Log = print) -> None:
        self.workers = max(1, workers)
        self.log = log
        self.threads = threads_per_worker(self.workers)
        self._running: list[ProcessPoolExecutor] = []

    def _fresh(self) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(
            1,
            mp_context=get_context("spawn"),  # TensorFlow is not fork-safe
            initializer=_init_worker,
            initargs=(self.threads,),
        )
        self._running.append(executor)
        return executor

    def run(self, calls: Sequence[Call]) -> Iterator[tuple[int, Any]]:
        waiting = list(enumerate(calls))
        pending: dict[Future[Any], tuple[int, ProcessPoolExecutor]] = {}
        while waiting or pending:
            while waiting and len(pending) < self.workers:
                index, (fn, args) = waiting.pop(0)
                executor = self._fresh()
                future = executor.submit(fn, *args, _quiet, plugins.sources())
                pending[future] = (index, executor)
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index, executor = pending.pop(future)
                executor.shutdown(wait=True)
                self._running.remove(executor)
                try:
                    result = future.result()
                except BrokenProcessPool as exc:
                    result = {"state": "failed", "error": f"its worker process died ({exc})"}
                yield index, result

    def close(self) -> None:
        for executor in self._running:
            executor.shutdown(wait=False, cancel_futures=True)
        self._running.clear()


def _ray_call(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    env: dict[str, str],
    threads: int,
    modules: list[tuple[str, str | None]],
) -> Any:
    """The body of a Ray task: the driver's tfhsi settings and thread budget, then the call."""
    os.environ.update(env)
    _init_worker(threads)
    return fn(*args, _quiet, modules)


class RayWorkers:
    """Calls as Ray tasks (one fresh worker each); the run folder and the teacher cache must be
    on storage every node sees (checked once, as for recipes)."""

    def __init__(
        self, folder: Path, *, address: str | None, workers: int | None, log: Log = print
    ) -> None:
        from tfhsi.recipes.ray_executor import RayExecutor

        self.executor = RayExecutor(address=address, workers=workers, log=log)
        self.folder = folder
        self.log = log

    def run(self, calls: Sequence[Call]) -> Iterator[tuple[int, Any]]:
        from tfhsi.recipes.ray_executor import DATA_ENV
        from tfhsi.recipes.teachers import CACHE_ENV, cache_dir

        executor = self.executor
        executor.connect()
        ray = executor.ray
        env = {CACHE_ENV: str(cache_dir().resolve())}
        if os.environ.get(DATA_ENV):
            env[DATA_ENV] = os.environ[DATA_ENV]
        executor.check_shared_storage(
            {
                "search directory": self.folder,
                "teacher cache ($TFHSI_CACHE_DIR)": Path(env[CACHE_ENV]),
            }
        )
        cpus = executor.cpus()
        remote = ray.remote(
            num_cpus=cpus, max_calls=1, max_retries=executor.max_retries, retry_exceptions=False
        )(_ray_call)
        threads = max(1, int(cpus))
        refs = {
            remote.remote(fn, args, env, threads, plugins.sources()): i
            for i, (fn, args) in enumerate(calls)
        }
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                index = refs.pop(ref)
                try:
                    yield index, ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, TfhsiError):
                        raise cause from None
                    raise exc.as_instanceof_cause() from None
                except ray.exceptions.RayError as exc:
                    yield index, {"state": "failed", "error": f"lost its Ray worker: {exc}"}

    def close(self) -> None:
        return None


def make_workers(
    kind: str, *, workers: int | None, address: str | None, folder: Path, log: Log
) -> Workers:
    """``local`` (in this process with one worker, else a pool) or ``ray``."""
    if kind == "local":
        return InProcess(log) if (workers or 1) == 1 else LocalPool(workers or 1, log)
    if kind == "ray":
        return RayWorkers(folder, address=address, workers=workers, log=log)
    raise ConfigError(f"unknown executor {kind!r}; use 'local' or 'ray'.")
