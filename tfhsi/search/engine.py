"""The search: an Optuna study that proposes trials, runs them on workers and keeps the front.

How trials are proposed (ask/tell from the driver). The driver alone talks to the study: it
asks ``workers`` trials at a time, each with a TPE sampler seeded by (``seed``, trial number),
hands them to the workers (:mod:`tfhsi.search.workers`) as plain values, and tells the results
in trial order once the batch is back. What is proposed therefore depends only on the seed,
``--workers`` and the results, never on which executor ran the trials, how fast, or whether
the search was resumed. Workers never open the study, so any Optuna storage works: SQLite in
``DIR/study.db`` by default, or a URL (e.g. PostgreSQL) that several machines' drivers share.

Objectives: validation OA (or AA) up, arena (or latency, or flash) down. Constraints (the
target's and the ``--max-*`` budgets, :mod:`tfhsi.search.constraints`) go to TPE's
constrained mode: a trial that breaks them is told with its figures and constraint values
(an untrained conversion rejected before training is told with OA 0), so the sampler learns
where the budget lies.

Resume and Ctrl-C: every finished trial is in the study with its record; a finished trial is
never run again. A trial that was in flight when the search stopped (Ctrl-C, a kill) is
failed (``interrupted``) and its parameters are queued again, so the next ``--resume`` runs
it first, reusing the stages it had finished (``DIR/trials/trial_NNNN/``).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from tfhsi.atomic import write_text
from tfhsi.errors import ConfigError, TfhsiError
from tfhsi.search.constraints import Budget, kib, make_budget
from tfhsi.search.space import SearchSpace, propose
from tfhsi.search.trial import RESULT, run_teacher, run_trial, trial_dir
from tfhsi.search.workers import Workers

Log = Callable[[str], None]
Progress = Callable[[str, "dict[str, Any] | None", int, int], None]
"""``progress(event, record, done, total)``: event ``start``, ``trial`` or ``end``."""
STUDY = "tfhsi-search"
CONFIG = "search.yaml"
RECORD = "record"
CONSTRAINTS = ("arena", "flash", "latency", "target")
"""Constraint names, in the order of :func:`tfhsi.search.constraints.violations`."""
INTERRUPTED = "interrupted"
DUPLICATE = "duplicate_of"
REDRAWS = 20
"""Random redraws of a proposal that repeats a finished trial before the space counts as exhausted."""
DEFAULT_TEACHER: dict[str, Any] = {
    "model": "hamida3d",
    "patch": 11,
    "pca": 30,
    "train": {"epochs": 100, "augment": True},
}
Cost = Literal["arena", "latency", "flash"]
COST_FIELD = {"arena": "arena_bytes", "latency": "latency_ms", "flash": "size_bytes"}


class NoFitError(TfhsiError):
    """No trial fitted the budget; the message names the smallest arena and flash seen."""


@dataclass(frozen=True)
class SearchSettings:
    """What a search is (everything but where and how it runs)."""

    dataset: str
    target: str
    split: str = "random:0.1"
    seed: int = 0
    val_fraction: float = 0.05
    teacher: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_TEACHER))
    max_arena: str | int | None = None
    max_flash: str | int | None = None
    max_latency_ms: float | None = None
    objective: Literal["oa", "aa"] = "oa"
    cost: Cost = "arena"
    trials: int = 40
    timeout_min: float | None = None
    """Propose no trial after this many minutes of the search (its batch in flight finishes)."""
    space: SearchSpace = field(default_factory=SearchSpace)
    quick: bool = False
    quick_epochs: int = 1
    latency_runs: int = 10

    def budget(self) -> Budget:
        return make_budget(
            self.target,
            max_arena=self.max_arena,
            max_flash=self.max_flash,
            max_latency_ms=self.max_latency_ms,
        )

    def effective_space(self) -> SearchSpace:
        return self.space.capped(self.quick_epochs) if self.quick else self.space

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "space"}
        return {**data, "space": self.effective_space().model_dump(mode="json")}


def recipe_data(settings: SearchSettings) -> dict[str, Any]:
    """The generated recipe every trial is a variant of (plain data for the workers)."""
    from pydantic import ValidationError

    from tfhsi.recipes.loading import describe_error
    from tfhsi.recipes.resolve import apply_quick
    from tfhsi.recipes.schema import Recipe

    data = {
        "name": "search",
        "dataset": settings.dataset,
        "split": settings.split,
        "seeds": [settings.seed],
        "val_fraction": settings.val_fraction,
        "teacher": settings.teacher,
        "targets": [settings.target],
        "profile": {"latency_runs": settings.latency_runs, "tflm": True},
        "maps": False,
        "quick": {"epochs": settings.quick_epochs},
    }  # fmt: skip
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"search: {describe_error(exc.errors()[0])}") from None
    return (apply_quick(recipe) if settings.quick else recipe).model_dump(mode="json")


@dataclass
class SearchOutcome:
    """Where the search wrote its files, every trial's record, the front and the choice."""

    folder: Path
    records: list[dict[str, Any]]
    front: list[dict[str, Any]]
    chosen: dict[str, Any] | None


