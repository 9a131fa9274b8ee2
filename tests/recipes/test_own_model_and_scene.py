"""A user's own 3-D model (a builder file outside the package, or a saved .keras) and own scene
(ENVI BIL cube, TIFF labels, a scene YAML) go through a recipe — distillation, prune → QAT,
int8 export, TFLite Micro — in spawn workers, like a zoo model on a registered scene."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from tfhsi.data.datasets import open_dataset
from tfhsi.recipes.executors import LocalExecutor
from tfhsi.recipes.loading import validate
from tfhsi.recipes.runner import run_recipe

BUILDER = '''
from tfhsi import keras


def build(*, bands, n_classes, patch_size, width=1.0, seed=None):
    """Two Conv3D branches added (a residual), then 5-D → 4-D and a Conv2D head."""
    c = max(2, int(4 * width))
    inputs = keras.Input((patch_size, patch_size, bands, 1))
    a = keras.layers.Conv3D(c, (3, 3, 3), padding="same", activation="relu")(inputs)
    b = keras.layers.Conv3D(c, (1, 1, 3), padding="same", activation="relu")(inputs)
    x = keras.layers.Add()([a, b])
    x = keras.layers.Conv3D(c, (3, 3, 3), strides=(1, 1, 2), activation="relu")(x)
    x = keras.layers.Reshape((patch_size - 2, patch_size - 2, -1))(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(n_classes, name="logits")(x), name="mine")
'''


@pytest.fixture(scope="module")
def own_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A builder file and a scene (ENVI BIL + TIFF labels + YAML) written outside the package."""
    import tifffile
    from spectral.io import envi

    folder = tmp_path_factory.mktemp("user_files")
    (folder / "my_net.py").write_text(textwrap.dedent(BUILDER), encoding="utf-8")
    source = open_dataset("synthetic:16x16x12x3@3")
    envi.save_image(
        str(folder / "field.hdr"), source.cube.astype(np.int16), interleave="bil", ext=".bil"
    )
    tifffile.imwrite(folder / "field_gt.tif", source.labels.astype(np.uint8))
    (folder / "field.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "field",
                "cube": {"path": "field.hdr"},
                "labels": {"path": "field_gt.tif"},
                "class_names": ["wheat", "maize", "soy"],
            }
        ),
        encoding="utf-8",
    )
    return {"folder": folder, "builder": folder / "my_net.py", "scene": folder / "field.yaml"}


def _run(recipe: dict, folder: Path, tmp_path: Path, workers: int) -> tuple[list[dict], str]:
    lines: list[str] = []
    validated = validate(recipe, source="own.yaml", base_dir=folder)
    run_dir = run_recipe(
        validated,
        out=tmp_path / "run",
        log=lines.append,
        executor=LocalExecutor(workers, log=lines.append),
    )
    rows = json.loads((run_dir / "results.json").read_text())["rows"]
    return rows, "\n".join(lines)


def _int8_rows(rows: list[dict], variant: str) -> list[dict]:
    return [r for r in rows if r["variant"] == variant and r["format"].startswith("int8")]


@pytest.mark.slow
def test_user_builder_on_user_envi_scene_distils_prunes_qats_and_exports_int8_on_tflm(
    own_files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TFHSI_CACHE_DIR", str(tmp_path / "cache"))
    recipe = {
        "name": "own",
        "dataset": "field.yaml",  # relative to the recipe's folder
        "seeds": [0],
        "teacher": {"model": "my_net.py:build", "patch": 5, "pca": 8, "train": {"epochs": 1}},
        "variants": [
            {
                "name": "kd",
                "student": {"model": "my_net.py:build", "patch": 5, "pca": 8, "width": 0.5},
                "steps": [{"method": "distill", "epochs": 1}],
                "export": ["int8"],
            },
            {
                "name": "prune_qat",
                "steps": [
                    {"method": "prune", "target": 0.5, "epochs": 1},
                    {"method": "qat", "epochs": 1},
                ],
                "export": ["int8"],
            },
        ],
        "profile": {"latency_runs": 1, "tflm": True},
        "maps": False,
    }
    rows, _ = _run(recipe, own_files["folder"], tmp_path, workers=2)
    assert [r["error"] for r in rows if r.get("error")] == []
    assert {r["model"] for r in rows} == {"my_net.build"}
    full = {
        variant: [r["format"] for r in _int8_rows(rows, variant) if r["full_int8"]]
        for variant in ("kd", "prune_qat")
    }
    assert full == {"kd": ["int8"], "prune_qat": ["int8"]}  # the 3-D student lowered by int8
    for variant in full:
        for row in _int8_rows(rows, variant):
            assert row["precision"] == "int8" and row["arena_bytes"] > 0, row
            assert any("Conv3D lowered" in note for note in row["notes"]), row
    environment = json.loads(next((tmp_path / "run").glob("environment.json")).read_text())
    assert any(name.endswith("field.bil") for name in environment["inputs"])


@pytest.mark.slow
def test_pretrained_keras_file_is_used_as_given_then_exported_and_profiled(
    own_files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tfhsi._keras import keras
    from tfhsi.models import resolve_model

    monkeypatch.setenv("TFHSI_CACHE_DIR", str(tmp_path / "cache"))
    # Fixed weights and fresh layer names: the converter's int8 of the lowered model depends on
    # both (with some, it leaves the (1, 1, 3) branch in float, and the int8 export fails).
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = resolve_model(f"{own_files['builder']}:build").build(
        bands=8, n_classes=3, patch_size=5, seed=1
    )
    saved = tmp_path / "trained_elsewhere.keras"
    model.save(str(saved))
    recipe = {
        "name": "own_pretrained",
        "dataset": str(own_files["scene"]),
        "seeds": [0],
        "teacher": {"model": str(saved), "pretrained": True},
        "variants": [{"name": "ptq", "export": ["int8"]}],
        "profile": {"latency_runs": 1, "tflm": True},
        "maps": False,
    }
    rows, log = _run(recipe, tmp_path, tmp_path, workers=1)
    assert [r["error"] for r in rows if r.get("error")] == []
    assert "epoch " not in log and "used as given" in log
    teacher = next(r for r in rows if r["variant"] == "teacher" and r["format"] == "keras")
    int8 = next(r for r in rows if r["variant"] == "ptq" and r["format"] == "int8")
    assert teacher["parameters"] == model.count_params()
    assert int8["full_int8"] and int8["precision"] == "int8" and int8["arena_bytes"] > 0
    assert any("Conv3D lowered" in note for note in int8["notes"])
