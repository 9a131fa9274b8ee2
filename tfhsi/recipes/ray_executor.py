"""Running a recipe's tasks on a Ray cluster (the optional extra ``pip install 'tfhsi[ray]'``).

Each task (the teacher of a seed, one variant of a seed) becomes a Ray task that declares
its CPUs (and GPUs), runs in a fresh worker process (``max_calls=1``: the TensorFlow thread
settings apply, memory is returned) and is retried by Ray when its worker or node dies.
Tasks are idempotent — a finished task, stage or export is read back, never recomputed — so a
retry only redoes the work that was lost.

Results travel two ways: the rows come back to the driver by value; the files (stage
checkpoints, ``.tflite``, ``rows.json``) are written by the workers into the run directory,
and the teachers into the teacher cache. Both must therefore be on storage that every node
sees at the same path (NFS, a mounted bucket, …); :class:`RayExecutor` checks this on every
alive node before the first task and stops with a clear error otherwise.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tfhsi import plugins
from tfhsi.errors import ConfigError, SetupError, TfhsiError
from tfhsi.recipes.executors import Log, Rows, _init_worker
from tfhsi.recipes.tasks import TEACHER, Task, run_task
from tfhsi.recipes.teachers import CACHE_ENV, cache_dir

INSTALL_HINT = "pip install 'tfhsi[ray]'"
DATA_ENV = "TFHSI_DATA_DIR"
MARKER = ".tfhsi-ray-check-"
CHECK_TIMEOUT_S = 120.0


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`SetupError` saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise SetupError(f"--executor ray needs Ray ({exc}): {INSTALL_HINT}") from exc
    return ray


def _run_recipe_task(
    recipe_data: dict[str, Any],
    task: Task,
    run_dir: str,
    data_dir: str | None,
    env: dict[str, str],
    threads: int,
    plugin_modules: list[tuple[str, str | None]] = [],  # noqa: B006 - read only
) -> Rows:
    """The body of a Ray task: the driver's tfhsi settings and a thread budget, then the task."""
    os.environ.update(env)
    _init_worker(threads)  # before TensorFlow starts: this worker process is fresh (max_calls=1)

    def log(message: str) -> None:  # forwarded to the driver's terminal by Ray
        print(f"[{task.label}] {message}", flush=True)

    return run_task(recipe_data, task, run_dir, data_dir, log, plugin_modules)


def _probe(markers: dict[str, str], token: str) -> list[str]:
    """On one node: which of the driver's marker files are not readable here."""
    missing = []
    for what, path in markers.items():
        try:
            seen = Path(path).read_text(encoding="utf-8")
        except OSError:
            seen = ""
        if seen != token:
            missing.append(what)
    return missing


