"""Predicting with any model file (Keras or .tflite) on a run's preprocessing: evaluation on
a subset, full-scene maps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfhsi.data.prepared import PreparedScene
from tfhsi.errors import DataFormatError, ModelFileNotFoundError
from tfhsi.experiment.folders import MODEL_FILE, LoadedRun
from tfhsi.layouts import InputStage, Layout, infer_layout
from tfhsi.train.metrics import Metrics

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Predictor:
    """A batch → logits callable and the per-sample input shape it expects."""

    predict: Predict
    kind: str  # "keras" | "tflite"
    input_shape: tuple[int | None, ...]
    source: str = "the model"
    classes: int | None = None  # scores per sample, where known
    stage: InputStage = "transformed"  # what its input values are (tfhsi.layouts.InputStage)

    def _patch_and_layout(self, bands: int) -> tuple[int, Layout]:
        """(patch size, layout) of the patches this model takes, from its input shape.

        Raises:
            DataFormatError: the input does not fit a scene with ``bands`` bands.
        """
        shape = tuple(self.input_shape)
        found = infer_layout(shape)
        if found is not None and found[2] == bands:
            return found[1], found[0]
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
        patch, layout = self._patch_and_layout(prepared.bands_at(self.stage))
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
        from tfhsi.export.metadata import input_stage, read_metadata
        from tfhsi.profile.interpreter import TFLiteModel

        model = TFLiteModel(path, num_threads=threads)
        out = model.output_shape[-1] if len(model.output_shape) == 2 else None
        stage = input_stage(read_metadata(path.read_bytes()))
        shape = tuple(model.input_shape[1:])
        return Predictor(model.predict, "tflite", shape, str(path), out, stage)
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
    return evaluate_file(path, run.prepared, subset=subset, threads=threads)


def evaluate_file(
    path: Path, prepared: PreparedScene, *, subset: str = "test", threads: int | None = None
) -> Metrics:
    """OA/AA/Kappa of the model file at ``path`` on ``subset`` of ``prepared``: patches cut as
    its input shape says, values as its metadata says (:attr:`Predictor.stage`)."""
    from tfhsi.train.evaluate import evaluate

    model = predictor(path, threads=threads)
    patch, layout = model.fit_to(prepared)
    batches = prepared.dataset(
        subset,
        patch_size=patch,
        layout=layout,  # type: ignore[arg-type]
        batch_size=256,
        stage=model.stage,
    )
    return evaluate(model.predict, batches, class_names=prepared.scene.class_names)


def predict_scene(
    predict: Predict,
    prepared: PreparedScene,
    *,
    patch_size: int,
    layout: Layout,
    labelled_only: bool = False,
    batch_size: int = 256,
    stage: InputStage = "transformed",
    pixels: np.ndarray | None = None,
) -> np.ndarray:
    """Predicted labels 1..C for every pixel (or only labelled ones, or only the ``(H, W)``
    boolean mask ``pixels``; 0 elsewhere); ``stage``: what the model's input values are
    (:meth:`PreparedScene.cube_at`)."""
    from tfhsi.data.pipeline import patch_dataset

    labels = prepared.scene.labels
    if pixels is not None:
        mask = np.asarray(pixels, bool)
    else:
        mask = labels > 0 if labelled_only else np.ones_like(labels, dtype=bool)
    centers = np.argwhere(mask).astype(np.int32)
    stream = patch_dataset(
        prepared.cube_at(stage),
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
