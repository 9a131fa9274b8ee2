"""Running a recipe: teacher (cached) → variants → deploy rows → results.json → report.

Layout of a run::

    runs/<recipe>/<stamp>/
      recipe.yaml            the resolved recipe (defaults, overrides, --quick applied)
      environment.json       versions, CPU, threads; input sha256
      seed_<s>/teacher/teacher.json       where the cached teacher lives, its metrics
      seed_<s>/teacher/split.npz, transform.npz   the seed's split masks and fitted transform
      seed_<s>/<task>/rows.json            a finished task's result rows
      seed_<s>/<variant>/<i>_<method>/     stage checkpoints and done.json
      seed_<s>/<task>/export/<format>.tflite, <format>.row.json
      results.json, results.csv, report.md, report.html, plots/

Tasks (the teacher of a seed, one variant of a seed; see :mod:`tfhsi.recipes.tasks`) run on
an executor (:mod:`tfhsi.recipes.executors`): in this process, a local process pool, or Ray.
Resume is stage by stage: a finished task has ``rows.json``, a finished stage ``done.json``,
a measured export its ``.row.json``; ``--resume`` skips them. A variant edited in the recipe
since the run started runs again: its old folders are kept as ``<variant>.replaced-<stamp>``
and identical first stages are taken from them. Teachers live in a cache keyed
by a hash of what defines them (scene files, split, seed, model, training), shared by all
recipes and guarded by a file lock.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tfhsi.atomic import write_json, write_text
from tfhsi.data.datasets import open_dataset
from tfhsi.data.scene_data import SceneData
from tfhsi.env import environment
from tfhsi.errors import ConfigError
from tfhsi.recipes.executors import Executor, LocalExecutor
from tfhsi.recipes.resolve import apply_quick, resolved_dict, resolved_yaml
from tfhsi.recipes.schema import Recipe
from tfhsi.recipes.tasks import Task, plan
from tfhsi.report.results import RunResults, write_results

Log = Callable[[str], None]


def new_run_dir(recipe: Recipe, out: Path | None, resume: bool) -> Path:
    if out is not None:
        if out.exists() and any(out.iterdir()) and not resume:
            raise ConfigError(
                f"{out} is not empty; pass --resume to continue that run or choose another --out."
            )
        return out
    base = Path("runs") / recipe.name
    if resume:
        existing = (
            sorted(p for p in base.glob("*") if (p / "recipe.yaml").is_file())
            if base.is_dir()
            else []
        )
        if not existing:
            raise ConfigError(
                f"--resume: no earlier run of {recipe.name} under {base}; run without --resume."
            )
        return existing[-1]
    return base / datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


def run_recipe(
    recipe: Recipe,
    *,
    quick: bool = False,
    out: Path | None = None,
    resume: bool = False,
    data_dir: Any = None,
    log: Log = print,
    command: str | None = None,
    executor: Executor | None = None,
) -> Path:
    """Runs ``recipe`` and writes its results and report; returns the run directory."""
    if recipe.search is not None:
        raise ConfigError(
            f"recipe {recipe.name} has a search: section: run it with `tfhsi recipe run "
            f"{recipe.name}` or `tfhsi.search.run_search(settings_from_recipe(recipe), ...)`."
        )
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    effective = apply_quick(recipe) if quick else recipe
    # Fail before creating anything: a missing scene stops here with its download command.
    scene = open_dataset(effective.dataset, data_dir=data_dir)
    run_dir = new_run_dir(effective, out, resume)
    saved = run_dir / "recipe.yaml"
    if resume and saved.is_file():
        for name in _check_resumable(saved, recipe, quick=quick, log=log):
            _set_aside(run_dir, name, log)
    created = not run_dir.exists()
    executor = executor or LocalExecutor(1, log=log)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "recipe.yaml", resolved_yaml(recipe, quick=quick))
        write_json(run_dir / "environment.json", {**environment(), "inputs": scene.sources})
        data = effective.model_dump(mode="json")
        folder = str(run_dir.resolve())
        where = None if data_dir is None else str(data_dir)
        found: dict[Task, list[dict[str, Any]]] = {}
        teachers, variants = plan(effective)
        for phase in (teachers, variants):
            for task, rows in executor.run(data, phase, folder, where):
                found[task] = rows
                failed = [r["error"] for r in rows if r.get("error")]
                progress = f"({len(found)}/{len(teachers) + len(variants)})"
                log(f"✓ {task.label} {progress}" + (f" — failed: {failed[0]}" if failed else ""))
        ordered = [row for task in (*teachers, *variants) for row in found[task]]
        results = _results(
            effective, scene, ordered, quick=quick, started=(started_at, started), command=command
        )
        _finish(run_dir, results, log)
    except BaseException:
        if created and not any(run_dir.glob("seed_*")):
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing worth resuming: no half-made run
        raise
    return run_dir


def _check_resumable(saved: Path, recipe: Recipe, *, quick: bool, log: Log) -> list[str]:
    """Variants may be edited, added or removed between resumes (a changed variant runs again);
    what every result rests on (scene, split, seeds, teacher, profiling, --quick) may not.

    Returns:
        The names of the variants whose definition changed.

    Raises:
        ConfigError: naming the top-level keys that differ from ``saved``.
    """
    import yaml

    before = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
    try:  # through today's schema, so an option added since (at its default) is no change
        quick_mode = before.pop("quick_mode", quick)
        before = {**Recipe.model_validate(before).model_dump(mode="json"), "quick_mode": quick_mode}
    except ValueError:
        pass  # compared as saved: whatever no longer validates counts as changed
    now = resolved_dict(recipe, quick=quick)
    loose = {"variants", "description"}
    if not quick:  # --quick's settings shape nothing in a full run (its defaults may change)
        loose.add("quick")
    differ = sorted(
        k for k in set(before) | set(now) if k not in loose and before.get(k) != now.get(k)
    )
    if differ:
        raise ConfigError(
            f"--resume: {saved} differs from this recipe in {', '.join(differ)}; only variants "
            "may change between resumes. Resume with the same recipe, overrides and --quick, "
            "or start a new run (another --out)."
        )
    old = {v["name"]: v for v in before.get("variants", [])}
    changed = [v["name"] for v in now["variants"] if v["name"] in old and old[v["name"]] != v]
    added = [v["name"] for v in now["variants"] if v["name"] not in old]
    for what, names in (("changed, runs again", changed), ("new", added)):
        if names:
            log(f"--resume: variants {what}: {', '.join(names)}")
    return changed


def _set_aside(run_dir: Path, variant: str, log: Log) -> None:
    """Moves the folders an earlier definition of ``variant`` made to
    ``<variant>.replaced-<stamp>``: kept, not reused (identical first stages are still taken
    from them, see :func:`tfhsi.recipes.sharing.stage_key`)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    for folder in sorted(run_dir.glob(f"seed_*/{variant}")):
        aside = folder.with_name(f"{variant}.replaced-{stamp}")
        folder.rename(aside)
        log(f"  {folder.parent.name}/{variant}: earlier results kept in {aside.name}")


def _results(
    recipe: Recipe,
    scene: SceneData,
    rows: list[dict[str, Any]],
    *,
    quick: bool,
    started: tuple[str, float],
    command: str | None,
) -> RunResults:
    """The run record, through the report's own typed reader (a bad row fails here, loudly)."""
    at, clock = started
    return RunResults.from_dict({
        "recipe": recipe.name,
        "description": recipe.description,
        "quick": quick,
        "dataset": {
            "name": scene.name,
            "display": scene.display_name,
            "synthetic": scene.synthetic,
            "shape": list(scene.shape),
            "sources": scene.sources,
        },
        "split": recipe.split,
        "seeds": list(recipe.seeds),
        "class_names": list(scene.class_names),
        "targets": list(recipe.targets),
        "environment": environment(),
        "command": command or f"tfhsi recipe run {recipe.name}" + (" --quick" if quick else ""),
        "started": at,
        "wall_time_s": time.perf_counter() - clock,
        "rows": rows,
    })  # fmt: skip


def _finish(run_dir: Path, results: RunResults, log: Log) -> None:
    from tfhsi.report.build import build_report

    write_results(run_dir, results)
    build_report(run_dir)
