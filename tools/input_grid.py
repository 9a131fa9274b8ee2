"""Patch size × PCA components grid for a model on a scene, scored on validation pixels only.

Each (model, patch, PCA) is one short training run in tfhsi's teacher cache ($TFHSI_CACHE_DIR),
so the grid is resumable. A cell's score is the validation OA of the epoch that training keeps
(the best one, ties broken by validation loss, the same rule as every run); the test pixels are
never evaluated. Writes ``--out`` (JSON) and prints a Markdown table.

    python tools/input_grid.py --dataset salinas_a --data-dir ../shared/data \
        --models hamida3d student2d student3d --patches 7 9 11 --pcas 15 30 0 --epochs 30
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tfhsi.atomic import write_json
from tfhsi.data.datasets import open_dataset
from tfhsi.env import environment, shown_path
from tfhsi.errors import TfhsiError
from tfhsi.experiment import METRICS_FILE, ExperimentSpec
from tfhsi.recipes.teachers import cached_training
from tfhsi.train.config import TrainConfig
from tfhsi.train.fit import HISTORY

ALL_BANDS = 0
"""``--pcas`` value for "no PCA: every band"."""


def cell(
    *,
    dataset: str,
    data_dir: str | None,
    model: str,
    patch: int,
    pca: int,
    split: str,
    seed: int,
    epochs: int,
    scene,
) -> dict:
    """Trains one cell (or reuses its cached run) and returns its validation score."""
    spec = ExperimentSpec(
        dataset=dataset,
        model=model,
        split=split,
        seed=seed,
        patch_size=patch,
        pca=pca if pca != ALL_BANDS else scene.n_bands,  # >= the band count: PCA is dropped
        augment=True,
        train=TrainConfig(epochs=epochs, patience=max(5, epochs // 3), seed=seed),
    )
    started = time.perf_counter()
    folder = cached_training(spec, scene, data_dir=data_dir, log=lambda _: None)
    metrics = json.loads((folder / METRICS_FILE).read_text())
    history = json.loads((folder / HISTORY).read_text())["epochs"]
    kept = history[metrics["best_epoch"] - 1]
    return {
        "model": model,
        "patch": patch,
        "pca": pca or "all",
        "val_oa": kept["val_accuracy"],
        "val_loss": kept["val_loss"],
        "best_epoch": metrics["best_epoch"],
        "epochs_run": metrics["epochs_run"],
        "parameters": metrics["parameters"],
        "val_pixels": metrics["pixels"]["val"],
        "train_s": round(metrics["train_time_s"], 1),
        "wall_s": round(time.perf_counter() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--patches", nargs="+", type=int, default=[7, 9, 11])
    parser.add_argument(
        "--pcas", nargs="+", type=int, default=[15, 30, ALL_BANDS], help="0 = every band"
    )
    parser.add_argument("--split", default="random:0.1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("bench/input_grid.json"))
    args = parser.parse_args()

    scene = open_dataset(args.dataset, data_dir=args.data_dir)
    rows = []
    for model in args.models:
        for patch in args.patches:
            for pca in args.pcas:
                print(
                    f"[{time.strftime('%H:%M:%S')}] {model} patch {patch} pca {pca or 'all'}",
                    flush=True,
                )
                try:
                    row = cell(
                        dataset=args.dataset,
                        data_dir=args.data_dir,
                        model=model,
                        patch=patch,
                        pca=pca,
                        split=args.split,
                        seed=args.seed,
                        epochs=args.epochs,
                        scene=scene,
                    )
                except TfhsiError as error:  # e.g. too few bands for the model: a row, not a crash
                    row = {"model": model, "patch": patch, "pca": pca or "all", "error": str(error)}
                rows.append(row)
                print(f"  {rows[-1]}", flush=True)
                write_json(
                    args.out,
                    {
                        "rows": rows,
                        "args": vars(args)
                        | {
                            "out": shown_path(args.out),
                            "data_dir": args.data_dir and shown_path(args.data_dir),
                        },
                        "environment": environment(),
                    },
                )
    lines = [
        "| model | patch | PCA | val OA % | val loss | best epoch | params | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['patch']} | {r['pca']} | {r['error']} |||||")
            continue
        lines.append(
            f"| {r['model']} | {r['patch']} | {r['pca']} | {100 * r['val_oa']:.2f} | "
            f"{r['val_loss']:.4f} | {r['best_epoch']} | {r['parameters']:,} | {r['train_s']:.0f} |"
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
