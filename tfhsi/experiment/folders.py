"""The layout of a training run folder, and reopening one (or a recipe run's seed folder).

``run.json`` (what was asked, resolved sizes, the model's input, environment, input sha256),
``split.npz``, ``transform.npz``, ``history.json``, ``best.weights.h5``, ``model.keras``,
``metrics.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfhsi.data.datasets import open_dataset
from tfhsi.data.prepared import PreparedScene, load_prepared
from tfhsi.errors import ConfigError, DataFormatError
from tfhsi.experiment.spec import ExperimentSpec
from tfhsi.layouts import Layout, infer_layout
from tfhsi.models import MODELS

RUN_FILE = "run.json"
TEACHER_FILE = "teacher.json"
"""In a recipe run's ``seed_<s>/teacher``: where the cached teacher run lives."""
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class ModelInput:
    """What a run's model takes: ``run.json``'s ``input``, so nothing downstream looks the
    model up by name."""

    layout: Layout  # "3d" (k, k, B, 1) | "2d" (k, k, B) | "1d" (B, 1)
    patch: int
    bands: int

    def to_dict(self) -> dict[str, Any]:
        return {"layout": self.layout, "patch": self.patch, "bands": self.bands}

    @classmethod
    def of(cls, model: Any, *, source: str = "the model") -> ModelInput:
        """What ``model``'s input shape takes.

        Raises:
            DataFormatError: its input is no patch or spectrum tfhsi can feed.
        """
        shape = tuple(model.input_shape[1:])
        found = infer_layout(shape)
        if found is None:
            raise DataFormatError(
                f"{source} takes inputs of shape {shape}; tfhsi feeds (k, k, B), (k, k, B, 1) "
                "patches or a (B, 1) spectrum."
            )
        return cls(*found)

    @classmethod
    def from_record(cls, record: dict[str, Any], spec: ExperimentSpec, bands: int) -> ModelInput:
        """The record's ``input``; runs recorded before it had one name a zoo model."""
        saved = record.get("input")
        if saved:
            return cls(saved["layout"], int(saved["patch"]), int(saved["bands"]))
        return cls(MODELS.get(spec.model).layout, spec.patch_size or 1, bands)


@dataclass(frozen=True)
class LoadedRun:
    """A training run directory, ready to evaluate any of its models."""

    folder: Path
    spec: ExperimentSpec
    prepared: PreparedScene
    input: ModelInput

    @property
    def layout(self) -> Layout:
        return self.input.layout

    @property
    def patch_size(self) -> int:
        return self.input.patch


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
    prepared = load_prepared(scene, prepared_dir)
    model_input = ModelInput.from_record(record, spec, prepared.bands)
    return LoadedRun(Path(run_dir), spec, prepared, model_input)


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
