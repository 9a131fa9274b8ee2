"""From a trained Keras model to measured deployment rows: export → audit → evaluate → profile.

Every figure in a row is measured on the ``.tflite`` itself: OA/AA/Kappa through the same
evaluation API as Keras, sizes from the file, int8-ness and target verdicts from the op
table, latency from LiteRT, RAM from the smallest TFLite Micro arena that works.
A step that fails is recorded in the row's ``error`` (the sweep goes on), never hidden.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tfhsi.atomic import write_json
from tfhsi.errors import TfhsiError
from tfhsi.methods import ModelState, has_conv3d

Log = Callable[[str], None]


@dataclass(frozen=True)
class DeploySettings:
    targets: tuple[str, ...]
    latency_runs: int
    threads: int
    tflm: bool
    class_names: tuple[str, ...]


def metric_fields(metrics: Any) -> dict[str, Any]:
    data = metrics.to_dict()
    return {
        "oa": data["oa"],
        "aa": data["aa"],
        "kappa": data["kappa"],
        "per_class_accuracy": data["per_class_accuracy"],
        "confusion": data["confusion"],
    }


def keras_row(state: ModelState, settings: DeploySettings) -> dict[str, Any]:
    """The Keras model's own test accuracy (the reference for every export)."""
    from tfhsi.models import count_macs
    from tfhsi.train.evaluate import evaluate

    metrics = evaluate(
        state.model.predict_on_batch,
        state.stream("test", batch_size=256),
        class_names=settings.class_names,
    )
    macs: int | None
    try:
        macs = int(count_macs(state.model)) or None  # QAT-wrapped layers count as 0: unknown
    except Exception:
        macs = None
    return {
        "format": "keras",
        "parameters": int(state.model.count_params()),
        "macs": macs,
        **metric_fields(metrics),
    }


def export_rows(
    state: ModelState,
    presets: list[str],
    folder: Path,
    settings: DeploySettings,
    *,
    lower: bool,
    log: Log,
) -> list[dict[str, Any]]:
    """Exports ``state.model`` with each preset the state allows and measures each file.

    A model with Conv3D layers (and ``lower``) follows each preset's ``conv3d`` rule in the
    preset table (:func:`tfhsi.export.presets.export_jobs`).
    """
    from tfhsi.export.presets import export_jobs

    allowed = [p for p in presets if state.exports is None or p in state.exports]
    three_d = lower and not state.lowered and has_conv3d(state.model)
    rows = []
    for label, preset, lowered in export_jobs(allowed, three_d=three_d):
        row_file = folder / f"{label}.row.json"
        if row_file.is_file():  # resumed run: measured already
            rows.append(json.loads(row_file.read_text(encoding="utf-8")))
            continue
        log(f"  export {label}")
        row = _measure_export(state, label, preset, folder, settings, lower=lowered)
        write_json(row_file, row)
        rows.append(row)
    return rows


def _measure_export(
    state: ModelState,
    label: str,
    preset: str,
    folder: Path,
    settings: DeploySettings,
    *,
    lower: bool,
) -> dict[str, Any]:
    from tfhsi.deployment import export_tflite, measure

    row: dict[str, Any] = {
        "format": label,
        "parameters": int(state.model.count_params()),
        "error": None,
        "notes": [],
    }
    if state.lowered or lower:
        row["notes"].append("Conv3D lowered to Conv2D (same function, rank-4 graph)")
    try:
        exported = export_tflite(
            state.model,
            preset,
            folder / f"{label}.tflite",
            prepared=state.prepared,
            patch=state.patch,
            layout=state.layout,
            lower=lower,
        )
        row["tflite"] = str(exported.path)
        row["parameters"] = exported.parameters
        row.update(_accuracy(exported.path, replace(state, layout=exported.layout), settings))
        row.update(
            measure(
                exported.data,
                targets=settings.targets,
                threads=settings.threads,
                latency_runs=settings.latency_runs,
                tflm=settings.tflm,
                source=str(exported.path),
            ).to_row()
        )
    except TfhsiError as exc:
        row["error"] = str(exc)
    return row


def _accuracy(path: Path, state: ModelState, settings: DeploySettings) -> dict[str, Any]:
    from tfhsi.profile.interpreter import TFLiteModel
    from tfhsi.train.evaluate import evaluate

    model = TFLiteModel(path, num_threads=settings.threads)
    metrics = evaluate(
        model.predict, state.stream("test", batch_size=256), class_names=settings.class_names
    )
    return metric_fields(metrics)