class RayExecutor:
    """Runs tasks on a Ray cluster: ``address``, else ``$RAY_ADDRESS``, else a local instance.

    Args:
        address: The cluster (``host:port`` or ``ray://host:10001``); ``None`` lets Ray find one
            (``$RAY_ADDRESS``, a cluster started on this machine) or start a local instance.
            An already initialised Ray session is reused as it is.
        workers: At most this many tasks in flight (default: as many as the cluster fits).
        log: Progress lines.
        cpus_per_task: CPUs each task declares and uses as TensorFlow threads (default: 1, or
            the cluster's CPUs split between ``workers``, capped at the biggest node).
        gpus_per_task: GPUs each task declares (default 0).
        max_retries: How often a task whose worker or node died is run again.
    """

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        log: Log = print,
        *,
        cpus_per_task: float | None = None,
        gpus_per_task: float = 0.0,
        max_retries: int = 3,
    ) -> None:
        self.ray = import_ray()
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers must be ≥ 1, got {workers}.")
        if cpus_per_task is not None and cpus_per_task <= 0:
            raise ConfigError(f"cpus_per_task must be > 0, got {cpus_per_task}.")
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.workers = workers
        self.log = log
        self.cpus_per_task = cpus_per_task
        self.gpus_per_task = gpus_per_task
        self.max_retries = max_retries
        self._checked: set[tuple[str, ...]] = set()

    def connect(self) -> None:
        """Joins (or starts) the Ray cluster once; an existing session is reused."""
        ray = self.ray
        if ray.is_initialized():
            return
        try:
            ray.init(address=self.address, ignore_reinit_error=True)
        except ConnectionError as exc:
            raise ConfigError(
                f"cannot reach the Ray cluster at {self.address!r} ({exc}); start it with "
                "`ray start --head` or pass --address HOST:PORT (or set RAY_ADDRESS)."
            ) from exc

    def cpus(self) -> float:
        """CPUs (= TensorFlow threads) each task declares."""
        if self.cpus_per_task is not None:
            return self.cpus_per_task
        if self.workers is None:
            return 1.0
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        biggest = max((n["Resources"].get("CPU", 0.0) for n in nodes), default=1.0)
        total = self.ray.cluster_resources().get("CPU", 1.0)
        return float(max(1, min(int(biggest), int(total // self.workers))))

    def run(
        self, recipe_data: dict[str, Any], tasks: Sequence[Task], run_dir: str, data_dir: str | None
    ) -> Iterator[tuple[Task, Rows]]:
        if not tasks:
            return
        self.connect()
        ray = self.ray
        env = {CACHE_ENV: str(cache_dir().resolve())}
        if data_dir is None and os.environ.get(DATA_ENV):
            env[DATA_ENV] = os.environ[DATA_ENV]
        self.check_shared_storage(
            {
                "run directory": Path(run_dir),
                "teacher cache ($TFHSI_CACHE_DIR)": Path(env[CACHE_ENV]),
            }
        )
        cpus = self.cpus()
        remote = ray.remote(
            num_cpus=cpus,
            num_gpus=self.gpus_per_task,
            max_calls=1,
            max_retries=self.max_retries,
            retry_exceptions=False,
        )(_run_recipe_task)
        threads = max(1, int(cpus))
        limit = self.workers or len(tasks)
        queue = list(tasks)
        running: dict[Any, Task] = {}
        finished = 0
        while queue or running:
            while queue and len(running) < limit:
                task = queue.pop(0)
                running[
                    remote.remote(
                        recipe_data, task, run_dir, data_dir, env, threads, plugins.sources()
                    )
                ] = task
                gpus = f", {self.gpus_per_task:g} GPU" if self.gpus_per_task else ""
                self.log(
                    f"▶ {task.label} → Ray ({cpus:g} CPU{gpus}) "
                    f"[{finished}/{len(tasks)} done · {len(running)} in flight · {len(queue)} waiting]"
                )
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                task = running.pop(ref)
                rows = self._result(ref, task)
                finished += 1
                yield task, rows

    def _result(self, ref: Any, task: Task) -> Rows:
        """The task's rows; a bug in it is raised, a worker lost more than allowed is a failed row."""
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(ref)
        except exceptions.RayTaskError as exc:  # the task raised: the same error as locally
            cause = getattr(exc, "cause", None)
            if isinstance(cause, TfhsiError):  # its message says what to fix: no remote traceback
                raise cause from None
            raise exc.as_instanceof_cause() from None
        except exceptions.RayError as exc:  # worker / node / memory lost after every retry
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return [
                {
                    "seed": task.seed,
                    "variant": task.variant or TEACHER,
                    "format": "-",
                    "error": f"lost its Ray worker {self.max_retries + 1} times "
                    f"({type(exc).__name__}: {reason}); --resume retries it",
                }
            ]

    def check_shared_storage(self, folders: dict[str, Path]) -> None:
        """Fails unless every alive node sees ``folders`` (a marker written here, read there)."""
        key = tuple(sorted(str(p) for p in folders.values()))
        if key in self._checked:
            return
        ray = self.ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        token = secrets.token_hex(8)
        markers: dict[str, str] = {}
        try:
            for what, folder in folders.items():
                folder.mkdir(parents=True, exist_ok=True)
                marker = folder / f"{MARKER}{token}"
                marker.write_text(token, encoding="utf-8")
                markers[what] = str(marker)
            probe = ray.remote(num_cpus=0, max_retries=1)(_probe)
            refs = {
                node.get("NodeManagerAddress", node["NodeID"]): probe.options(
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
                ).remote(markers, token)
                for node in ray.nodes()
                if node.get("Alive")
            }
            blind: list[str] = []
            for node, ref in refs.items():
                try:
                    missing = ray.get(ref, timeout=CHECK_TIMEOUT_S)
                except ray.exceptions.GetTimeoutError:
                    raise ConfigError(
                        f"Ray node {node} did not answer the shared-storage check within "
                        f"{CHECK_TIMEOUT_S:.0f} s; is the cluster healthy (`ray status`)?"
                    ) from None
                blind += [f"{node} cannot see the {what} {folders[what]}" for what in missing]
        finally:
            for path in markers.values():
                Path(path).unlink(missing_ok=True)
        if blind:
            raise ConfigError(
                "--executor ray: the run directory and the teacher cache must be on storage "
                "every node sees at the same path, but " + "; ".join(blind) + ". Pass "
                "--out /shared/path/run and set TFHSI_CACHE_DIR=/shared/path/cache (and "
                "--data-dir to a shared copy of the scenes)."
            )
        self._checked.add(key)
