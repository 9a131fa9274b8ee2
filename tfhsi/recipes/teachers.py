"""The teacher of a seed: trained once into a cache shared by every recipe and tool, keyed by
what defines it, guarded by a file lock; reopened as a :class:`~tfhsi.methods.ModelState`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

from tfhsi.data.download import sha256_file
from tfhsi.data.scene_data import SceneData
from tfhsi.recipes.resolve import stable_hash
from tfhsi.recipes.schema import ModelSection, Recipe

Log = Callable[[str], None]
CACHE_ENV = "TFHSI_CACHE_DIR"


def cache_dir() -> Path:
    """``$TFHSI_CACHE_DIR``, else the per-user cache folder."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("tfhsi"))


def teacher_spec(recipe: Recipe, section: ModelSection, seed: int):
    """The :class:`~tfhsi.experiment.ExperimentSpec` a recipe's model section defines."""
    from tfhsi.experiment import ExperimentSpec

    train = section.train
    return ExperimentSpec(
        dataset=recipe.dataset,
        model=section.model,
        split=recipe.split,
        seed=seed,
        patch_size=section.patch,
        pca=section.pca,
        width=section.width,
        val_fraction=recipe.val_fraction,
        batch_size=train.batch_size,
        augment=train.augment,
        class_weights=train.class_weights,
        train=train.config(seed=seed),
        pretrained=section.pretrained,
        unsafe=section.unsafe,
        test_pixels=recipe.test_pixels,
    )


def cached_training(spec: Any, scene: SceneData, *, data_dir: Any, log: Log) -> Path:
    """The cache folder of the training run defined by ``spec``, trained (or resumed) if needed.

    The key hashes the resolved :class:`~tfhsi.experiment.ExperimentSpec` and the scene's
    file checksums, so any recipe or tool asking for the same model reuses it; a file lock
    makes a concurrent caller wait instead of training it twice.
    """
    from tfhsi.experiment import METRICS_FILE, train_experiment

    spec = spec.resolved(scene.n_bands)
    defined = {"spec": spec.to_dict(), "scene": scene.name, "sources": scene.sources, "format": 1}
    source = spec.source()
    if source.file is not None:  # the user's file: an edited builder or model trains anew
        defined["model_sha256"] = sha256_file(source.file)
    key = stable_hash(defined)
    name = source.name
    folder = cache_dir() / "teachers" / f"{name}-{key[:16]}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if (folder / METRICS_FILE).is_file():
            log(f"{name} seed {spec.seed}: cached ({folder})")
            return folder
        log(
            f"{name} seed {spec.seed}: {'evaluating' if spec.pretrained else 'training'} → {folder}"
        )
        train_experiment(
            spec, out_dir=folder, data_dir=data_dir, resume=folder.exists(), report=log
        )
    return folder


def ensure_teacher(recipe: Recipe, seed: int, scene: SceneData, *, data_dir: Any, log: Log) -> Path:
    """The cached teacher run directory for ``seed``, trained (or resumed) if needed."""
    return cached_training(
        teacher_spec(recipe, recipe.teacher, seed), scene, data_dir=data_dir, log=log
    )


def teacher_state(recipe: Recipe, seed: int, scene: SceneData, *, data_dir: Any, log: Log):
    """(the teacher of ``seed`` as a ModelState, its cache folder)."""
    from tfhsi._keras import keras
    from tfhsi.experiment import MODEL_FILE, load_run
    from tfhsi.methods import ModelState

    folder = ensure_teacher(recipe, seed, scene, data_dir=data_dir, log=log)
    loaded = load_run(folder, data_dir=data_dir)
    name = loaded.spec.source().name  # imports a user's builder: its custom layers load next
    model = keras.models.load_model(str(folder / MODEL_FILE), compile=False)
    state = ModelState(model, name, loaded.layout, loaded.patch_size, loaded.prepared)
    return state, folder
