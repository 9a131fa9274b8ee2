"""From a trained Keras model to measured deployment rows: export → audit → evaluate → profile.

Every figure in a row is measured on the ``.tflite`` itself: OA/AA/Kappa through the same
evaluation API as Keras, sizes from the file, int8-ness and target verdicts from the op
table, latency from LiteRT, RAM from the smallest TFLite Micro arena that works.
A step that fails is recorded in the row's ``error`` (the sweep goes on), never hidden.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfhsi.atomic import write_json
from tfhsi.errors import TfhsiError
from tfhsi.recipes.stages import ModelState, has_conv3d, lower_state

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
    """Exports ``state.model`` with each preset and measures each file.

    For a model with Conv3D layers (and ``lower``), int8 is exported twice — the converter's
    default (CONV_3D stays float; the audit shows it) and ``int8-lowered`` (int8 end to end) —
    and int16x8, which has no CONV_3D kernel at all, only lowered.
    """
    lowered: ModelState | None = None
    jobs: list[tuple[str, ModelState, str]] = []
    for preset in presets:
        if state.qat and preset != "int8":
            continue  # a QAT model is trained for int8; other presets would discard that
        three_d = lower and has_conv3d(state.model) and not state.qat
        if three_d and preset in ("int8", "int16x8"):
            lowered = lowered or lower_state(state)
            if preset == "int8":
                jobs.append((preset, state, preset))
            jobs.append((f"{preset}-lowered", lowered, preset))
        else:
            jobs.append((preset, state, preset))
    rows = []
    for label, job_state, preset in jobs:
        row_file = folder / f"{label}.row.json"
        if row_file.is_file():  # resumed run: measured already
            rows.append(json.loads(row_file.read_text(encoding="utf-8")))
            continue
        log(f"  export {label}")
        row = _measure_export(job_state, label, preset, folder, settings)
        write_json(row_file, row)
        rows.append(row)
    return rows


def _measure_export(
    state: ModelState, label: str, preset: str, folder: Path, settings: DeploySettings
) -> dict[str, Any]:
    from tfhsi.deployment import measure
    from tfhsi.export.tflite import convert, write_tflite

    row: dict[str, Any] = {
        "format": label,
        "parameters": int(state.model.count_params()),
        "error": None,
        "notes": [],
    }
    if state.lowered:
        row["notes"].append("Conv3D lowered to Conv2D (same function, rank-4 graph)")
    try:
        representative = None
        if preset in ("int8", "int16x8"):
            representative = state.prepared.representative(
                patch_size=state.patch, layout=state.layout, num_samples=200
            )  # type: ignore[arg-type]
        data = convert(state.model, preset, representative=representative)
        path = write_tflite(data, folder / f"{label}.tflite", class_names=settings.class_names)
        row["tflite"] = str(path)
        row.update(_accuracy(path, state, settings))
        row.update(
            measure(
                data,
                targets=settings.targets,
                threads=settings.threads,
                latency_runs=settings.latency_runs,
                tflm=settings.tflm,
                source=str(path),
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
