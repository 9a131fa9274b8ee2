"""An exported file carries its preprocessing: PCA is its first layer, it takes all the scene's
bands, its metadata holds the per-band standardisation, the value range and the labels, and
tfhsi feeds it exactly as its metadata says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tfhsi.export.metadata import input_stage, read_metadata

BANDS, PCA, CLASSES, PATCH = 12, 5, 3, 5


@pytest.fixture(scope="module")
def trained():
    """A seeded scene with a constant band, PCA fitted on its training pixels, and a student2d
    trained for two epochs on the PCA scores."""
    import tfhsi
    from tfhsi.data.datasets import open_dataset
    from tfhsi.data.prepared import prepare
    from tfhsi.data.scene_data import SceneData
    from tfhsi.data.splits import make_split
    from tfhsi.models import build_model

    base = open_dataset(f"synthetic:16x16x{BANDS}x{CLASSES}")
    cube = np.asarray(base.cube, np.float64) * 40.0 + 900.0  # raw-like values
    cube[..., 2] = 123.0  # constant band: std = inf in the metadata
    scene = SceneData("fold", cube, base.labels, base.class_names, base.rgb_bands, synthetic=True)
    split = make_split(scene.labels, "random:0.5", seed=0, patch_size=PATCH, val_fraction=0.1)
    prepared = prepare(scene, split, pca_components=PCA)
    model = build_model("student2d", bands=PCA, n_classes=CLASSES, patch_size=PATCH)
    tfhsi.fit(model, prepared, epochs=2)
    return model, prepared


def _export(trained, preset: str, folder: Path, **kw):
    from tfhsi.deployment import export_tflite

    model, prepared = trained
    return export_tflite(model, preset, folder / f"{preset}.tflite", prepared=prepared, **kw)


def _scores(path: Path, prepared, stage: str) -> np.ndarray:
    from tfhsi.profile.interpreter import TFLiteModel

    model = TFLiteModel(path)
    batches = prepared.dataset("test", patch_size=PATCH, layout="2d", stage=stage)
    return np.concatenate([np.asarray(model.predict(np.asarray(x))) for x, _ in batches])


def test_exported_file_takes_all_bands_and_its_metadata_holds_the_standardisation(
    trained, tmp_path: Path
) -> None:
    _, prepared = trained
    exported = _export(trained, "int8", tmp_path)
    assert exported.inputs == "standardised" and exported.precision == "int8"
    meta = read_metadata(exported.path.read_bytes())
    assert meta is not None and input_stage(meta) == "standardised"
    (tensor,) = meta["inputs"]
    norm = tensor["normalization"]
    t = prepared.transform
    np.testing.assert_allclose(norm["mean"], t.mean, rtol=1e-6)
    assert norm["constant_bands"] == [2] and norm["std"][2] is None
    np.testing.assert_allclose(
        np.delete(norm["std"], 2).astype(float), np.delete(t.scale, 2), rtol=1e-6
    )
    assert len(tensor["stats"]["min"]) == BANDS and f"all {BANDS} bands" in tensor["description"]
    assert "PCA to 5 components" in tensor["description"]
    assert meta["outputs"][0]["labels"] == list(prepared.scene.class_names)
    assert "int8" in meta["description"]
    json.dumps(meta, allow_nan=False)


@pytest.mark.parametrize("inputs", ["standardised", "raw"])
def test_folded_fp32_file_gives_the_two_step_scores(trained, tmp_path: Path, inputs: str) -> None:
    _, prepared = trained
    two_step = _export(trained, "fp32", tmp_path / "a", inputs="transformed")
    folded = _export(trained, "fp32", tmp_path / "b", inputs=inputs)
    assert read_metadata(two_step.path.read_bytes()) is None
    assert input_stage(read_metadata(folded.path.read_bytes())) == inputs
    reference = _scores(two_step.path, prepared, "transformed")
    np.testing.assert_allclose(_scores(folded.path, prepared, inputs), reference, atol=1e-4)


def test_folded_int8_file_is_int8_and_scores_within_its_output_step(
    trained, tmp_path: Path
) -> None:
    from tfhsi.experiment.prediction import evaluate_file

    _, prepared = trained
    folded = _export(trained, "int8", tmp_path)
    two_step = _export(trained, "int8", tmp_path / "ref", inputs="transformed")
    oa_folded = evaluate_file(folded.path, prepared).oa
    oa_two_step = evaluate_file(two_step.path, prepared).oa
    assert abs(oa_folded - oa_two_step) <= 0.05  # tiny scene: a few test pixels may flip


def test_a_file_without_metadata_is_fed_the_runs_transform() -> None:
    assert input_stage(None) == "transformed"
    assert input_stage({"inputs": [{"normalization": None}]}) == "raw"
    assert input_stage({"inputs": [{"normalization": {"mean": [0.0]}}]}) == "standardised"


def test_transform_affine_map_equals_apply() -> None:
    from tfhsi.data.transforms import SpectralTransform

    rng = np.random.default_rng(0)
    cube = rng.normal(size=(10, 10, 8)) * rng.uniform(1, 50, 8) + rng.uniform(100, 900, 8)
    cube[..., 3] = 7.0
    mask = np.zeros((10, 10), bool)
    mask[::2] = True
    for pca in (None, 4):
        t = SpectralTransform.fit(cube, mask, pca_components=pca)
        for stage, x in (("raw", cube), ("standardised", t.standardise(cube))):
            w, b = t.affine(inputs=stage)
            np.testing.assert_allclose(x @ w + b, t.apply(cube), atol=1e-5)


def test_audit_prints_and_returns_the_metadata(trained, tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from tfhsi.cli import export as export_cli

    app = typer.Typer()
    app.command("audit")(export_cli.audit)
    app.command("other")(lambda: None)
    path = _export(trained, "int8", tmp_path).path
    runner = CliRunner()
    shown = runner.invoke(app, ["audit", str(path)], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert (
        f"normalisation: (x - mean) / std for {BANDS} bands; constant bands → 0: [2]"
        in shown.output
    )
    assert f"{CLASSES} labels packed in the file" in shown.output
    as_json = runner.invoke(app, ["audit", str(path), "--json"])
    assert json.loads(as_json.stdout)["metadata"]["inputs"][0]["normalization"][
        "constant_bands"
    ] == [2]


def test_restamp_sets_author_and_licence_and_keeps_the_input_description(
    trained, tmp_path: Path
) -> None:
    from tfhsi.errors import ConfigError
    from tfhsi.export.metadata import restamp_metadata

    data = _export(trained, "int8", tmp_path).path.read_bytes()
    before = read_metadata(data)
    after = read_metadata(restamp_metadata(data, author="Lab X", licence="CC-BY-4.0"))
    assert (after["author"], after["license"]) == ("Lab X", "CC-BY-4.0")
    assert after["inputs"] == before["inputs"] and after["outputs"] == before["outputs"]
    assert after["name"] == before["name"]
    bare = _export(trained, "int8", tmp_path / "bare", inputs="transformed").path.read_bytes()
    with pytest.raises(ConfigError, match="no TFLite metadata"):
        restamp_metadata(bare, author="x")


def test_int8_calibration_ignores_a_few_corrupt_pixels() -> None:
    """Two pixels far out in a few bands (as in Salinas-A) must not set the int8 input scale."""
    from tfhsi.data.datasets import open_dataset
    from tfhsi.data.prepared import prepare
    from tfhsi.data.scene_data import SceneData
    from tfhsi.data.splits import make_split

    base = open_dataset(f"synthetic:40x40x{BANDS}x{CLASSES}")
    cube = np.asarray(base.cube, np.float64).copy()
    split = make_split(base.labels, "random:0.5", seed=0, patch_size=PATCH)
    (r, c), (r2, c2) = np.argwhere(split.train)[:2]
    cube[r, c, 4:7] = cube[r2, c2, 4:7] = 1e4  # hundreds of standard deviations out
    scene = SceneData("spikes", cube, base.labels, base.class_names, base.rgb_bands, synthetic=True)
    prepared = prepare(scene, split, pca_components=PCA)
    typical = np.abs(prepared.cube_at("standardised")[split.train]).max(axis=1)
    low, high = prepared.calibration_range("standardised")
    assert high < np.sort(typical)[-3] and low < 0 < high  # the two spikes are out
    samples = prepared.representative(
        patch_size=PATCH, layout="2d", num_samples=10_000, stage="standardised"
    )
    values = np.concatenate([x.ravel() for [x] in samples()])
    assert values.max() <= high and values.min() >= low
