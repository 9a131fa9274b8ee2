"""``tfhsi train``, ``tfhsi evaluate`` and ``tfhsi predict-map``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tfhsi.cli._console import console, err_console
from tfhsi.cli.data import DataDir


def train(
    dataset: Annotated[
        str,
        typer.Option(help="Scene name, a scene YAML (NAME.yaml), or synthetic[:HxWxB[xC]][@seed]."),
    ],
    model: Annotated[
        str,
        typer.Option(
            help="A zoo name (`tfhsi models list`), path/to/file.py:function, "
            "package.module:function, or a saved .keras/.h5 (trained further from its weights)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Run directory to create (or continue with --resume).")],
    split: Annotated[
        str,
        typer.Option(
            help="random:F | random:N | disjoint:F | mask:TRAIN[,TEST[,VAL]] (validation is "
            "carved from TRAIN unless VAL is given)"
        ),
    ] = "random:0.1",
    epochs: Annotated[int, typer.Option(min=1)] = 100,
    seed: Annotated[
        int, typer.Option(min=0, help="Seeds the split, initialisation and training.")
    ] = 0,
    patch: Annotated[int | None, typer.Option(help="Patch size (default: the model's).")] = None,
    pca: Annotated[int | None, typer.Option(help="PCA components (default: the model's).")] = None,
    width: Annotated[float, typer.Option(help="Width multiplier.")] = 1.0,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    lr: Annotated[float, typer.Option(help="Initial learning rate.")] = 1e-3,
    schedule: Annotated[str, typer.Option(help="cosine | constant")] = "cosine",
    patience: Annotated[int | None, typer.Option(help="Early-stopping patience in epochs.")] = 20,
    val: Annotated[float, typer.Option(help="Share of each class for validation.")] = 0.05,
    test_pixels: Annotated[
        int | None,
        typer.Option(min=1, help="Score only this many test pixels (a seeded, per-class subset)."),
    ] = None,
    augment: Annotated[bool, typer.Option(help="Random flips and rotations.")] = False,
    class_weights: Annotated[
        bool, typer.Option(help="Weight the loss by inverse class frequency.")
    ] = False,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    tensorboard: Annotated[
        bool, typer.Option(help="Write TensorBoard logs (needs tensorboard).")
    ] = False,
    unsafe_deserialization: Annotated[
        bool,
        typer.Option(
            "--unsafe-deserialization",
            help="Let a saved model run code stored in it (Lambda layers); only for files you trust.",
        ),
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Train a model on a scene and evaluate it on the test pixels."""
    from tfhsi.data.datasets import check_dataset_ref
    from tfhsi.experiment import ExperimentSpec, train_experiment
    from tfhsi.models import check_model_ref
    from tfhsi.train.config import TrainConfig

    spec = ExperimentSpec(
        dataset=check_dataset_ref(dataset),  # a scene YAML's path made absolute
        model=check_model_ref(model),  # file paths made absolute
        split=split,
        seed=seed,
        patch_size=patch,
        pca=pca,
        width=width,
        val_fraction=val,
        batch_size=batch_size,
        augment=augment,
        class_weights=class_weights,
        train=TrainConfig(
            epochs=epochs,
            learning_rate=lr,
            schedule=schedule,  # type: ignore[arg-type]
            patience=patience,
            seed=seed,
            tensorboard=tensorboard,
        ),
        unsafe=unsafe_deserialization,
        test_pixels=test_pixels,
    )
    summary = train_experiment(
        spec, out_dir=out, data_dir=data_dir, resume=resume, report=err_console.print
    )
    _print_summary(summary, out)


def _print_summary(summary: dict, out: Path) -> None:
    from tfhsi.train.metrics import Metrics

    metrics = Metrics.from_dict(summary["keras"])
    table = Table(
        title=f"{summary['model']} on {summary['dataset']} ({summary['split']}, seed {summary['seed']})"
    )
    for column in ("OA %", "AA %", "Kappa", "params", "epochs", "leakage %", "train s"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{100 * metrics.oa:.2f}",
        f"{100 * metrics.aa:.2f}",
        f"{metrics.kappa:.4f}",
        f"{summary['parameters']:,}",
        f"{summary['epochs_run']} (best {summary['best_epoch']})",
        f"{100 * summary['leakage']:.1f}",
        f"{summary['train_time_s']:.0f}",
    )
    console.print(table)
    console.print(f"run directory: {out}")