def _study(settings: SearchSettings, storage: str, *, resume: bool) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=STUDY,
            directions=["maximize", "minimize"],
            load_if_exists=resume,
        )
    except optuna.exceptions.DuplicatedStudyError:
        raise ConfigError(
            f"the storage {storage} already holds a search; pass --resume to continue it or "
            "choose another --storage / --out."
        ) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([f"val_{settings.objective}", COST_FIELD[settings.cost]])
    return study


def _sampler(seed: int, number: int, trials: int) -> Any:
    """TPE seeded by (seed, trial number): a proposal does not depend on what ran before in
    this process (resume, executors)."""
    import optuna

    return optuna.samplers.TPESampler(
        seed=(seed * 1_000_003 + number) % 2**32,
        n_startup_trials=min(10, max(4, trials // 4)),
    )


def _finished(study: Any) -> list[Any]:
    return [t for t in study.get_trials(deepcopy=False) if RECORD in t.user_attrs]


def _record(trial: Any) -> dict[str, Any]:
    return trial.user_attrs[RECORD]


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def _propose_new(
    study: Any, space: SearchSpace, settings: SearchSettings, seen: dict[str, int], log: Log
) -> tuple[Any, dict[str, Any]]:
    """Asks for a trial whose parameters no earlier trial had. TPE re-proposes a finished
    point of a discrete space; such a proposal is failed (``duplicate_of`` in the study, not
    counted) and drawn again at random, seeded like TPE. After :data:`REDRAWS` repeats in a row
    the space is taken as exhausted and the repeat runs (its stages are reused)."""
    import optuna
    from optuna.trial import TrialState

    for attempt in range(REDRAWS + 1):
        number = len(study.trials)
        study.sampler = (
            _sampler(settings.seed, number, settings.trials)
            if attempt == 0
            else optuna.samplers.RandomSampler(seed=(settings.seed * 1_000_003 + number) % 2**32)
        )
        trial = study.ask()
        params = propose(trial, space)
        earlier = seen.get(_key(params))
        requeued = "requeued_from" in trial.user_attrs  # an interrupted trial, run again
        if earlier is None or requeued or attempt == REDRAWS:
            return trial, params
        trial.set_user_attr(DUPLICATE, earlier)
        study.tell(trial, state=TrialState.FAIL)
        log(f"trial {trial.number}: the parameters of trial {earlier}; drawn again at random")
    raise AssertionError("unreachable")  # pragma: no cover


def _values(record: dict[str, Any], settings: SearchSettings) -> list[float] | None:
    cost = record.get(COST_FIELD[settings.cost])
    if cost is None:
        return None
    metric = record.get(f"val_{settings.objective}") or 0.0
    return [float(metric), float(cost)]


def _tell(study: Any, trial: Any, record: dict[str, Any], settings: SearchSettings) -> None:
    from optuna.trial import TrialState

    trial.set_user_attr(RECORD, record)
    values = None if record.get("state") == "failed" else _values(record, settings)
    if values is None:
        study.tell(trial, state=TrialState.FAIL)
        return
    for name, value in zip(CONSTRAINTS, record["constraints"], strict=True):
        trial.set_constraint(name, float(value))  # TPE's constrained mode reads these
    study.tell(trial, values)


def _interrupt(study: Any, trial: Any, params: dict[str, Any]) -> None:
    """Fails an in-flight trial and queues its parameters again (run first on --resume)."""
    from optuna.trial import TrialState

    trial.set_user_attr(INTERRUPTED, True)
    study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    study.enqueue_trial(params, user_attrs={"requeued_from": trial.number})


def _recover(study: Any, settings: SearchSettings, folder: Path, log: Log) -> None:
    """Trials left running by a search that died: told from their saved result, else failed
    and queued again."""
    import optuna
    from optuna.trial import TrialState

    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial = optuna.trial.Trial(study, frozen._trial_id)
        saved = trial_dir(folder, frozen.number) / RESULT
        if saved.is_file():
            log(f"--resume: trial {frozen.number} had finished; its result is kept")
            _tell(study, trial, json.loads(saved.read_text(encoding="utf-8")), settings)
        else:
            log(f"--resume: trial {frozen.number} was interrupted; it runs again first")
            _interrupt(study, trial, dict(frozen.params))


def _earlier_wall_time(folder: Path) -> float:
    """The wall time the record of earlier sessions of this search holds (0 if none)."""
    from tfhsi.search.report import SEARCH_JSON

    try:
        return float(json.loads((folder / SEARCH_JSON).read_text(encoding="utf-8"))["wall_time_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def _check_config(folder: Path, settings: SearchSettings, *, resume: bool) -> None:
    saved = folder / CONFIG
    now = settings.to_dict()
    if resume and saved.is_file():
        before = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
        loose = {"trials", "timeout_min"}
        differ = sorted(
            k for k in set(before) | set(now) if k not in loose and before.get(k) != now.get(k)
        )
        if differ:
            raise ConfigError(
                f"--resume: {saved} differs in {', '.join(differ)}; resume with the same "
                "options (only --trials and --timeout may change) or start a new search "
                "(another --out)."
            )
    write_text(saved, yaml.safe_dump(now, sort_keys=False, allow_unicode=True))


def prepare_folder(out: Path, storage: str | None, *, resume: bool) -> str:
    """Checks ``out`` (empty unless resuming) and returns the storage URL."""
    if out.exists() and any(out.iterdir()) and not resume:
        raise ConfigError(
            f"{out} is not empty; pass --resume to continue that search or choose another --out."
        )
    if resume and storage is None and not (out / "study.db").is_file():
        raise ConfigError(f"--resume: no search in {out} (no study.db); run without --resume.")
    return storage or f"sqlite:///{(out / 'study.db').resolve()}"


def run_search(
    settings: SearchSettings,
    *,
    out: Path,
    workers: Workers,
    parallel: int = 1,
    storage: str | None = None,
    resume: bool = False,
    data_dir: str | None = None,
    log: Log = print,
    progress: Progress | None = None,
) -> SearchOutcome:
    """Runs (or resumes) a search; writes ``search.json``, the report and ``best/``.

    Args:
        settings: What to search.
        out: The search folder (``study.db``, ``trials/``, ``search.json``, report, ``best/``).
        workers: Where trials run (:func:`tfhsi.search.workers.make_workers`).
        parallel: Trials proposed and run at a time (``--workers``).
        storage: An Optuna storage URL (default: SQLite in ``out/study.db``).
        resume: Continue the search in ``out`` / ``storage``.
        data_dir: Where the scenes are.
        log: Progress lines; ``progress``: per-trial callback (a progress bar).

    Raises:
        NoFitError: no trial fitted (after writing ``search.json`` and the report).
    """
    from tfhsi.data.datasets import open_dataset
    from tfhsi.search.report import finish, write_record

    budget = settings.budget()  # a bad target or size fails before anything is made
    space = settings.effective_space()
    base = recipe_data(settings)  # a bad scene, split or teacher too
    open_dataset(settings.dataset, data_dir=data_dir)  # a missing scene: its download command
    url = prepare_folder(out, storage, resume=resume)
    out.mkdir(parents=True, exist_ok=True)
    _check_config(out, settings, resume=resume)
    study = _study(settings, url, resume=resume)
    _recover(study, settings, out, log)
    job = {
        "recipe": base,
        "space": space.model_dump(mode="json"),
        "budget": budget.to_dict(),
        "dir": str(out.resolve()),
        "data_dir": data_dir,
        "latency_runs": settings.latency_runs,
    }
    notify = progress or (lambda *_: None)
    earlier = _earlier_wall_time(out) if resume else 0.0  # the sessions before this one
    started = time.perf_counter() - earlier
    try:
        log(f"teacher: {settings.teacher['model']} (trained once, cached)")
        for _, info in workers.run([(run_teacher, (job,))]):
            log(f"teacher: {info['cache']}")
        done = len(_finished(study))
        notify("start", None, done, settings.trials)
        while done < settings.trials:
            minutes = (time.perf_counter() - started) / 60
            if settings.timeout_min is not None and minutes >= settings.timeout_min:
                log(f"time budget of {settings.timeout_min:g} min reached after {done} trials; "
                    "no more are proposed (--resume with a larger --timeout continues)")  # fmt: skip
                break
            batch = []
            seen = {_key(r["params"]): r["number"] for r in map(_record, _finished(study))}
            for _ in range(min(max(1, parallel), settings.trials - done)):
                trial, params = _propose_new(study, space, settings, seen, log)
                seen[_key(params)] = trial.number
                batch.append((trial, params))
            results: dict[int, dict[str, Any]] = {}
            try:
                calls = [(run_trial, (job, t.number, p)) for t, p in batch]
                for index, record in workers.run(calls):
                    results[index] = record
                    notify("trial", record, done + len(results), settings.trials)
            except BaseException:
                for index, (trial, params) in enumerate(batch):
                    if index in results:
                        _tell(study, trial, results[index], settings)
                    else:
                        _interrupt(study, trial, params)
                raise
            for index, (trial, _) in enumerate(batch):
                _tell(study, trial, results[index], settings)
            done += len(batch)
    finally:
        workers.close()
        records = [_record(t) for t in _finished(study)]
        write_record(out, settings, budget, records, wall_time_s=time.perf_counter() - started)
    outcome = finish(
        out, settings, budget, records, wall_time_s=time.perf_counter() - started,
        data_dir=data_dir,
    )  # fmt: skip
    notify("end", outcome.chosen, done, settings.trials)
    if outcome.chosen is None:
        raise NoFitError(no_fit_message(records, budget))
    return outcome


def no_fit_message(records: list[dict[str, Any]], budget: Budget) -> str:
    """Says that nothing fitted, and the smallest arena and model (flash) any trial had."""

    def smallest(key: str) -> str:
        seen = [(r[key], r["number"]) for r in records if r.get(key) is not None]
        if not seen:
            return "none measured"
        value, number = min(seen)
        return f"{kib(value)} (trial {number})"

    failed = sum(r.get("state") == "failed" for r in records)
    why = f"; {failed} failed, see search.json" if failed else ""
    return (
        f"no model of {len(records)} trial(s) fits {budget.describe()}{why}: the smallest "
        f"arena seen was {smallest('arena_bytes')} and the smallest model (flash) "
        f"{smallest('size_bytes')}; loosen --max-arena / --max-flash / --max-latency or "
        "offer smaller models in the space (width, patch, PCA)."
    )


def settings_from_recipe(recipe: Any, *, quick: bool = False) -> SearchSettings:
    """The search a recipe's ``search:`` section defines (its scene, split, first seed,
    validation fraction and teacher)."""
    from tfhsi.search.space import load_space

    section = recipe.search
    if section is None:
        raise ConfigError(f"recipe {recipe.name} has no search: section.")
    return SearchSettings(
        dataset=recipe.dataset,
        target=section.target,
        split=recipe.split,
        seed=recipe.seeds[0],
        val_fraction=recipe.val_fraction,
        teacher=recipe.teacher.model_dump(mode="json"),
        max_arena=None if section.max_arena is None else int(section.max_arena),
        max_flash=None if section.max_flash is None else int(section.max_flash),
        max_latency_ms=section.max_latency,
        objective=section.objective,
        cost=section.cost,
        trials=section.trials,
        timeout_min=section.timeout,
        space=load_space(section.space),
        quick=quick,
        quick_epochs=recipe.quick.epochs,
        latency_runs=min(recipe.profile.latency_runs, recipe.quick.latency_runs)
        if quick
        else recipe.profile.latency_runs,
    )


def search_dir(name: str, out: Path | None, *, resume: bool) -> Path:
    """``out``, else ``runs/<name>/<stamp>`` (with ``resume``: the latest search there)."""
    from datetime import datetime, timezone

    if out is not None:
        return out
    base = Path("runs") / name
    if resume:
        found = sorted(p for p in base.glob("*") if (p / CONFIG).is_file()) if base.is_dir() else []
        if not found:
            raise ConfigError(f"--resume: no earlier search of {name} under {base}; drop --resume.")
        return found[-1]
    return base / datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
