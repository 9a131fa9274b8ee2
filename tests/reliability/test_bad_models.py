"""Model files that are not what they claim, or do not fit the run: ``tfhsi evaluate``.

The run is a tiny synthetic scene (12×12, 6 bands, 3 classes) trained with 5×5 patches.
A ``.tflite`` with another patch size still fits (patches are cut to the model's input);
other bands, another class count or a patch larger than the scene do not.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_check import assert_nothing_lost, assert_one_error, tfhsi


@pytest.fixture(scope="module")
def tflite_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny untrained student2d models converted to fp32 ``.tflite``, by what they expect."""
    from tfhsi.export.tflite import convert
    from tfhsi.models import build_model

    folder = tmp_path_factory.mktemp("models")
    shapes = {
        "patch7": dict(bands=6, n_classes=3, patch_size=7),
        "bands4": dict(bands=4, n_classes=3, patch_size=5),
        "classes5": dict(bands=6, n_classes=5, patch_size=5),
        "patch13": dict(bands=6, n_classes=3, patch_size=13),
    }
    files = {}
    for name, kwargs in shapes.items():
        path = folder / f"{name}.tflite"
        path.write_bytes(convert(build_model("student2d", seed=0, **kwargs), "fp32"))
        files[name] = path
    good = files["patch7"].read_bytes()
    files["truncated"] = folder / "truncated.tflite"
    files["truncated"].write_bytes(good[: len(good) // 3])
    files["text"] = folder / "text.tflite"
    files["text"].write_text("not a model\n")
    files["keras_zip"] = folder / "keras_zip.tflite"
    files["keras_zip"].write_bytes(b"PK\x03\x04" + b"\0" * 60)
    files["empty"] = folder / "empty.tflite"
    files["empty"].write_bytes(b"")
    return files


CASES = {
    "text": ("text.tflite is not a TFLite model", "flatbuffer identifier", "export"),
    "keras_zip": ("keras_zip.tflite is not a TFLite model", "zip archive", "export"),
    "empty": ("empty.tflite is not a TFLite model", "the file is empty"),
    "truncated": ("truncated.tflite", "truncated or corrupt"),
    "bands4": (
        "bands4.tflite takes inputs of shape (5, 5, 4)",
        "this run feeds k×k×6(×1) patches",
        "--run RUN_DIR",
    ),
    "classes5": ("classes5.tflite scores 5 classes", "has 3", "--run RUN_DIR"),
    "patch13": ("patch13.tflite takes 13×13 patches", "only 12×12", "--run RUN_DIR"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_model_file_that_does_not_fit_gives_one_line_and_loses_nothing(
    case: str, tflite_files: dict[str, Path], runs: Path, earlier
) -> None:
    folder, _ = earlier
    result = tfhsi("evaluate", tflite_files[case], "--run", folder)
    assert_one_error(result, *CASES[case])
    assert_nothing_lost(earlier, touched=[runs])


def test_predict_map_refuses_a_model_that_does_not_fit(
    tflite_files: dict[str, Path], runs: Path, earlier
) -> None:
    folder, _ = earlier
    result = tfhsi("predict-map", tflite_files["bands4"], "--run", folder)
    assert_one_error(result, "bands4.tflite takes inputs of shape (5, 5, 4)")
    assert_nothing_lost(earlier, touched=[runs])


def test_tflite_with_another_patch_size_is_evaluated_on_the_run(
    tflite_files: dict[str, Path], runs: Path, earlier
) -> None:
    folder, _ = earlier
    result = tfhsi("evaluate", tflite_files["patch7"], "--run", folder, "--json")
    assert result.exit_code == 0, result.output
    assert '"oa"' in result.output
    assert_nothing_lost(earlier, touched=[runs])


def test_missing_model_file_is_named(tmp_path: Path, runs: Path, earlier) -> None:
    folder, _ = earlier
    result = tfhsi("evaluate", tmp_path / "gone.tflite", "--run", folder)
    assert_one_error(result, "gone.tflite does not exist", ".tflite file")
    assert_nothing_lost(earlier, touched=[runs])


def test_run_option_that_is_not_a_run_is_named(
    tflite_files: dict[str, Path], tmp_path: Path, runs: Path, earlier
) -> None:
    result = tfhsi("evaluate", tflite_files["patch7"], "--run", tmp_path)
    assert_one_error(result, "is not a tfhsi run directory", "--run")
    assert_nothing_lost(earlier, touched=[runs])


# --- model references given to `tfhsi train` -------------------------------------------------

LAMBDA_NET = """
from tfhsi import keras


def build(*, bands, n_classes, patch_size):
    inputs = keras.Input((patch_size, patch_size, bands))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(n_classes, name="logits")(x))
"""

BROKEN_NET = """
from tfhsi import keras

import not_a_module_anyone_has  # noqa: F401


def build(*, bands, n_classes, patch_size):
    return None
"""


def _train(tmp_path: Path, model: str, *extra: object):
    return tfhsi(
        "train", "--dataset", "synthetic:12x12x6x3", "--model", model, "--patch", 5,
        "--epochs", 1, "--out", tmp_path / "run", *extra,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("ref", "fragments"),
    [
        ("missing_net.py:build", ("missing_net.py", "does not exist")),
        ("net.py:buidl", ("buidl", "build")),
        ("broken.py:build", ("broken.py", "not_a_module_anyone_has")),
        ("no_such_package.module:build", ("no_such_package", "PYTHONPATH")),
        ("hamida3", ("hamida3", "hamida3d")),
    ],
)
def test_bad_model_reference_gives_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ref: str, fragments: tuple[str, ...]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text(LAMBDA_NET, encoding="utf-8")
    (tmp_path / "broken.py").write_text(BROKEN_NET, encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_one_error(_train(tmp_path, ref), *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_saved_model_with_code_is_refused_unless_unsafe_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tfhsi.models import resolve_model

    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text(LAMBDA_NET, encoding="utf-8")
    model = resolve_model(f"{tmp_path / 'net.py'}:build").build(bands=6, n_classes=3, patch_size=5)
    model.save(str(tmp_path / "lambda.keras"))
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_one_error(_train(tmp_path, "lambda.keras"), "lambda.keras", "--unsafe-deserialization")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    result = _train(tmp_path, "lambda.keras", "--unsafe-deserialization")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "metrics.json").is_file()