def evaluate(
    model: Annotated[
        Path, typer.Argument(help="A .keras model, a .tflite file or a run directory.")
    ],
    run: Annotated[
        Path | None, typer.Option(help="Training run whose split and transform to use.")
    ] = None,
    subset: Annotated[str, typer.Option(help="train | val | test")] = "test",
    threads: Annotated[int | None, typer.Option(help="Interpreter threads for .tflite.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """OA, AA, Kappa and per-class scores of a Keras or .tflite model on a run's split."""
    from tfhsi.experiment import evaluate_path, find_run_dir, load_run

    loaded = load_run(run or find_run_dir(model), data_dir=data_dir)
    metrics = evaluate_path(model, loaded, subset=subset, threads=threads)
    if json_out:
        console.print_json(json.dumps(metrics.to_dict()))
        return
    table = Table(
        title=f"{model} on {loaded.prepared.scene.display_name}, {subset} ({loaded.spec.split}, seed {loaded.spec.seed})"
    )
    for column in ("class", "support", "accuracy %", "precision %", "F1 %"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for i, name in enumerate(metrics.class_names):
        table.add_row(
            name,
            f"{int(metrics.support[i]):,}",
            _pct(metrics.per_class_accuracy[i]),
            _pct(metrics.precision[i]),
            _pct(metrics.f1[i]),
        )
    table.add_section()
    table.add_row(
        "OA / AA / Kappa",
        f"{int(metrics.support.sum()):,}",
        f"{100 * metrics.oa:.2f}",
        f"{100 * metrics.aa:.2f}",
        f"{metrics.kappa:.4f}",
    )
    console.print(table)


def _pct(value: float) -> str:
    return "–" if value != value else f"{100 * value:.2f}"  # NaN: class absent


def predict_map(
    model: Annotated[
        Path, typer.Argument(help="A .keras model, a .tflite file or a run directory.")
    ],
    out: Annotated[
        Path | None, typer.Option(help="PNG to write (default: <run>/map_<model>.png).")
    ] = None,
    run: Annotated[
        Path | None, typer.Option(help="Training run whose split and transform to use.")
    ] = None,
    labelled_only: Annotated[
        bool, typer.Option(help="Predict labelled pixels only (faster).")
    ] = False,
    threads: Annotated[int | None, typer.Option(help="Interpreter threads for .tflite.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Predict every pixel of the scene and draw false colour | ground truth | prediction | errors."""
    import numpy as np

    from tfhsi.atomic import atomic_path
    from tfhsi.experiment import find_run_dir, load_run, predict_scene, predictor
    from tfhsi.report.maps import false_colour, save_maps

    loaded = load_run(run or find_run_dir(model), data_dir=data_dir)
    chosen = predictor(model, threads=threads)
    patch, layout = chosen.fit_to(loaded.prepared)
    kind = chosen.kind
    predicted = predict_scene(
        chosen.predict,
        loaded.prepared,
        patch_size=patch,
        layout=layout,
        labelled_only=labelled_only,
        stage=chosen.stage,
    )
    scene = loaded.prepared.scene
    target = out or loaded.folder / f"map_{model.stem if model.is_file() else 'model'}.png"
    test = loaded.prepared.split.test
    title = f"{scene.display_name} — {loaded.spec.model} ({kind}), {loaded.spec.split}, seed {loaded.spec.seed}; errors on test pixels"
    save_maps(
        target,
        truth=scene.labels,
        predicted=predicted,
        class_names=scene.class_names,
        title=title,
        composite=false_colour(scene.cube, scene.rgb_bands),
        mask=test,
    )
    with atomic_path(target.with_suffix(".npy")) as tmp:
        np.save(tmp, predicted)
    console.print(f"map: {target}")
