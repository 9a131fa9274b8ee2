"""The smallest recipe that runs end to end (synthetic 14×14 scene, one-epoch student2d teacher,
no TFLite Micro search, no maps), for tests of the runner, executors and resume."""

from __future__ import annotations

from typing import Any

PTQ = {"name": "ptq", "export": ["int8"]}
PRUNE = {"name": "prune", "steps": [{"method": "prune", "target": 0.5, "epochs": 1}]}


def tiny_recipe(name: str, *, seeds: list[int], variants: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "dataset": "synthetic:14x14x24x3",
        "seeds": seeds,
        "teacher": {"model": "student2d", "patch": 5, "train": {"epochs": 1}},
        "variants": variants,
        "profile": {"latency_runs": 1, "tflm": False},
        "maps": False,
    }
