"""Where the main job's time goes: wall time and samples/s of each stage of a recipe run.

Runs a recipe (default ``kd_indian_pines``, on the real scene) with every ``epochs`` capped
at ``--epochs``, an empty teacher cache and a fresh run folder, in a subprocess per run, and
times each stage by wrapping the functions that do it: teacher training, students trained
alone, distillation (its training plus the teacher's soft targets), other fine-tuning
(pruning, QAT), export (conversion and calibration), Keras and TFLite evaluation, LiteRT
latency, the TFLite Micro arena search, maps and the report.

``--quick`` times the recipe's ``--quick`` run instead (use ``--epochs 0``).

``--compare REV`` runs the same benchmark on the code of git revision ``REV`` (exported to a
temporary folder and put first on ``PYTHONPATH``) in the same invocation, alternating with
the working tree round by round, so before/after ratios come from one machine and one load.

    .venv/bin/python tools/bench_train.py --data-dir DATA --epochs 3 --compare HEAD --json b.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STAGES = [
    "teacher training",
    "students trained alone",
    "distillation (training)",
    "distillation (teacher soft targets)",
    "fine-tuning (prune/QAT)",
    "keras evaluation",
    "export",
    "tflite evaluation",
    "latency",
    "tflm arena search",
    "maps",
    "report",
    "other",
    "total",
]


def _training_stage(out_dir: Any) -> str:
    path = str(out_dir)
    if "teachers" in Path(path).parts:
        return "teacher training"
    name = Path(path).name
    if name == "0_train":
        return "students trained alone"
    if name.endswith("_distill"):
        return "distillation (training)"
    return "fine-tuning (prune/QAT)"


def _samples(dataset: Any) -> int:
    """Samples in one pass of a batched ``(x, y)`` dataset (labels only are counted)."""
    from tfhsi._keras import tf

    sizes = dataset.map(lambda x, y: tf.shape(y)[0])
    return int(sum(int(s) for s in sizes))


def _worker(args: argparse.Namespace) -> None:
    """One timed run in this process; writes the stage table as JSON to ``args.worker``."""
    import tfhsi.deployment as deployment
    import tfhsi.profile.latency as latency
    import tfhsi.profile.mcu as mcu
    import tfhsi.recipes.deploy as deploy
    import tfhsi.recipes.runner as runner
    import tfhsi.recipes.variants as variants
    import tfhsi.train.fit as fit
    from tfhsi.recipes.loading import load_recipe

    wall: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    samples: dict[str, int] = defaultdict(int)
    depth = [0]

    def timed(stage: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            outer = depth[0] == 0
            depth[0] += 1
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                depth[0] -= 1
                if outer or stage in ("latency", "tflm arena search"):
                    wall[stage] += time.perf_counter() - start
                    calls[stage] += 1

        return wrapper

    train_model = fit.train_model

    def train_wrapper(model: Any, train_data: Any, *a: Any, **k: Any) -> Any:
        stage = _training_stage(k["out_dir"])
        start = time.perf_counter()
        result = train_model(model, train_data, *a, **k)
        wall[stage] += time.perf_counter() - start
        calls[stage] += 1
        samples[stage] += _samples(train_data) * result.epochs_run
        return result

    fit.train_model = train_wrapper  # type: ignore[assignment]
    try:
        import tfhsi.compress.distill as distill

        if hasattr(distill, "teacher_logit_table"):
            distill.teacher_logit_table = timed(  # type: ignore[attr-defined]
                "distillation (teacher soft targets)", distill.teacher_logit_table
            )
    except ImportError:
        pass
    deployment.export_tflite = timed("export", deployment.export_tflite)  # type: ignore[assignment]
    deploy._accuracy = timed("tflite evaluation", deploy._accuracy)  # type: ignore[attr-defined]
    deploy.keras_row = timed("keras evaluation", deploy.keras_row)  # type: ignore[assignment]
    latency.measure_latency = timed("latency", latency.measure_latency)  # type: ignore[assignment]
    mcu.find_min_arena = timed("tflm arena search", mcu.find_min_arena)  # type: ignore[assignment]
    variants.draw_map = timed("maps", variants.draw_map)  # type: ignore[assignment]
    variants.map_deployed = timed("maps", variants.map_deployed)  # type: ignore[assignment]
    runner._finish = timed("report", runner._finish)  # type: ignore[attr-defined]

    recipe, _ = load_recipe(args.recipe)
    data = recipe.model_dump(mode="json")
    if args.epochs:

        def cap(node: Any) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if key == "epochs" and isinstance(value, int):
                        node[key] = min(value, args.epochs)
                    else:
                        cap(value)
            elif isinstance(node, list):
                for item in node:
                    cap(item)

        cap(data)
    recipe = type(recipe).model_validate(data)
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        os.environ["TFHSI_CACHE_DIR"] = str(Path(tmp) / "cache")  # an empty teacher cache
        log_file = Path(args.worker).with_suffix(".log")
        with log_file.open("w", encoding="utf-8") as log:
            start = time.perf_counter()
            runner.run_recipe(
                recipe,
                quick=args.quick,
                out=Path(tmp) / "run",
                data_dir=args.data_dir,
                log=lambda line: print(line, file=log, flush=True),
            )
            total = time.perf_counter() - start
    inner = {"latency", "tflm arena search"}  # measured inside export's measure step
    wall["other"] = total - sum(v for k, v in wall.items() if k not in inner)
    wall["total"] = total
    Path(args.worker).write_text(
        json.dumps({"wall": wall, "calls": calls, "samples": samples}), encoding="utf-8"
    )


def _tree(rev: str, into: Path) -> Path:
    """The code of git revision ``rev`` in ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True
    ).stdout
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _run(code: Path, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(out)]
    command += ["--recipe", args.recipe, "--epochs", str(args.epochs)]
    command += ["--quick"] if args.quick else []
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    subprocess.run(command, check=True, env=env, cwd=code)
    return json.loads(out.read_text(encoding="utf-8"))


