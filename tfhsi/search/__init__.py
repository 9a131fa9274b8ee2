"""Fit to a device: search students, distillation and compression for the most accurate model
that fits a target's budget (``tfhsi search``, or a recipe's ``search:`` section).

Optuna proposes trials (ask/tell from the driver, TPE seeded per trial, constrained,
multi-objective: validation accuracy vs arena / latency / flash); each trial is a generated
one-variant recipe run on the local pool or Ray (:mod:`tfhsi.search.trial`); the front's test
figures are measured once at the end. See ``docs/SEARCH.md``.
"""

from tfhsi.search.constraints import Budget, make_budget, parse_size
from tfhsi.search.engine import NoFitError, SearchOutcome, SearchSettings, run_search
from tfhsi.search.space import DEFAULT_SPACE, SearchSpace, load_space

__all__ = [
    "DEFAULT_SPACE",
    "Budget",
    "NoFitError",
    "SearchOutcome",
    "SearchSettings",
    "SearchSpace",
    "load_space",
    "make_budget",
    "parse_size",
    "run_search",
]
