"""Model-zoo benchmark on a real scene: OA/AA/Kappa mean ± std over seeds, parameters, wall time.

Each (model, split, seed) is one training run in tfhsi's teacher cache ($TFHSI_CACHE_DIR),
keyed by everything that defines it: finished runs are reused (the sweep is resumable) and
recipes with the same teacher reuse them too. Writes ``--out/summary.json`` and a Markdown
table (``--markdown``).

    python tools/bench_models.py --dataset indian_pines --data-dir ../shared/data \
        --models hamida3d hybridsn --splits random:0.1 disjoint:0.1 --seeds 0 1 2 --out bench/models
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tfhsi.atomic import write_json, write_text
from tfhsi.data.datasets import open_dataset
from tfhsi.env import environment, shown_path
from tfhsi.experiment import METRICS_FILE, ExperimentSpec
from tfhsi.recipes.teachers import cached_training
from tfhsi.train.config import TrainConfig
from tfhsi.train.metrics import Metrics, aggregate

# Per-model settings used for the published table (patch/epochs chosen for a 2-core CPU budget).
SETTINGS: dict[str, dict] = {
    "hamida3d": {"patch_size": 11, "pca": 30, "augment": True, "epochs": 100},
    "hybridsn": {"epochs": 40, "patience": 10},
    "cnn2d": {"augment": True, "epochs": 100},
    "cnn1d": {"epochs": 200, "patience": 40},
    "student3d": {"augment": True, "epochs": 100},
    "student2d": {"augment": True, "epochs": 100},
}


def spec_for(model: str, dataset: str, split: str, seed: int) -> ExperimentSpec:
    settings = dict(SETTINGS.get(model, {}))
    epochs = settings.pop("epochs", 100)
    patience = settings.pop("patience", 20)
    return ExperimentSpec(
        dataset=dataset,
        model=model,
        split=split,
        seed=seed,
        train=TrainConfig(epochs=epochs, patience=patience, seed=seed),
        **settings,
    )


def shown_command(argv: list[str]) -> str:
    """The command line with every absolute path (also ``--opt=/path``) made relative."""
    words = []
    for word in argv:
        option, eq, value = word.partition("=") if word.startswith("-") else ("", "", word)
        words.append(f"{option}{eq}{shown_path(value)}" if os.path.isabs(value) else word)
    return " ".join(words)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="indian_pines")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--models", nargs="+", default=list(SETTINGS))
    parser.add_argument("--splits", nargs="+", default=["random:0.1"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("bench/models"))
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()

    scene = open_dataset(args.dataset, data_dir=args.data_dir)
    rows = []
    for split in args.splits:
        for model in args.models:
            runs = []
            for seed in args.seeds:
                started = time.perf_counter()
                print(f"[{time.strftime('%H:%M:%S')}] {model} {split} seed {seed}", flush=True)
                spec = spec_for(model, args.dataset, split, seed)
                folder = cached_training(spec, scene, data_dir=args.data_dir, log=lambda _: None)
                print(f"  {folder} ({time.perf_counter() - started:.0f}s)", flush=True)
                runs.append(json.loads((folder / METRICS_FILE).read_text()))
            agg = aggregate([Metrics.from_dict(r["keras"]) for r in runs])
            rows.append(
                {
                    "model": model,
                    "split": split,
                    "seeds": args.seeds,
                    "oa": agg.format("oa"),
                    "aa": agg.format("aa"),
                    "kappa": agg.format("kappa"),
                    "parameters": runs[0]["parameters"],
                    "leakage": sum(r["leakage"] for r in runs) / len(runs),
                    "epochs": [r["epochs_run"] for r in runs],
                    "train_time_s": sum(r["train_time_s"] for r in runs) / len(runs),
                    "wall_time_s": sum(r["wall_time_s"] for r in runs) / len(runs),
                    "settings": SETTINGS.get(model, {}),
                }
            )
    write_json(
        args.out / "summary.json",
        {"rows": rows, "environment": environment(), "command": shown_command(sys.argv)},
    )
    table = [
        "| model | split | OA % | AA % | Kappa ×100 | params | leakage % | epochs | train s / seed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        table.append(
            f"| {r['model']} | {r['split']} | {r['oa']} | {r['aa']} | {r['kappa']} | {r['parameters']:,} | "
            f"{100 * r['leakage']:.1f} | {'/'.join(map(str, r['epochs']))} | {r['train_time_s']:.0f} |"
        )
    text = "\n".join(table) + "\n"
    print(text)
    if args.markdown:
        write_text(args.markdown, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
