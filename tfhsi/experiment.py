"""One model on one scene: train, evaluate (Keras or .tflite), predict a full-scene map.

This module composes the layers (data → models → train → export/profile); the methods
themselves never import each other. A training run directory holds everything needed to
evaluate or deploy the model later with exactly the same preprocessing:

``run.json`` (what was asked, resolved sizes, environment, input sha256), ``split.npz``,
``transform.npz``, ``history.json``, ``best.weights.h5``, ``model.keras``, ``metrics.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from tfhsi.atomic import atomic_path, write_json
from tfhsi.data.datasets import open_dataset
from tfhsi.data.patches import Layout
from tfhsi.data.prepared import PreparedScene, load_prepared, prepare
from tfhsi.data.scene_data import SceneData
from tfhsi.data.splits import make_split
from tfhsi.env import environment
from tfhsi.errors import ConfigError, DataFormatError, ModelFileNotFoundError
from tfhsi.models import MODELS
from tfhsi.train.config import TrainConfig
from tfhsi.train.metrics import Metrics

RUN_FILE = "run.json"
TEACHER_FILE = "teacher.json"
"""In a recipe run's ``seed_<s>/teacher``: where the cached teacher run lives."""
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ExperimentSpec:
    """Everything that defines a trained model (and so its cache key)."""

    dataset: str
    model: str
    split: str = "random:0.1"
    seed: int = 0
    patch_size: int | None = None
    pca: int | None = None
    width: float = 1.0
    val_fraction: float = 0.05
    batch_size: int = 64
    augment: bool = False
    class_weights: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)

    def resolved(self, scene_bands: int) -> ExperimentSpec:
        """Fills the patch size and PCA bands from the model's paper defaults."""
        spec = MODELS.get(self.model)
        patch = self.patch_size or spec.default_patch
        pca = self.pca
        if pca is None and spec.default_bands is not None and scene_bands > spec.default_bands:
            pca = spec.default_bands
        if pca is not None and pca >= scene_bands:
            pca = None
        return replace(self, patch_size=patch, pca=pca, train=replace(self.train, seed=self.seed))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentSpec:
        return cls(**{**data, "train": TrainConfig(**data["train"])})


def prepare_experiment(
    spec: ExperimentSpec, scene: SceneData, *, run_dir: Path | None = None
) -> PreparedScene:
    """The split and transform of a run: reloaded from ``run_dir`` if saved there, else made."""
    if run_dir is not None and (run_dir / "split.npz").is_file():
        return load_prepared(scene, run_dir)
    patch = spec.patch_size or 1
    split = make_split(
        scene.labels,
        spec.split,
        seed=spec.seed,
        patch_size=patch,
        val_fraction=spec.val_fraction,
        class_names=scene.class_names,
    )
    return prepare(scene, split, pca_components=spec.pca)


