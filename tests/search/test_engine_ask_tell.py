"""The driver's ask/tell without training: workers that answer at once with made-up figures.

What is proposed depends on the seed and the results only (not on the order in which workers
finish), and Ctrl-C leaves a study with no trial left running, the interrupted trial queued
again with its parameters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import optuna
import pytest

from tfhsi.search import NoFitError, SearchSettings, run_search
from tfhsi.search.trial import run_teacher

SETTINGS = SearchSettings(dataset="synthetic:14x14x24x3", target="cortex-m4", trials=8)


def fake_record(number: int, params: dict[str, Any]) -> dict[str, Any]:
    """A trial rejected before training, its arena growing with width and patch."""
    arena = int(300_000 * params["width"] * params["patch"] / 11)
    return {"number": number, "params": params, "state": "rejected", "val_oa": None,
            "val_aa": None, "arena_bytes": arena, "size_bytes": arena, "macs": arena,
            "latency_ms": 1.0, "constraints": [arena / 245_760 - 1, -0.5, 0.0, 0.0],
            "broken": [], "wall_time_s": 0.0}  # fmt: skip


class FakeWorkers:
    """Answers every call at once, in reverse order; raises KeyboardInterrupt at a trial."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.interrupt_at = interrupt_at
        self.ran: list[int] = []

    def run(self, calls: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        for index in reversed(range(len(calls))):
            fn, args = calls[index]
            if fn is run_teacher:
                yield index, {"cache": "-"}
                continue
            _, number, params = args
            if number == self.interrupt_at:
                raise KeyboardInterrupt
            self.ran.append(number)
            yield index, fake_record(number, params)

    def close(self) -> None:
        return None


def _search(out: Path, workers: FakeWorkers, **options: Any) -> None:
    with pytest.raises(NoFitError):  # every made-up trial is rejected
        run_search(SETTINGS, out=out, workers=workers, log=lambda _: None, **options)


def _params(out: Path) -> list[dict[str, Any]]:
    return [t["params"] for t in json.loads((out / "search.json").read_text())["trials"]]


def test_proposals_depend_on_the_seed_not_on_the_order_workers_finish(tmp_path: Path) -> None:
    _search(tmp_path / "one", FakeWorkers(), parallel=1)
    _search(tmp_path / "one_again", FakeWorkers(), parallel=1)
    _search(tmp_path / "two", FakeWorkers(), parallel=2)  # batches of 2, answered reversed
    _search(tmp_path / "two_again", FakeWorkers(), parallel=2)
    assert _params(tmp_path / "one") == _params(tmp_path / "one_again")
    assert _params(tmp_path / "two") == _params(tmp_path / "two_again")
    assert len({json.dumps(p, sort_keys=True) for p in _params(tmp_path / "one")}) > 1


def test_ctrl_c_leaves_no_running_trial_and_resume_runs_the_interrupted_one_first(
    tmp_path: Path,
) -> None:
    out = tmp_path / "search"
    with pytest.raises(KeyboardInterrupt):
        run_search(SETTINGS, out=out, workers=FakeWorkers(interrupt_at=3), log=lambda _: None)
    study = optuna.load_study(study_name="tfhsi-search", storage=f"sqlite:///{out / 'study.db'}")
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.RUNNING not in states
    assert states[3] == optuna.trial.TrialState.FAIL and study.trials[3].user_attrs["interrupted"]
    assert states[4] == optuna.trial.TrialState.WAITING  # queued again
    assert len(json.loads((out / "search.json").read_text())["trials"]) == 3

    again = FakeWorkers()
    _search(out, again, resume=True)
    assert again.ran[0] == 4 and 3 not in again.ran and min(again.ran) == 4  # 0-2 not rerun
    study = optuna.load_study(study_name="tfhsi-search", storage=f"sqlite:///{out / 'study.db'}")
    assert study.trials[4].params == study.trials[3].params
    finished = json.loads((out / "search.json").read_text())["trials"]
    repeats = {t.number for t in study.trials if "duplicate_of" in t.user_attrs}
    ran = [n for n in range(len(study.trials)) if n != 3 and n not in repeats]
    assert [t["number"] for t in finished] == ran and len(ran) == SETTINGS.trials


def test_a_proposal_repeating_a_finished_trial_is_drawn_again_and_not_counted(
    tmp_path: Path,
) -> None:
    from tfhsi.search import load_space

    small = load_space({"model": ["student2d"], "width": [0.5, 1.0], "patch": [5, 7],
                        "pca": [None], "distill": {"enabled": [False]}, "prune": [0.0],
                        "cluster": [0], "quantize": ["ptq"], "class_weights": [False]})  # fmt: skip
    settings = SearchSettings(dataset=SETTINGS.dataset, target="cortex-m4", trials=4, space=small)
    out, lines = tmp_path / "search", []
    with pytest.raises(NoFitError):
        run_search(settings, out=out, workers=FakeWorkers(), log=lines.append)
    params = [json.dumps(p, sort_keys=True) for p in _params(out)]
    assert len(params) == 4 and len(set(params)) == 4  # all four points of the space, once each
    study = optuna.load_study(study_name="tfhsi-search", storage=f"sqlite:///{out / 'study.db'}")
    repeats = [t for t in study.trials if "duplicate_of" in t.user_attrs]
    assert repeats and len(study.trials) == 4 + len(repeats)  # the seed gives repeats
    assert all(t.state == optuna.trial.TrialState.FAIL for t in repeats)
    assert sum("drawn again at random" in line for line in lines) == len(repeats)


def test_a_spent_time_budget_proposes_no_more_trials_and_resume_continues(tmp_path: Path) -> None:
    from dataclasses import replace

    out, lines = tmp_path / "search", []
    with pytest.raises(NoFitError, match="no model of 0 trial"):
        run_search(replace(SETTINGS, timeout_min=1e-9), out=out, workers=FakeWorkers(),
                   log=lines.append)  # fmt: skip
    assert any("time budget of 1e-09 min reached after 0 trials" in line for line in lines)
    again = FakeWorkers()
    _search(out, again, resume=True)  # a resume may change the time budget (here: none)
    assert len(again.ran) == SETTINGS.trials
