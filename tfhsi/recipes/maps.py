"""Classification maps of a recipe run: the teacher's Keras model and each variant's most
deployable export."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tfhsi.layouts import InputStage
from tfhsi.methods import ModelState


def map_deployed(
    state: ModelState, rows: list[dict[str, Any]], folder: Path, run_dir: Path
) -> None:
    """Draws the map of the variant's most deployable export: integer end to end by the audit
    (int8 before int16x8), then any; the most accurate among equals."""
    from tfhsi.profile.interpreter import TFLiteModel

    exported = [r for r in rows if r.get("tflite") and not r.get("error")]
    if not exported:
        return
    row = max(
        exported,
        key=lambda r: (
            bool(r.get("full_int8")),
            r.get("precision") == "int8",
            r.get("oa") or 0,
        ),
    )
    layout = row.get("layout") or state.layout
    model = TFLiteModel(row["tflite"])
    path = folder / f"map_{row['format']}.png"
    row["map"] = draw_map(
        replace(state, layout=layout),
        model.predict,
        row,
        path,
        run_dir,
        stage=row.get("inputs", "transformed"),
    )


def draw_map(
    state: ModelState,
    predict,
    row: dict[str, Any],
    path: Path,
    run_dir: Path,
    *,
    stage: InputStage = "transformed",
) -> str:
    """Renders false colour | truth | prediction | test errors; returns the path in the run."""
    from tfhsi.experiment import predict_scene
    from tfhsi.report.maps import false_colour, save_maps

    scene = state.prepared.scene
    big = scene.labels.size > 50_000  # large scenes: labelled pixels only (the rest is unscored)
    predicted = predict_scene(
        predict,
        state.prepared,
        patch_size=state.patch,
        layout=state.layout,
        labelled_only=big,
        stage=stage,
    )
    oa = 100 * (row.get("oa") or 0)
    save_maps(
        path,
        truth=scene.labels,
        predicted=predicted,
        class_names=scene.class_names,
        title=f"{scene.display_name}: {row['variant']} {row['format']}, OA {oa:.2f} % "
        "(errors on test pixels)",
        composite=false_colour(scene.cube, scene.rgb_bands),
        mask=state.prepared.split.test,
    )
    return str(path.relative_to(run_dir))