def train_experiment(
    spec: ExperimentSpec,
    *,
    out_dir: str | Path,
    data_dir: str | Path | None = None,
    resume: bool = False,
    report: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Trains ``spec.model`` on ``spec.dataset`` and evaluates it on the test set.

    A new run that fails before its first epoch leaves nothing behind (nothing to resume);
    later failures and interruptions leave a run that ``resume=True`` continues.

    Returns the metrics record (also written to ``metrics.json``).
    """
    from tfhsi.train.evaluate import evaluate

    out = Path(out_dir)
    if (out / RUN_FILE).is_file() and not resume:
        raise ConfigError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out."
        )
    scene = open_dataset(spec.dataset, data_dir=data_dir)
    spec = spec.resolved(scene.n_bands)
    if resume and (out / RUN_FILE).is_file():
        saved = ExperimentSpec.from_dict(json.loads((out / RUN_FILE).read_text())["spec"])
        if saved != spec:
            raise ConfigError(
                f"--resume in {out}: the options differ from the interrupted run's ({RUN_FILE}); "
                "resume with the same options or choose another --out."
            )
    started = time.perf_counter()
    prepared = prepare_experiment(spec, scene, run_dir=out)
    notes = data_notes(prepared)
    for note in notes:
        if report:
            report(f"note: {note}")
    record = {
        "kind": "train",
        "spec": spec.to_dict(),
        "dataset": {
            "name": scene.name,
            "synthetic": scene.synthetic,
            "shape": list(scene.shape),
            "sources": scene.sources,
        },
        "zero_variance_bands": prepared.transform.zero_variance_bands.tolist(),
        "notes": notes,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
    }
    fresh, created = not (out / RUN_FILE).is_file(), not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        prepared.save(out)
        write_json(out / RUN_FILE, record)
        model, result, stream = _fit(spec, prepared, out=out, resume=resume, report=report)
    except BaseException:
        from tfhsi.train.fit import HISTORY

        if fresh and not (out / HISTORY).is_file():
            _discard_unstarted(out, created=created)  # nothing to resume: no half-made run
        raise
    with atomic_path(out / MODEL_FILE) as tmp:
        model.save(str(tmp))
    metrics = evaluate(model.predict_on_batch, stream("test"), class_names=scene.class_names)
    summary = {
        "dataset": scene.display_name,
        "model": spec.model,
        "split": spec.split,
        "seed": spec.seed,
        "parameters": int(model.count_params()),
        "leakage": prepared.split.leakage(),
        "pixels": {s: int(prepared.split.mask(s).sum()) for s in ("train", "val", "test")},
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "train_time_s": result.wall_time_s,
        "wall_time_s": time.perf_counter() - started,
        "keras": metrics.to_dict(),
    }
    write_json(out / METRICS_FILE, summary)
    return summary


def _fit(
    spec: ExperimentSpec,
    prepared: PreparedScene,
    *,
    out: Path,
    resume: bool,
    report: Callable[[str], None] | None,
) -> tuple[Any, Any, Callable[..., Any]]:
    """Builds and trains the model of a run; returns (model, TrainResult, stream factory)."""
    from tfhsi.models import build_model
    from tfhsi.train.fit import balanced_class_weights, seed_everything, train_model

    # Seed before the datasets exist: their shuffle and augmentation seeds combine with the
    # global seed when they are built, so a second run in one process must not inherit the
    # first one's (same options and seed → same run, in a fresh process or not).
    seed_everything(spec.seed, deterministic=spec.train.deterministic)
    scene = prepared.scene
    layout = MODELS.get(spec.model).layout
    model = build_model(
        spec.model,
        bands=prepared.bands,
        n_classes=scene.n_classes,
        patch_size=spec.patch_size,
        width=spec.width,
        seed=spec.seed,
    )

    def stream(subset: str, *, training: bool = False):
        return prepared.dataset(
            subset,
            patch_size=spec.patch_size or 1,
            layout=layout,
            batch_size=spec.batch_size,
            shuffle=training,
            seed=spec.seed,
            augment=training and spec.augment,
        )

    weights = (
        balanced_class_weights(prepared.targets("train"), scene.n_classes)
        if spec.class_weights
        else None
    )
    result = train_model(
        model,
        stream("train", training=True),
        stream("val") if prepared.split.val.any() else stream("test"),
        config=spec.train,
        out_dir=out,
        resume=resume,
        class_weight=weights,
        report=report,
    )
    if not prepared.split.val.any() and report:
        report("warning: no validation pixels; the test set picked the best epoch (optimistic).")
    return model, result, stream


def data_notes(prepared: PreparedScene) -> list[str]:
    """What the user should know about a run's data: split notes and constant bands."""
    notes = list(prepared.split.notes)
    constant = prepared.transform.zero_variance_bands.tolist()
    if constant:
        shown = ", ".join(map(str, constant[:20])) + (" …" if len(constant) > 20 else "")
        notes.append(
            f"{len(constant)} band(s) of {prepared.scene.display_name} are constant over the "
            f"training pixels (0-based: {shown}); they carry no information and are set to 0 "
            "after standardisation. Drop them from the cube if that is unexpected."
        )
    return notes


def _discard_unstarted(out: Path, *, created: bool) -> None:
    """Removes what a new run wrote before its first epoch (and ``out`` if it made it)."""
    import shutil

    from tfhsi.data.prepared import SPLIT_FILE, TRANSFORM_FILE
    from tfhsi.train.fit import BACKUP_DIR, BEST_WEIGHTS

    for name in (RUN_FILE, SPLIT_FILE, TRANSFORM_FILE, BEST_WEIGHTS):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / BACKUP_DIR, ignore_errors=True)
    if created:
        shutil.rmtree(out, ignore_errors=True)


