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
RELEASED = REPO / "tflite_models" / "indian_pines_mcu_student2d_int8"
RELEASED_3D = REPO / "tflite_models" / "indian_pines_phone_hamida3d_cluster32_int8"
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


def _export(scene, split, folder: Path, *, pca: int | None, metadata_normalisation: bool):
    """Trains a small student2d for ten epochs, exports it int8 with metadata, and returns
    the file, its transform.npz and tfhsi's own figures for it."""
    from tfhsi import api
    from tfhsi.data.prepared import prepare
    from tfhsi.deployment import export_tflite
    from tfhsi.export.metadata import InputInfo, Normalization, OutputInfo, add_metadata
    from tfhsi.models import build_model

    prepared = prepare(scene, split, pca_components=pca)
    model = build_model(
        "student2d", bands=prepared.bands, n_classes=scene.n_classes, patch_size=5, seed=0
    )
    api.fit(model, prepared, epochs=10, lr=3e-3, patience=None)
    path = folder / f"model_pca{pca}.tflite"
    exported = export_tflite(model, "int8", path, prepared=prepared)
    t = prepared.transform
    normalisation = Normalization(t.mean, t.scale, t.zero_variance_bands)
    path.write_bytes(
        add_metadata(
            exported.data,
            name="synthetic student2d",
            description="A test model.",
            version="1",
            author="tests",
            licence="Apache-2.0",
            input=InputInfo(
                "5x5 patches",
                bands=prepared.bands,
                layout="2d",
                normalization=normalisation if metadata_normalisation else None,
            ),
            output=OutputInfo("Class scores.", scene.class_names),
        )
    )
    transform = t.save(folder / f"transform_pca{pca}.npz")
    return path, transform, api.evaluate(path, prepared), _predicted_map(path, prepared)


def _predicted_map(path: Path, prepared) -> np.ndarray:
    """tfhsi's predicted label (1..C) of every test pixel of ``prepared``, 0 elsewhere."""
    from tfhsi.profile.interpreter import TFLiteModel
    from tfhsi.train.evaluate import predict_batches

    batches = prepared.dataset("test", patch_size=5, layout="2d", batch_size=256)
    _, y_pred = predict_batches(TFLiteModel(path).predict, batches)
    predicted = np.zeros(prepared.split.test.shape, np.int16)
    rows, cols = prepared.centers("test").T
    predicted[rows, cols] = y_pred + 1
    return predicted


def test_example_reproduces_tfhsi_with_metadata_normalisation(scene_files) -> None:
    scene, split, folder = scene_files
    from tfhsi.data.transforms import SpectralTransform

    assert SpectralTransform.fit(scene.cube, split.train).zero_variance_bands.tolist() == [2]
    path, _, metrics, predicted = _export(
        scene, split, folder, pca=None, metadata_normalisation=True
    )
    result = _run(
        EXAMPLE,
        path,
        "--cube", folder / "cube.mat",
        "--labels", folder / "gt.mat",
        "--test-mask", folder / "split.npz",
        "--predictions", folder / "predicted.npy",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "from the model's metadata" in result.stderr
    assert result.stdout.strip() == _line(metrics)
    np.testing.assert_array_equal(np.load(folder / "predicted.npy"), predicted)


def test_example_reproduces_tfhsi_with_pca_from_transform_file(scene_files) -> None:
    scene, split, folder = scene_files
    path, transform, metrics, predicted = _export(
        scene, split, folder, pca=4, metadata_normalisation=False
    )
    args = ["--cube", folder / "cube.mat", "--labels", folder / "gt.mat"]
    args += ["--test-mask", folder / "split.npz"]
    refused = _run(EXAMPLE, path, *args)
    assert refused.returncode != 0 and "pass --transform" in refused.stderr
    result = _run(
        EXAMPLE, path, *args, "--transform", transform, "--predictions", folder / "pca.npy"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == _line(metrics)
    np.testing.assert_array_equal(np.load(folder / "pca.npy"), predicted)


def _card_line(folder: Path = RELEASED) -> str:
    card = json.loads((folder / "card.json").read_text())["metrics"]
    return f"OA {100 * card['oa']:.2f}  AA {100 * card['aa']:.2f}  kappa {card['kappa']:.4f}"


@pytest.mark.real_data
@pytest.mark.parametrize("folder", [RELEASED, RELEASED_3D], ids=lambda f: f.name)
def test_example_reproduces_the_released_model_cards(folder: Path, real_data_dir: Path) -> None:
    scene = real_data_dir / "indian_pines"
    result = _run(
        EXAMPLE,
        folder / "model.tflite",
        "--cube", scene / "Indian_pines_corrected.mat",
        "--labels", scene / "Indian_pines_gt.mat",
        "--test-mask", folder / "split.npz",
        "--transform", folder / "transform.npz",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "normalisation: from" in result.stderr and "transform.npz" in result.stderr
    assert result.stdout.strip() == _card_line(folder)


@pytest.mark.real_data
def test_metadata_normalisation_reproduces_the_released_model_card(
    real_data_dir: Path, tmp_path: Path
) -> None:
    from tfhsi.data.transforms import SpectralTransform
    from tfhsi.export.metadata import InputInfo, Normalization, OutputInfo, add_metadata

    t = SpectralTransform.load(RELEASED / "transform.npz")
    names = (RELEASED / "model.labels.txt").read_text().splitlines()
    path = tmp_path / "model.tflite"
    path.write_bytes(
        add_metadata(
            (RELEASED / "model.tflite").read_bytes(),
            name="indian_pines_mcu_student2d_int8",
            description="Indian Pines classifier.",
            version="1",
            author="tests",
            licence="Apache-2.0",
            input=InputInfo(
                "9x9 patches of 200 standardised bands",
                bands=t.in_bands,
                layout="2d",
                normalization=Normalization(t.mean, t.scale, t.zero_variance_bands),
            ),
            output=OutputInfo("Class scores.", names),
        )
    )
    scene = real_data_dir / "indian_pines"
    result = _run(
        EXAMPLE,
        path,
        "--cube", scene / "Indian_pines_corrected.mat",
        "--labels", scene / "Indian_pines_gt.mat",
        "--test-mask", RELEASED / "split.npz",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == _card_line()
