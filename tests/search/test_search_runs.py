"""Searches on a tiny synthetic scene: a budget nothing meets, the same trials whatever the
executor, and a search killed mid-trial that resumes without rerunning a finished trial.

One-epoch stages, a one-epoch student2d teacher, student2d trials at widths whose int8 arenas
straddle the budgets used here (about 4-5 KiB).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tfhsi.search import NoFitError, SearchSettings, load_space, run_search
from tfhsi.search.workers import InProcess, LocalPool

HAS_RAY = importlib.util.find_spec("ray") is not None
SCENE = "synthetic:14x14x24x3"
TEACHER = {"model": "student2d", "patch": 5, "train": {"epochs": 1}}
SPACE = {
    "model": ["student2d"],
    "width": [0.25, 0.5, 1.0],
    "patch": [5, 7],
    "pca": [None, 8],  # a PCA trial: its file takes all bands, PCA folded in
    "distill": {"enabled": [False]},
    "prune": [0.0],
    "cluster": [0],
    "quantize": ["ptq"],
    "epochs": {"train": 1, "prune": 1, "cluster": 1, "qat": 1},
}


def settings(**changes: Any) -> SearchSettings:
    base: dict[str, Any] = {
        "dataset": SCENE, "target": "cortex-m4", "teacher": TEACHER, "trials": 4,
        "space": load_space(SPACE), "latency_runs": 1,
    }  # fmt: skip
    return SearchSettings(**{**base, **changes})


def test_a_budget_nothing_meets_ends_naming_the_smallest_arena_and_flash(tmp_path: Path) -> None:
    out = tmp_path / "search"
    with pytest.raises(NoFitError) as exc:
        run_search(settings(max_arena="1KiB", trials=3), out=out, workers=InProcess(lambda _: None),
                   log=lambda _: None)  # fmt: skip
    message = str(exc.value)
    record = json.loads((out / "search.json").read_text())
    trials = record["trials"]
    assert [t["state"] for t in trials] == ["rejected"] * 3  # before training: no stage ran
    assert not list(out.glob("trials/*/0_train"))
    smallest = min(trials, key=lambda t: t["arena_bytes"])
    assert f"smallest arena seen was {smallest['arena_bytes'] / 1024:,.1f} KiB" in message
    assert "smallest model (flash)" in message and "arena ≤ 1.0 KiB" in message
    assert "\n" not in message and record["front"] == [] and not (out / "best").exists()


def _proposed(out: Path) -> list[tuple[int, dict[str, Any]]]:
    record = json.loads((out / "search.json").read_text())
    return [(t["number"], t["params"]) for t in record["trials"]]


@pytest.fixture(scope="module")
def pool_search(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pool") / "search"
    run_search(settings(max_arena="4.5KiB", trials=4), out=out, workers=LocalPool(2),
               parallel=2, log=lambda _: None)  # fmt: skip
    return out


@pytest.mark.slow
def test_a_search_fits_trains_and_exports_the_chosen_model(pool_search: Path) -> None:
    record = json.loads((pool_search / "search.json").read_text())
    states = {t["state"] for t in record["trials"]}
    assert states == {"complete", "rejected"}  # the budget splits the space
    chosen = next(t for t in record["trials"] if t["number"] == record["chosen"])
    assert chosen["arena_bytes"] <= 4.5 * 1024 and chosen["full_int8"]
    assert chosen["val_subset"] == "val" and "test" in chosen  # test: measured at the end only
    tested = {t["number"] for t in record["trials"] if "test" in t}  # measured at the end only
    assert tested == {t["number"] for t in record["front"]} | {record["chosen"]}
    best = pool_search / "best"
    assert (best / "model.tflite").read_bytes() == Path(chosen["tflite"]).read_bytes()
    assert {"card.json", "README.md", "split.npz", "transform.npz", "run.json"} <= {
        p.name for p in best.iterdir()
    }
    for plot in ("front_arena.png", "front_latency.png", "progress.png"):
        assert (pool_search / "plots" / plot).stat().st_size > 1000
    assert "validation pixels only" in (pool_search / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed: pip install 'tfhsi[ray]'")
def test_ray_proposes_the_trials_of_the_local_pool_for_a_seed(
    tmp_path: Path, pool_search: Path
) -> None:
    import ray
    from ray_lock import RAY_LOCK

    from tfhsi.search.workers import RayWorkers

    out = tmp_path / "search"
    with RAY_LOCK:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            workers = RayWorkers(out, address=None, workers=2, log=lambda _: None)
            run_search(settings(max_arena="4.5KiB", trials=4), out=out, workers=workers,
                       parallel=2, log=lambda _: None)  # fmt: skip
        finally:
            ray.shutdown()
    assert _proposed(out) == _proposed(pool_search)
    assert len(_proposed(out)) == 4


RECIPE = {
    "name": "tiny_search",
    "dataset": SCENE,
    "teacher": TEACHER,
    "profile": {"latency_runs": 1},
    "maps": False,
    "search": {"target": "cortex-m4", "trials": 3, "space": {**SPACE, "width": [0.25, 0.5]}},
}


def _search_command(recipe: Path, out: Path, *extra: str) -> list[str]:
    code = "import sys; from tfhsi.cli import main; sys.argv[0] = 'tfhsi'; main()"
    return [sys.executable, "-c", code, "recipe", "run", str(recipe), "--out", str(out), *extra]


@pytest.mark.slow
def test_a_search_killed_mid_trial_resumes_without_rerunning_finished_trials(
    tmp_path: Path,
) -> None:
    recipe = tmp_path / "search.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE), encoding="utf-8")
    out = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    child = subprocess.Popen(_search_command(recipe, out), env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    first, second = out / "trials/trial_0000/result.json", out / "trials/trial_0001"
    deadline = time.monotonic() + 240
    while not (first.is_file() and (second / "0_train").exists()):
        assert child.poll() is None and time.monotonic() < deadline, "never reached trial 1"
        time.sleep(0.2)
    os.killpg(child.pid, signal.SIGKILL)  # mid-trial, no chance to clean up
    child.wait()
    finished = first.stat().st_mtime_ns
    killed_params = json.loads(first.read_text())  # trial 0, for the comparison below

    resumed = subprocess.run(_search_command(recipe, out, "--resume"), env=env,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "trial 1 was interrupted; it runs again first" in resumed.stderr
    assert first.stat().st_mtime_ns == finished  # trial 0 was not run again
    import optuna

    study = optuna.load_study(study_name="tfhsi-search", storage=f"sqlite:///{out / 'study.db'}")
    repeats = {t.number for t in study.trials if "duplicate_of" in t.user_attrs}
    record = json.loads((out / "search.json").read_text())
    numbers = [t["number"] for t in record["trials"]]
    assert numbers == [0] + [n for n in range(2, len(study.trials)) if n not in repeats]
    assert len(numbers) == 3 and record["trials"][0]["params"] == killed_params["params"]
    interrupted = study.trials[1]
    assert (
        interrupted.state == optuna.trial.TrialState.FAIL and interrupted.user_attrs["interrupted"]
    )
    assert study.trials[2].params == interrupted.params  # proposed again, first
    assert not [t for t in study.trials if not t.state.is_finished()]
