"""From a trained Keras model to measured deployment rows: export → audit → evaluate → profile.

Every figure in a row is measured on the ``.tflite`` itself: OA/AA/Kappa through the same
evaluation API as Keras, sizes from the file, int8-ness and target verdicts from the op
table, latency from LiteRT, RAM from the smallest TFLite Micro arena that works.
A step that fails is recorded in the row's ``error`` (the sweep goes on), never hidden.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tfhsi.atomic import write_json
from tfhsi.errors import TfhsiError
from tfhsi.layouts import InputStage
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
    keep_int8: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Exports ``state.model`` with each preset the state allows and measures each file.

    One file per preset, named after it (``<preset>.tflite``); a model with Conv3D layers (and
    ``lower``) is lowered for the presets whose ``conv3d`` rule says so
    (:func:`tfhsi.export.presets.export_jobs`). An export that would duplicate another
    preset's file (``int8-mixed`` of a model the converter makes int8 end to end) is skipped;
    the note goes to the row of that preset (else to the first row).
    """
    from tfhsi.export.presets import PRESETS, export_jobs

    allowed = [p for p in presets if state.exports is None or p in state.exports]
    three_d = lower and not state.lowered and has_conv3d(state.model)
    rows, skipped = [], []
    for preset, lowered in export_jobs(allowed, three_d=three_d):
        row_file = folder / f"{preset}.row.json"
        row = _resumed(row_file, PRESETS.get(preset).accepts)
        if row is None:
            log(f"  export {preset}")
            row = _measure_export(
                state, preset, folder, settings, lower=lowered, keep_int8=keep_int8
            )
            write_json(row_file, row)
        if row.get("skipped"):
            skipped.append(row)
        else:
            rows.append(row)
    for skip in skipped:
        log(f"  {skip['format']}: {skip['skipped']}")
        host = next((r for r in rows if r["format"] == skip.get("same_as")), None)
        host = host or (rows[0] if rows else None)
        if host is not None:
            host["notes"] = [
                *host.get("notes", []),
                f"{skip['format']} not exported: {skip['skipped']}",
            ]
    return rows


def _resumed(row_file: Path, promise: tuple[str, ...]) -> dict[str, Any] | None:
    """The row a resumed run measured already, unless it breaks the preset's promise (a row
    written before int8 files were held to it)."""
    if not row_file.is_file():
        return None
    row: dict[str, Any] = json.loads(row_file.read_text(encoding="utf-8"))
    if promise and not row.get("error") and row.get("precision") not in promise:
        return None
    return row


def _measure_export(
    state: ModelState,
    preset: str,
    folder: Path,
    settings: DeploySettings,
    *,
    lower: bool,
    keep_int8: Sequence[str] = (),
) -> dict[str, Any]:
    from tfhsi.deployment import DuplicateExportError, export_tflite, measure
    from tfhsi.export.presets import PRESETS

    row: dict[str, Any] = {
        "format": preset,
        "parameters": int(state.model.count_params()),
        "error": None,
        "notes": [],
    }
    try:
        exported = export_tflite(
            state.model,
            preset,
            folder / f"{preset}.tflite",
            prepared=state.prepared,
            patch=state.patch,
            layout=state.layout,
            lower=lower,
            keep_int8=keep_int8 if PRESETS.get(preset).aeq is not None else (),
        )
    except DuplicateExportError as exc:
        why = f"the converter's result has no float op, so it is the {exc.same_as} file"
        if PRESETS.get(preset).aeq is not None:
            why = f"no layer needed int8 weights, so it is the {exc.same_as} file"
        return {"format": preset, "skipped": why, "same_as": exc.same_as}
    except TfhsiError as exc:
        row["error"] = str(exc)
        return row
    if state.lowered or exported.lowered:
        row["notes"].append("Conv3D lowered to Conv2D (same function, rank-4 graph)")
    if exported.precision == "w4/8a8":
        from tfhsi.export.aeq import layers_by_weight_bits

        kept = layers_by_weight_bits(exported.data).get("int8", [])
        row["notes"].append(f"int8 weights (the rest int4): {', '.join(kept)}")
    row["tflite"] = str(exported.path)
    row["parameters"] = exported.parameters
    row["layout"] = exported.layout
    row["inputs"] = exported.inputs
    try:
        row.update(
            _accuracy(
                exported.path,
                replace(state, layout=exported.layout),
                settings,
                stage=exported.inputs,
            )
        )
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


def _accuracy(
    path: Path, state: ModelState, settings: DeploySettings, *, stage: InputStage
) -> dict[str, Any]:
    from tfhsi.profile.interpreter import TFLiteModel
    from tfhsi.train.evaluate import evaluate

    model = TFLiteModel(path, num_threads=settings.threads)
    batches = state.prepared.dataset(
        "test",
        patch_size=state.patch,
        layout=state.layout,  # type: ignore[arg-type]
        batch_size=256,
        stage=stage,
    )
    metrics = evaluate(model.predict, batches, class_names=settings.class_names)
    return metric_fields(metrics)
