"""examples/standalone_inference.py reproduces tfhsi's own evaluation of a .tflite file to the
printed digit, in a process where tfhsi (and TensorFlow) cannot be imported."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "standalone_inference.py"
RELEASED_FOLDERS = sorted(p for p in (REPO / "tflite_models").iterdir() if p.is_dir())
BLOCKED = ("tfhsi", "tensorflow", "tf_keras", "keras", "tensorflow_model_optimization")
# Runs a script with -I (no PYTHONPATH, no user site) and an import hook that refuses tfhsi and
# TensorFlow, so the example fails if it needs them; lists what was imported on stderr.
RUNNER = f"""
import runpy, sys
BLOCKED = {BLOCKED!r}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(name + " is not available to the standalone example")
        return None
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _run(script: Path, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-c", RUNNER, str(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=script.parent,
    )


def _line(metrics) -> str:
    return f"OA {100 * metrics.oa:.2f}  AA {100 * metrics.aa:.2f}  kappa {metrics.kappa:.4f}"


def test_runner_refuses_tfhsi(tmp_path: Path) -> None:
    script = tmp_path / "needs_tfhsi.py"
    script.write_text("import tfhsi\n")
    result = _run(script)
    assert result.returncode != 0
    assert "not available to the standalone example" in result.stderr


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory: pytest.TempPathFactory):
    """A synthetic scene whose band 2 is constant over the training pixels but not elsewhere."""
    from tfhsi.data.splits import make_split
    from tfhsi.data.synthetic import synthetic_scene

    scene = synthetic_scene(height=16, width=16, bands=10, n_classes=3, seed=0)
    split = make_split(
        scene.labels, "random:0.3", seed=0, patch_size=5, class_names=scene.class_names
    )
    cube = scene.cube.copy()
    cube[..., 2] = 500
    cube[split.test, 2] = 500 + np.arange(int(split.test.sum())) % 7 * 40
    scene = dataclasses.replace(scene, cube=cube)
    folder = tmp_path_factory.mktemp("scene")
    scipy.io.savemat(folder / "cube.mat", {"cube": scene.cube})
    scipy.io.savemat(folder / "gt.mat", {"gt": scene.labels.astype(np.uint8)})
    split.save(folder / "split.npz")
    return scene, split, folder


def _export(scene, split, folder: Path, *, pca: int | None, inputs: tuple[str, ...]):
    """Trains a small student2d for ten epochs and exports it int8 once per ``inputs``
    (``"standardised"``: tfhsi's default file, PCA inside and the normalisation in its
    metadata; ``"transformed"``: the model as trained, no metadata); returns the transform.npz
    and, per file, its path, tfhsi's own figures and predicted map."""
    from tfhsi import api
    from tfhsi.data.prepared import prepare
    from tfhsi.deployment import export_tflite
    from tfhsi.models import build_model

    prepared = prepare(scene, split, pca_components=pca)
    model = build_model(
        "student2d", bands=prepared.bands, n_classes=scene.n_classes, patch_size=5, seed=0
    )
    api.fit(model, prepared, epochs=10, lr=3e-3, patience=None)
    files = {}
    for stage in inputs:
        path = folder / f"model_pca{pca}_{stage}.tflite"
        export_tflite(model, "int8", path, prepared=prepared, inputs=stage)
        files[stage] = (path, api.evaluate(path, prepared), _predicted_map(path, prepared))
    return prepared.transform.save(folder / f"transform_pca{pca}.npz"), files


def _predicted_map(path: Path, prepared) -> np.ndarray:
    """tfhsi's predicted label (1..C) of every test pixel of ``prepared``, 0 elsewhere."""
    from tfhsi.experiment import predictor
    from tfhsi.profile.interpreter import TFLiteModel
    from tfhsi.train.evaluate import predict_batches

    stage = predictor(path).stage
    batches = prepared.dataset("test", patch_size=5, layout="2d", batch_size=256, stage=stage)
    _, y_pred = predict_batches(TFLiteModel(path).predict, batches)
    predicted = np.zeros(prepared.split.test.shape, np.int16)
    rows, cols = prepared.centers("test").T
    predicted[rows, cols] = y_pred + 1
    return predicted