def _table(results: dict[str, list[dict[str, Any]]], names: list[str]) -> str:
    def median(name: str, key: str, stage: str) -> float:
        return statistics.median(r[key].get(stage, 0) for r in results[name])

    head = "| stage |" + "".join(f" {n} s | {n} samples/s |" for n in names)
    rule = "|---|" + "---|---|" * len(names)
    if len(names) == 2:
        head += f" {names[1]} / {names[0]} time |"
        rule += "---|"
    lines = [head, rule]
    for stage in STAGES:
        cells = []
        for n in names:
            seconds = median(n, "wall", stage)
            count = median(n, "samples", stage)
            rate = f"{count / seconds:,.0f}" if count and seconds else "–"
            cells.append(f" {seconds:.1f} | {rate} |")
        row = f"| {stage} |" + "".join(cells)
        if len(names) == 2:
            a, b = (median(n, "wall", stage) for n in names)
            row += f" {b / a:.2f}× |" if a > 0.05 else " – |"
        lines.append(row)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="kd_indian_pines")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=3, help="cap on every epochs (0: as is)")
    parser.add_argument("--quick", action="store_true", help="run the recipe with --quick")
    parser.add_argument("--compare", metavar="REV", help="also run git revision REV, alternating")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    if args.data_dir:  # the runs' working folder is the code's tree
        args.data_dir = str(Path(args.data_dir).resolve())
    with tempfile.TemporaryDirectory(prefix="bench_train_code_") as tmp:
        trees = {"now": ROOT}
        if args.compare:
            trees = {args.compare: _tree(args.compare, Path(tmp) / "base"), "now": ROOT}
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for round_ in range(args.rounds):
            order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for name in order:
                out = Path(tmp) / f"{name.replace('/', '_')}-{round_}.json"
                print(f"round {round_ + 1}/{args.rounds}: {name} …", file=sys.stderr, flush=True)
                results[name].append(_run(trees[name], args, out))
    table = _table(results, list(trees))
    print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
