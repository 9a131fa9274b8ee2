"""The same command and seed twice give the same split and metrics; runs record their inputs.

Tolerance: on CPU, ``tfhsi train`` seeds Python, NumPy and TensorFlow and turns on TF op
determinism, so two runs with the same options and seed are identical: split masks are
compared exactly, metrics (OA, AA, Kappa, per-class scores, confusion) and every epoch's
loss within 1e-6 (absolute). GPUs or another TensorFlow/oneDNN build may differ by float
rounding; the split, which is NumPy only, is exact everywhere.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from cli_check import tfhsi
from simulate import write_ksc

from tfhsi.env import PACKAGES

TOLERANCE = 1e-6
SYNTHETIC = ("--dataset", "synthetic:12x12x6x3", "--model", "student2d", "--patch", "5")


def _train(out: Path, *args: str, epochs: int = 2) -> Path:
    result = tfhsi("train", *args, "--epochs", str(epochs), "--out", out)
    assert result.exit_code == 0, result.output
    return out


def _masks(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "split.npz") as z:
        return {k: z[k] for k in ("train", "val", "test")}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


XLA = ("--dataset", "synthetic:12x12x24x3", "--model", "student3d", "--patch", "5")
"""student3d trains with XLA-compiled steps (``tfhsi.models.trains_with_xla``) from
``XLA_MIN_EPOCHS`` epochs on."""


@pytest.mark.parametrize("options", [SYNTHETIC, XLA], ids=["student2d", "student3d-xla"])
def test_same_seed_twice_gives_identical_split_and_metrics(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    from tfhsi.models import XLA_MIN_EPOCHS

    epochs = XLA_MIN_EPOCHS if options is XLA else 2
    first = _train(tmp_path / "a", *options, "--seed", "3", epochs=epochs)
    second = _train(tmp_path / "b", *options, "--seed", "3", epochs=epochs)
    for name, mask in _masks(first).items():
        np.testing.assert_array_equal(mask, _masks(second)[name], err_msg=name)
    a = json.loads((first / "metrics.json").read_text())["keras"]
    b = json.loads((second / "metrics.json").read_text())["keras"]
    assert a.keys() == b.keys()
    for key in a:
        if key == "class_names":
            assert a[key] == b[key]
            continue
        np.testing.assert_allclose(
            np.asarray(a[key], float), np.asarray(b[key], float), atol=TOLERANCE, err_msg=key
        )
    losses = [
        [e["loss"] for e in json.loads((r / "history.json").read_text())["epochs"]]
        for r in (first, second)
    ]
    np.testing.assert_allclose(losses[0], losses[1], atol=TOLERANCE)


def test_split_command_is_reproducible_and_another_seed_differs(tmp_path: Path) -> None:
    """The comparison above can fail: seeds do change the split (``tfhsi data split``)."""
    data = tmp_path / "data"
    write_ksc(data)
    masks = {}
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        path = tmp_path / f"{name}.npz"
        result = tfhsi(
            "data", "split", "ksc", "--split", "random:0.3", "--patch", "5", "--seed", seed,
            "--save", path, "--data-dir", data,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        with np.load(path) as z:
            masks[name] = z["train"]
    np.testing.assert_array_equal(masks["a"], masks["b"])
    assert not np.array_equal(masks["a"], masks["c"])


def test_run_records_package_versions_and_input_sha256(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cube, labels = write_ksc(data)
    run = _train(
        tmp_path / "run",
        *("--dataset", "ksc", "--model", "student2d", "--patch", "5", "--data-dir", str(data)),
    )
    record = json.loads((run / "run.json").read_text())
    assert record["dataset"]["sources"] == {cube.name: _sha256(cube), labels.name: _sha256(labels)}
    packages = record["environment"]["packages"]
    assert set(PACKAGES) <= set(packages)
    for name in ("tfhsi", "tensorflow", "tf-keras", "numpy"):
        assert packages[name], name


@pytest.mark.real_data
def test_real_scene_run_records_the_published_sha256_of_its_files(
    real_data_dir: Path, tmp_path: Path
) -> None:
    from tfhsi.data.scenes import get_scene

    scene = get_scene("indian_pines")
    run = _train(
        tmp_path / "run",
        *("--dataset", "indian_pines", "--model", "cnn1d", "--split", "random:3", "--val", "0"),
        *("--batch-size", "256", "--data-dir", str(real_data_dir)),
    )
    sources = json.loads((run / "run.json").read_text())["dataset"]["sources"]
    assert sources == {f.filename: f.sha256 for f in scene.files}
    for file in scene.files:
        assert _sha256(real_data_dir / scene.folder / file.filename) == file.sha256