@dataclass(frozen=True)
class LoadedRun:
    """A training run directory, ready to evaluate any of its models."""

    folder: Path
    spec: ExperimentSpec
    prepared: PreparedScene

    @property
    def layout(self) -> str:
        return MODELS.get(self.spec.model).layout

    @property
    def patch_size(self) -> int:
        return self.spec.patch_size or 1


def find_run_dir(path: Path) -> Path:
    """The run directory holding ``path``: itself, its parent, or (a recipe export in
    ``seed_<s>/<variant>/export/``) its grandparent."""
    for candidate in (path, path.parent, path.parent.parent):
        if _run_record(candidate) is not None:
            return candidate
    raise ConfigError(
        f"{path} is not inside a tfhsi run directory (no {RUN_FILE} beside it); pass --run RUN_DIR "
        "pointing at the training run whose split and transform the model needs."
    )


def load_run(run_dir: Path, *, data_dir: str | Path | None = None) -> LoadedRun:
    """Reopens a run: its scene (verified), split and fitted transform.

    ``run_dir`` is a training run, or a recipe's ``seed_<s>/teacher`` or variant folder: those
    take the spec of the teacher they came from and the split and transform saved beside them
    (a student's own transform where it has one).

    Raises:
        ConfigError: ``run_dir`` is neither.
    """
    from tfhsi.data.prepared import TRANSFORM_FILE

    found = _run_record(Path(run_dir))
    if found is None:
        raise ConfigError(
            f"{run_dir} is not a tfhsi run directory (no {RUN_FILE}, and not a recipe run's seed "
            "folder); pass --run with a `tfhsi train` output directory or a recipe run's "
            "seed_<s>/<variant> folder."
        )
    record_file, prepared_dir = found
    record = json.loads(record_file.read_text(encoding="utf-8"))
    spec = ExperimentSpec.from_dict(record["spec"])
    scene = open_dataset(spec.dataset, data_dir=data_dir)
    if not (prepared_dir / TRANSFORM_FILE).is_file():
        prepared_dir = record_file.parent
    return LoadedRun(Path(run_dir), spec, load_prepared(scene, prepared_dir))


def _run_record(folder: Path) -> tuple[Path, Path] | None:
    """(the ``run.json`` describing ``folder``, the folder holding its split and transform), or
    None when ``folder`` is neither a training run nor a recipe run's seed folder."""
    if (folder / RUN_FILE).is_file():
        return folder / RUN_FILE, folder
    for pointer in (folder / TEACHER_FILE, folder.parent / "teacher" / TEACHER_FILE):
        if pointer.is_file():
            cache = Path(json.loads(pointer.read_text(encoding="utf-8"))["cache"])
            if not (cache / RUN_FILE).is_file():
                raise ConfigError(
                    f"{pointer} points at the cached teacher run {cache}, which is gone; "
                    "run `tfhsi recipe run ... --resume` to train it again."
                )
            return cache / RUN_FILE, folder
    return None


