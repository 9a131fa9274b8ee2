"""One model on one scene: train, evaluate (Keras or .tflite), predict a full-scene map.

This package composes the layers (data → models → train → export/profile); the methods
themselves never import each other. A training run directory holds everything needed to
evaluate or deploy the model later with exactly the same preprocessing (see
:mod:`tfhsi.experiment.folders`).
"""

from tfhsi.experiment.folders import (
    METRICS_FILE,
    MODEL_FILE,
    RUN_FILE,
    TEACHER_FILE,
    LoadedRun,
    ModelInput,
    find_run_dir,
    load_run,
)
from tfhsi.experiment.prediction import Predictor, evaluate_path, predict_scene, predictor
from tfhsi.experiment.spec import ExperimentSpec
from tfhsi.experiment.training import data_notes, prepare_experiment, train_experiment

__all__ = [
    "METRICS_FILE",
    "MODEL_FILE",
    "RUN_FILE",
    "TEACHER_FILE",
    "ExperimentSpec",
    "LoadedRun",
    "ModelInput",
    "Predictor",
    "data_notes",
    "evaluate_path",
    "find_run_dir",
    "load_run",
    "predict_scene",
    "predictor",
    "prepare_experiment",
    "train_experiment",
]
