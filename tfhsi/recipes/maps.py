"""Classification maps of a recipe run: the teacher's Keras model and each variant's most
deployable export."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tfhsi.layouts import InputStage
from tfhsi.methods import ModelState

AUTO_SCENE_PIXELS = 50_000
"""``map_pixels: auto`` maps every pixel of scenes up to this size, labelled pixels beyond."""


def map_mask(state: ModelState, pixels: str) -> np.ndarray:
    """The ``(H, W)`` pixels a map predicts, by the recipe's ``map_pixels``: ``scene`` (all),
    ``labelled``, ``scored`` (the split's train, val and test pixels) or ``auto``."""
    labels = state.prepared.scene.labels
    if pixels == "auto":
        pixels = "scene" if labels.size <= AUTO_SCENE_PIXELS else "labelled"
    if pixels == "scene":
        return np.ones(labels.shape, bool)
    if pixels == "labelled":
        return labels > 0
    split = state.prepared.split
    return split.train | split.val | split.test


def map_deployed(
    state: ModelState,
    rows: list[dict[str, Any]],
    folder: Path,
    run_dir: Path,
    *,
    pixels: str = "auto",
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
        pixels=pixels,
    )


def draw_map(
    state: ModelState,
    predict,
    row: dict[str, Any],
    path: Path,
    run_dir: Path,
    *,
    stage: InputStage = "transformed",
    pixels: str = "auto",
) -> str:
    """Renders false colour | truth | prediction | test errors of the ``pixels`` of
    :func:`map_mask`; returns the path in the run."""
    from tfhsi.experiment import predict_scene
    from tfhsi.report.maps import false_colour, save_maps

    scene = state.prepared.scene
    predicted = predict_scene(
        predict,
        state.prepared,
        patch_size=state.patch,
        layout=state.layout,
        stage=stage,
        pixels=map_mask(state, pixels),
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