def _example(path: Path, folder: Path, *extra: object) -> subprocess.CompletedProcess[str]:
    return _run(
        EXAMPLE,
        path,
        "--cube", folder / "cube.mat",
        "--labels", folder / "gt.mat",
        "--test-mask", folder / "split.npz",
        *extra,
    )  # fmt: skip


def _reproduces(file, folder: Path, name: str, *extra: object, says: str | None = None) -> None:
    """The example run on ``file`` (path, tfhsi's metrics, predictions) prints tfhsi's metrics
    and writes its predictions (``folder/name``); ``says``: a line it must print on stderr."""
    path, metrics, predicted = file
    result = _example(path, folder, *extra, "--predictions", folder / name)
    assert result.returncode == 0, result.stderr
    if says is not None:
        assert says in result.stderr
    assert result.stdout.strip() == _line(metrics)
    np.testing.assert_array_equal(np.load(folder / name), predicted)


def test_example_reproduces_tfhsi_with_metadata_normalisation(scene_files) -> None:
    scene, split, folder = scene_files
    from tfhsi.data.transforms import SpectralTransform

    assert SpectralTransform.fit(scene.cube, split.train).zero_variance_bands.tolist() == [2]
    _, files = _export(scene, split, folder, pca=None, inputs=("standardised",))
    _reproduces(files["standardised"], folder, "predicted.npy", says="from the model's metadata")


def test_example_reproduces_tfhsi_with_pca_inside_the_file_or_from_transform_file(
    scene_files,
) -> None:
    """A PCA model's exported file takes all the raw bands (PCA inside, normalisation in the
    metadata); the two-step file without metadata needs the run's transform.npz."""
    scene, split, folder = scene_files
    transform, files = _export(scene, split, folder, pca=4, inputs=("standardised", "transformed"))
    _reproduces(files["standardised"], folder, "folded.npy", says="from the model's metadata")

    refused = _example(files["transformed"][0], folder)
    assert refused.returncode != 0 and "pass --transform" in refused.stderr
    _reproduces(files["transformed"], folder, "pca.npy", "--transform", transform)


def _card_line(folder: Path) -> str:
    card = json.loads((folder / "card.json").read_text())["metrics"]
    return f"OA {100 * card['oa']:.2f}  AA {100 * card['aa']:.2f}  kappa {card['kappa']:.4f}"


@pytest.mark.real_data
@pytest.mark.parametrize("folder", RELEASED_FOLDERS, ids=lambda f: f.name)
def test_example_reproduces_the_released_model_cards_from_the_files_metadata(
    folder: Path, real_data_dir: Path
) -> None:
    """The released file alone (no transform.npz): raw bands in, normalised as its metadata
    says, PCA inside; the card's OA / AA / kappa out."""
    scene = real_data_dir / "indian_pines"
    result = _run(
        EXAMPLE,
        folder / "model.tflite",
        "--cube", scene / "Indian_pines_corrected.mat",
        "--labels", scene / "Indian_pines_gt.mat",
        "--test-mask", folder / "split.npz",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "normalisation: from the model's metadata" in result.stderr
    assert result.stdout.strip() == _card_line(folder)


@pytest.mark.parametrize("folder", RELEASED_FOLDERS, ids=lambda f: f.name)
def test_released_files_carry_their_preprocessing_and_labels(folder: Path) -> None:
    from tfhsi.data.transforms import SpectralTransform
    from tfhsi.export.metadata import read_metadata

    meta = read_metadata((folder / "model.tflite").read_bytes())
    assert meta is not None and meta["name"] == folder.name and meta["author"] and meta["license"]
    (tensor,) = meta["inputs"]
    t = SpectralTransform.load(folder / "transform.npz")
    np.testing.assert_allclose(tensor["normalization"]["mean"], t.mean, rtol=1e-6)
    assert tensor["normalization"]["constant_bands"] == t.zero_variance_bands.tolist()
    assert len(tensor["stats"]["min"]) == t.in_bands
    labels = (folder / "model.labels.txt").read_text().splitlines()
    assert meta["outputs"][0]["labels"] == labels
