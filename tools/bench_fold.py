"""Files that carry their preprocessing vs the two-step path, on a real scene.

Takes a recipe run (e.g. of ``tools/recipes/release_indian_pines.yaml``, three seeds) and, for
each seed, its teacher and every variant's trained Keras model, exports each as fp32 and int8
three ways and evaluates every file on the test pixels with what it takes:

- ``two-step``: the model as trained; the run's transform (standardisation + PCA) outside;
- ``standardised``: PCA folded in as the first layer; standardisation in the metadata;
- ``raw``: standardisation and PCA both folded in; raw bands in.

    tfhsi recipe run tools/recipes/release_indian_pines.yaml --data-dir ../shared/data --out RUN
    python tools/bench_fold.py RUN --data-dir ../shared/data --out fold.json

Prints OA/AA per file and the differences to the two-step file (percentage points).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

INPUTS = ("transformed", "standardised", "raw")
SHOWN = {"transformed": "two-step", "standardised": "standardised", "raw": "raw"}


def _models(seed_dir: Path) -> dict[str, Path]:
    """The teacher's and each variant's last saved Keras model of one seed's folder."""
    teacher = json.loads((seed_dir / "teacher" / "teacher.json").read_text())["cache"]
    found = {"teacher": Path(teacher) / "model.keras"}
    for variant in sorted(p for p in seed_dir.iterdir() if p.is_dir() and p.name != "teacher"):
        saved = sorted(variant.rglob("model.keras"), key=lambda p: p.stat().st_mtime)
        if saved:
            found[variant.name] = saved[-1]
    return found


def _own_preprocessing(prepared, variant_dir: Path):
    """The teacher's prepared scene, or the variant's own transform when it saved one (e.g. a
    student on all bands under a PCA teacher); the split is always the teacher's."""
    from dataclasses import replace

    from tfhsi.data.transforms import SpectralTransform

    own = variant_dir / "transform.npz"
    if not own.is_file():
        return prepared
    transform = SpectralTransform.load(own)
    return replace(prepared, transform=transform, cube=transform.apply(prepared.scene.cube))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--models", nargs="+", default=None, help="teacher and/or variant names")
    args = parser.parse_args()

    from tfhsi._keras import keras
    from tfhsi.deployment import export_tflite
    from tfhsi.experiment import load_run
    from tfhsi.experiment.prediction import evaluate_file

    rows: list[dict] = []
    for seed_dir in sorted(args.run_dir.glob("seed_*")):
        seed = int(seed_dir.name.removeprefix("seed_"))
        models = _models(seed_dir)
        teacher_prepared = load_run(models["teacher"].parent, data_dir=args.data_dir).prepared
        for name, path in models.items():
            if args.models and name not in args.models:
                continue
            prepared = _own_preprocessing(teacher_prepared, seed_dir / name)
            model = keras.models.load_model(str(path), compile=False)
            with tempfile.TemporaryDirectory() as folder:
                for preset in ("fp32", "int8"):
                    for inputs in INPUTS:
                        target = Path(folder) / f"{preset}_{inputs}.tflite"
                        exported = export_tflite(
                            model, preset, target, prepared=prepared, inputs=inputs
                        )
                        metrics = evaluate_file(exported.path, prepared)
                        rows.append(
                            {
                                "seed": seed,
                                "model": name,
                                "preset": preset,
                                "inputs": SHOWN[inputs],
                                "precision": exported.precision,
                                "bytes": len(exported.data),
                                "oa": 100 * metrics.oa,
                                "aa": 100 * metrics.aa,
                            }
                        )
                        print(json.dumps(rows[-1]), flush=True)
    _print_table(rows)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


def _print_table(rows: list[dict]) -> None:
    print("\n| model | preset | input | OA mean ± std | AA mean | ΔOA vs two-step (per seed, pp) |")
    print("|---|---|---|---|---|---|")
    for name in dict.fromkeys(r["model"] for r in rows):
        for preset in ("fp32", "int8"):
            base = {
                r["seed"]: r["oa"]
                for r in rows
                if (r["model"], r["preset"], r["inputs"]) == (name, preset, "two-step")
            }
            for inputs in SHOWN.values():
                sel = [
                    r
                    for r in rows
                    if (r["model"], r["preset"], r["inputs"]) == (name, preset, inputs)
                ]
                if not sel:
                    continue
                oa = np.array([r["oa"] for r in sel])
                aa = np.array([r["aa"] for r in sel])
                delta = ", ".join(f"{r['oa'] - base[r['seed']]:+.2f}" for r in sel)
                print(
                    f"| {name} | {preset} | {inputs} | {oa.mean():.2f} ± {oa.std():.2f} | "
                    f"{aa.mean():.2f} | {delta} |"
                )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