@dataclass(frozen=True)
class Predictor:
    """A batch → logits callable and the per-sample input shape it expects."""

    predict: Predict
    kind: str  # "keras" | "tflite"
    input_shape: tuple[int | None, ...]
    source: str = "the model"
    classes: int | None = None  # scores per sample, where known

    def _patch_and_layout(self, bands: int) -> tuple[int, Layout]:
        """(patch size, layout) of the patches this model takes, from its input shape.

        Raises:
            DataFormatError: the input does not fit a scene with ``bands`` bands.
        """
        shape = tuple(self.input_shape)
        if len(shape) == 4 and shape[3] == 1 and shape[0] == shape[1] and shape[2] == bands:
            return int(shape[0]), "3d"  # type: ignore[arg-type]
        if len(shape) == 3 and shape[0] == shape[1] and shape[2] == bands:
            return int(shape[0]), "2d"  # type: ignore[arg-type]
        if len(shape) == 2 and shape == (bands, 1):
            return 1, "1d"
        raise DataFormatError(
            f"{self.source} takes inputs of shape {shape}, but this run feeds k×k×{bands}(×1) "
            f"patches or a ({bands}, 1) spectrum ({bands} bands after its transform); {_FIT_FIX}."
        )

    def fit_to(self, prepared: PreparedScene) -> tuple[int, Layout]:
        """(patch size, layout) of the patches this model takes, checked against ``prepared``:
        input shape (bands, layout), class count, and a patch that fits the scene.

        Raises:
            DataFormatError: naming the model file, what it expects and what the run has.
        """
        scene = prepared.scene
        if self.classes is not None and self.classes != scene.n_classes:
            raise DataFormatError(
                f"{self.source} scores {self.classes} classes but this run's scene "
                f"({scene.display_name}) has {scene.n_classes}; {_FIT_FIX}."
            )
        patch, layout = self._patch_and_layout(prepared.bands)
        height, width = scene.labels.shape
        if patch > min(height, width):
            raise DataFormatError(
                f"{self.source} takes {patch}×{patch} patches but this run's scene "
                f"({scene.display_name}) is only {height}×{width}; {_FIT_FIX}."
            )
        return patch, layout


_FIT_FIX = (
    "evaluate it on the training run it was made from (--run RUN_DIR, whose run.json has the "
    "same scene, bands, PCA and classes), or export a model from this run"
)


def predictor(path: Path, *, threads: int | None = None) -> Predictor:
    """The predictor of a ``.keras``/``.h5`` model, a ``.tflite`` file or a run directory."""
    if not path.exists():
        raise ModelFileNotFoundError(
            f"{path} does not exist; pass a .keras model or a .tflite file."
        )
    if path.is_dir():
        path = path / MODEL_FILE
    if path.suffix == ".tflite":
        from tfhsi.profile.interpreter import TFLiteModel

        model = TFLiteModel(path, num_threads=threads)
        out = model.output_shape[-1] if len(model.output_shape) == 2 else None
        return Predictor(model.predict, "tflite", tuple(model.input_shape[1:]), str(path), out)
    if path.suffix in (".keras", ".h5"):
        from tfhsi._keras import keras

        loaded = keras.models.load_model(str(path), compile=False)
        shape = tuple(loaded.input_shape[1:])
        out = loaded.output_shape[-1] if len(loaded.output_shape) == 2 else None
        return Predictor(loaded.predict_on_batch, "keras", shape, str(path), out)
    raise DataFormatError(
        f"{path}: unknown model format {path.suffix!r}; expected .keras, .h5 or .tflite."
    )


def evaluate_path(
    path: Path, run: LoadedRun, *, subset: str = "test", threads: int | None = None
) -> Metrics:
    """OA/AA/Kappa of the model at ``path`` on ``subset`` of the run's split, same preprocessing.

    The patch size and layout come from the model's input shape, so a student (another patch
    size) or a lowered model (2-D layout) evaluates on its teacher's run.
    """
    from tfhsi.train.evaluate import evaluate

    model = predictor(path, threads=threads)
    patch, layout = model.fit_to(run.prepared)
    batches = run.prepared.dataset(subset, patch_size=patch, layout=layout, batch_size=256)  # type: ignore[arg-type]
    return evaluate(model.predict, batches, class_names=run.prepared.scene.class_names)


def predict_scene(
    predict: Predict,
    prepared: PreparedScene,
    *,
    patch_size: int,
    layout: Layout,
    labelled_only: bool = False,
    batch_size: int = 256,
) -> np.ndarray:
    """Predicted labels 1..C for every pixel (or only labelled ones; 0 elsewhere)."""
    from tfhsi.data.pipeline import patch_dataset

    labels = prepared.scene.labels
    mask = labels > 0 if labelled_only else np.ones_like(labels, dtype=bool)
    centers = np.argwhere(mask).astype(np.int32)
    stream = patch_dataset(
        prepared.cube,
        centers,
        None,
        patch_size=patch_size,
        layout=layout,
        batch_size=batch_size,  # type: ignore[arg-type]
    )
    predictions = [np.argmax(np.asarray(predict(np.asarray(batch))), axis=-1) for batch in stream]
    out = np.zeros(labels.shape, np.int32)
    out[mask] = np.concatenate(predictions) + 1
    return out
