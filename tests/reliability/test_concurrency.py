"""Two processes at once on the same data directory and teacher cache corrupt nothing.

File locks serialise the work: a second recipe run waits for the teacher the first one is
training and reuses it; a second download of a file waits and reuses the first one's.
"""

from __future__ import annotations

import json
from pathlib import Path

from cli_check import assert_nothing_lost, part_files, spawn
from simulate import file_server, prelude_serving, write_ksc

TEACHER_ONLY = """\
name: tiny
dataset: synthetic:12x12x6x3
teacher: {model: student2d, patch: 5, train: {epochs: 2}}
maps: false
profile: {latency_runs: 1, tflm: false}
"""


def test_two_recipe_runs_share_one_teacher_trained_once(
    tmp_path: Path, runs: Path, earlier
) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TEACHER_ONLY)
    cache = tmp_path / "shared_cache"
    env = {"TFHSI_CACHE_DIR": str(cache)}
    children = [
        spawn("recipe", "run", recipe, "--out", runs / name, env=env) for name in ("one", "two")
    ]
    logs = [child.communicate(timeout=300)[1] for child in children]
    for child, log in zip(children, logs, strict=True):
        assert child.returncode == 0, log
    trained = sum("training →" in log for log in logs)
    reused = sum(": cached (" in log for log in logs)
    assert (trained, reused) == (1, 1), logs

    teachers = [p for p in (cache / "teachers").iterdir() if p.is_dir()]
    assert len(teachers) == 1
    history = json.loads((teachers[0] / "history.json").read_text())
    assert history["completed"] and len(history["epochs"]) == 2
    assert (teachers[0] / "metrics.json").is_file() and (teachers[0] / "model.keras").is_file()
    for name in ("one", "two"):
        record = json.loads((runs / name / "seed_0" / "teacher" / "teacher.json").read_text())
        assert Path(record["cache"]) == teachers[0]
        assert (runs / name / "report.html").is_file()
    assert part_files([cache, runs]) == []
    assert_nothing_lost(earlier, touched=[runs, cache])


def test_two_downloads_of_the_same_file_fetch_it_once_intact(
    tmp_path: Path, runs: Path, earlier
) -> None:
    served = tmp_path / "served"
    write_ksc(served)
    payload = bytes(range(256)) * 4096  # 1 MiB, served slowly so the downloads overlap
    (served / "ksc" / "KSC.mat").write_bytes(payload)
    data = tmp_path / "data"
    requests: list[str] = []
    with file_server(served / "ksc", delay=0.02, requests=requests) as url:
        children = [
            spawn("data", "download", "ksc", "--data-dir", data, prelude=prelude_serving(url))
            for _ in range(2)
        ]
        logs = [child.communicate(timeout=120)[1] for child in children]
    for child, log in zip(children, logs, strict=True):
        assert child.returncode == 0, log
    assert requests.count("/KSC.mat") == 1 and requests.count("/KSC_gt.mat") == 1, requests
    assert (data / "ksc" / "KSC.mat").read_bytes() == payload
    assert part_files([data]) == []
    assert_nothing_lost(earlier, touched=[data, runs])
