"""Full-scene map throughput (pixels/s): Keras fp32 against LiteRT .tflite files, same machine.

Every pixel of the scene (labelled or not) is cut into a patch with the run's transform and
classified, exactly as ``tfhsi predict-map`` does. The candidates run in alternating rounds, so
drifting machine load hits them alike; the table gives the median of the rounds. Keras scores
batches of ``--batch`` patches; the ``.tflite`` files are exported with batch 1 (as deployed) and
are invoked once per pixel. Each candidate's map must agree with the Keras fp32 map on most
pixels (the agreement is printed, so a broken conversion cannot pass as "fast").

    .venv/bin/python tools/bench_maps.py RUN_DIR [FILE.tflite …] --data-dir ../shared/data \
        [--threads 1 2] [--rounds 3] [--json out.json]

``RUN_DIR`` is a ``tfhsi train`` run (a recipe's teacher lives in the teacher cache; its path is
in ``seed_<s>/teacher/teacher.json``); its ``model.keras`` is the Keras candidate.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from tfhsi.atomic import write_json
from tfhsi.env import environment
from tfhsi.experiment import MODEL_FILE, load_run, predict_scene, predictor


def _time_map(path: Path, run, *, threads: int | None, batch: int) -> tuple[float, np.ndarray]:
    model = predictor(path, threads=threads)
    patch, layout = model.fit_to(run.prepared)
    started = time.perf_counter()
    labels = predict_scene(
        model.predict, run.prepared, patch_size=patch, layout=layout, batch_size=batch
    )
    return time.perf_counter() - started, labels


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path)
    parser.add_argument("tflite", type=Path, nargs="*")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    run = load_run(args.run, data_dir=args.data_dir)
    keras_file = args.run / MODEL_FILE
    if not keras_file.is_file():
        parser.error(f"{keras_file} does not exist; RUN_DIR must be a `tfhsi train` run directory")
    pixels = run.prepared.scene.labels.size
    candidates = [("keras fp32", keras_file, None)] + [
        (f"{f.name} ({t} thread{'s' * (t > 1)})", f, t) for f in args.tflite for t in args.threads
    ]
    times: dict[str, list[float]] = {name: [] for name, _, _ in candidates}
    agreement: dict[str, float] = {}
    reference = None
    for r in range(args.rounds):
        for name, path, threads in candidates:
            seconds, labels = _time_map(path, run, threads=threads, batch=args.batch)
            if reference is None:
                reference = labels
            agreement[name] = float(np.mean(labels == reference))
            times[name].append(seconds)
            print(
                f"round {r + 1} {name:40s} {seconds:7.2f} s  {pixels / seconds:10,.0f} px/s  "
                f"agrees with Keras on {100 * agreement[name]:.2f} % of pixels",
                flush=True,
            )
    rows = []
    print(
        f"\n{pixels:,} pixels ({run.prepared.scene.labels.shape[0]}×{run.prepared.scene.labels.shape[1]})"
    )
    print("| model | median s | pixels/s | agreement with Keras fp32 |\n|---|---|---|---|")
    base = statistics.median(times["keras fp32"])
    for name, _, threads in candidates:
        median = statistics.median(times[name])
        rows.append(
            {
                "model": name,
                "threads": threads,
                "seconds": times[name],
                "median_s": median,
                "pixels_per_s": pixels / median,
                "speedup_vs_keras": base / median,
                "agreement": agreement[name],
            }
        )
        print(
            f"| {name} | {median:.2f} | {pixels / median:,.0f} ({base / median:.2f}× Keras) | "
            f"{100 * agreement[name]:.2f} % |"
        )
    if args.json:
        write_json(
            args.json,
            {
                "pixels": pixels,
                "rows": rows,
                "environment": environment(),
                "command": " ".join(sys.argv),
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
