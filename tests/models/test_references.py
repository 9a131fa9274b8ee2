"""Models from the user's code or files: builder files, modules, saved .keras/.h5, and refusals.

Builder files are written into ``tmp_path`` (outside the package), the way a user keeps them.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tfhsi._keras import keras
from tfhsi.errors import (
    ConfigError,
    ModelRefError,
    TfhsiError,
    UnsafeModelFileError,
    UnsupportedError,
    UserCodeError,
)
from tfhsi.models import (
    ModelSource,
    _user_code,
    build_model,
    check_model_ref,
    references,
    resolve_model,
)

BANDS, CLASSES, PATCH = 6, 3, 5
SIZES = {"bands": BANDS, "n_classes": CLASSES, "patch_size": PATCH}

RESIDUAL = '''
import tf_keras as keras

CALLS = []


def build(*, bands, n_classes, patch_size, seed):
    """Two Conv3D branches added, folded to 4-D, a Conv2D head (takes seed, not width)."""
    CALLS.append({"bands": bands, "n_classes": n_classes, "patch_size": patch_size, "seed": seed})
    layers = keras.layers
    inputs = keras.Input((patch_size, patch_size, bands, 1), name="patch")
    a = layers.Conv3D(4, (3, 3, 3), padding="same", name="branch_a")(inputs)
    b = layers.Conv3D(4, (1, 1, 3), padding="same", name="branch_b")(inputs)
    x = layers.Add(name="residual")([a, b])
    x = layers.ReLU(name="relu")(x)
    x = layers.Reshape((patch_size, patch_size, bands * 4), name="fold")(x)
    x = layers.Conv2D(8, 3, activation="relu", name="head")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, layers.Dense(n_classes, name="logits")(x), name="residual3d")
'''

PLAIN = '''
import tf_keras as keras


def build(bands, n_classes, patch_size, **options):
    """A 2-D net that seeds nothing itself: the global seed makes its weights."""
    inputs = keras.Input((patch_size, patch_size, bands))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(n_classes, name="logits")(x))
'''


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _one_line_error(exc: pytest.ExceptionInfo[BaseException], *fragments: str) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    assert "Traceback" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def _tiny_2d(n_classes: int = CLASSES, *, activation: str | None = None) -> keras.Model:
    inputs = keras.Input((PATCH, PATCH, BANDS), name="patch")
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(n_classes, activation=activation, name="logits")(x)
    return keras.Model(inputs, outputs, name="tiny2d")


# ---------------------------------------------------------------- builders


def test_residual_builder_file_outside_the_package_builds_a_checked_3d_model(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path / "user", "nets.py", RESIDUAL)
    source = resolve_model(f"{path}:build")
    model = source.build(**SIZES, width=0.5, seed=3)

    assert (source.kind, source.name, source.ref) == ("builder", "nets.build", f"{path}:build")
    assert source.input_spec() is None
    assert tuple(model.input_shape) == (None, PATCH, PATCH, BANDS, 1)
    assert tuple(model.output_shape) == (None, CLASSES)
    module = _user_code.import_file(str(path))
    assert module.CALLS[-1] == {**SIZES, "seed": 3}  # width was not passed: it takes none
    x = np.random.default_rng(0).random((2, PATCH, PATCH, BANDS, 1), dtype=np.float32)
    assert np.isfinite(model(x).numpy()).all()


def test_residual_builder_model_lowers_to_rank_4_with_equal_outputs(tmp_path: Path) -> None:
    from tfhsi.compress.lower import lower_conv3d

    path = _write(tmp_path, "nets.py", RESIDUAL)
    model = resolve_model(f"{path}:build").build(**SIZES, seed=0)
    x = np.random.default_rng(1).random((4, PATCH, PATCH, BANDS, 1), dtype=np.float32)
    lowered, report = lower_conv3d(model, check=x)

    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-4
    assert {"branch_a", "branch_b"} <= {entry.name for entry in report.layers}
    assert all(len(layer.output_shape) <= 4 for layer in lowered.layers[1:])


def test_relative_builder_path_is_made_absolute(tmp_path: Path, monkeypatch) -> None:
    _write(tmp_path / "user", "nets.py", PLAIN)
    monkeypatch.chdir(tmp_path)
    assert check_model_ref("user/nets.py:build") == f"{tmp_path / 'user' / 'nets.py'}:build"
    assert resolve_model("user/nets.py:build").ref == f"{tmp_path / 'user' / 'nets.py'}:build"


def test_relative_path_can_be_relative_to_another_folder(tmp_path: Path) -> None:
    path = _write(tmp_path / "recipes" / "nets", "cnn.py", PLAIN)
    ref = check_model_ref("nets/cnn.py:build", base_dir=tmp_path / "recipes")
    assert ref == f"{path}:build"
    assert resolve_model("nets/cnn.py:build", base_dir=tmp_path / "recipes").ref == ref


def test_builder_module_is_imported_once_per_file_version(tmp_path: Path) -> None:
    path = _write(tmp_path, "nets.py", PLAIN)
    first = references._load_builder(references._parse(f"{path}:build"))
    again = references._load_builder(references._parse(f"{path}:build"))
    assert again is first

    path.write_text(PLAIN.replace("Conv2D(4", "Conv2D(5"), encoding="utf-8")
    os.utime(path, ns=(1, os.stat(path).st_mtime_ns + 10**9))
    model = resolve_model(f"{path}:build").build(**SIZES)
    assert model.get_layer("conv").filters == 5


def test_two_builder_files_of_the_same_name_do_not_clash(tmp_path: Path) -> None:
    one = _write(tmp_path / "a", "model.py", PLAIN)
    two = _write(tmp_path / "b", "model.py", PLAIN.replace("Conv2D(4", "Conv2D(7"))
    first = resolve_model(f"{one}:build").build(**SIZES)
    second = resolve_model(f"{two}:build").build(**SIZES)
    assert (first.get_layer("conv").filters, second.get_layer("conv").filters) == (4, 7)


def test_builder_imports_its_neighbour_and_leaves_sys_path_as_it_was(tmp_path: Path) -> None:
    _write(tmp_path, "blocks_for_nets.py", "FILTERS = 6\n")
    path = _write(
        tmp_path,
        "nets.py",
        PLAIN.replace(
            "import tf_keras as keras", "import tf_keras as keras\nimport blocks_for_nets"
        ).replace("Conv2D(4", "Conv2D(blocks_for_nets.FILTERS"),
    )
    before = list(sys.path)
    model = resolve_model(f"{path}:build").build(**SIZES)
    assert model.get_layer("conv").filters == 6
    assert sys.path == before


def test_package_module_function_reference_builds(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "site" / "hsi_user_pkg"
    _write(package, "__init__.py", "")
    _write(package, "nets.py", PLAIN)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))

    assert check_model_ref("hsi_user_pkg.nets:build") == "hsi_user_pkg.nets:build"
    source = resolve_model("hsi_user_pkg.nets:build")
    model = source.build(**SIZES)
    assert (source.kind, source.name) == ("builder", "nets.build")
    assert tuple(model.output_shape) == (None, CLASSES)


def test_zoo_name_builds_the_zoo_model_with_its_defaults_as_input_spec() -> None:
    source = resolve_model("student2d")
    model = source.build(**SIZES, seed=4)
    reference = build_model("student2d", **SIZES, seed=4)

    assert (source.kind, source.ref, source.name) == ("zoo", "student2d", "student2d")
    assert source.input_spec() == ("2d", 9, None)
    for got, want in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def _weights_in_worker(source: ModelSource) -> list[np.ndarray]:
    return source.build(**SIZES, seed=11).get_weights()


def test_builder_resolved_in_a_spawned_worker_gives_the_same_weights(tmp_path: Path) -> None:
    path = _write(tmp_path, "nets.py", PLAIN)
    source = resolve_model(f"{path}:build")
    here = _weights_in_worker(source)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        there = pool.submit(_weights_in_worker, source).result(timeout=300)

    assert len(here) == len(there) == 4
    for a, b in zip(here, there, strict=True):
        np.testing.assert_array_equal(a, b)
    other = source.build(**SIZES, seed=12).get_weights()
    assert not np.array_equal(other[0], here[0])


def test_check_model_ref_does_not_import_tensorflow(tmp_path: Path) -> None:
    path = _write(tmp_path, "nets.py", "import tensorflow\n\ndef build(**kw):\n    pass\n")
    saved = tmp_path / "m.keras"
    saved.write_bytes(b"PK")
    code = (
        "import sys\nfrom tfhsi.models import check_model_ref\n"
        f"print(check_model_ref({f'{path}:build'!r}), check_model_ref({str(saved)!r}), "
        "check_model_ref('hybridsn'))\n"
        "assert 'tensorflow' not in sys.modules and 'tf_keras' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"{path}:build", str(saved), "hybridsn"]


# ---------------------------------------------------------------- saved files


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_saved_model_round_trip_keeps_weights_and_reads_its_input_spec(
    tmp_path: Path, suffix: str
) -> None:
    original = build_model("student3d", bands=24, n_classes=CLASSES, patch_size=5, seed=2)
    path = tmp_path / f"trained{suffix}"
    original.save(str(path))
    source = resolve_model(str(path))

    assert (source.kind, source.name, source.ref) == ("saved", "trained", str(path))
    assert source.input_spec() == ("3d", 5, 24)
    loaded = source.build(bands=24, n_classes=CLASSES, patch_size=5)
    for got, want in zip(loaded.get_weights(), original.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_saved_model_that_does_not_fit_the_run_names_both_sides(tmp_path: Path) -> None:
    path = tmp_path / "tiny.keras"
    _tiny_2d().save(str(path))
    source = resolve_model(str(path))

    with pytest.raises(ConfigError) as exc:
        source.build(bands=BANDS + 1, n_classes=CLASSES, patch_size=PATCH)
    _one_line_error(exc, "takes inputs of shape (5, 5, 6)", "the run feeds (5, 5, 7)", "Fix:")
    with pytest.raises(ConfigError) as exc:
        source.build(bands=BANDS, n_classes=CLASSES + 2, patch_size=PATCH)
    _one_line_error(exc, "outputs shape (3,)", "the scene has 5 classes")


def _lambda_model() -> keras.Model:
    inputs = keras.Input((PATCH, PATCH, BANDS))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, name="logits")(x))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_model_file_is_refused_in_safe_mode_and_loads_when_unsafe(
    tmp_path: Path, suffix: str
) -> None:
    original = _lambda_model()
    path = tmp_path / f"lam{suffix}"
    original.save(str(path))

    with pytest.raises(UnsafeModelFileError) as exc:
        resolve_model(str(path))
    _one_line_error(
        exc,
        f"lam{suffix} holds Python code (Lambda layer(s) double)",
        "did not run it",
        "`unsafe: true`",
        "--unsafe-deserialization",
    )
    source = resolve_model(str(path), unsafe=True)
    model = source.build(**SIZES)
    x = np.ones((1, PATCH, PATCH, BANDS), np.float32)
    np.testing.assert_allclose(model(x).numpy(), original(x).numpy(), rtol=1e-6)


def test_file_saved_by_keras3_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "k3.keras"
    _tiny_2d().save(str(path))
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    parts["metadata.json"] = json.dumps({"keras_version": "3.15.1"}).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)

    with pytest.raises(UnsupportedError) as exc:
        resolve_model(str(path))
    _one_line_error(exc, "saved by Keras 3.15.1", "from tfhsi import keras", "tf_keras")


def test_file_that_is_not_a_keras_model_is_a_data_format_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.keras"
    path.write_text("not a zip\n")
    with pytest.raises(TfhsiError) as exc:
        resolve_model(str(path))
    _one_line_error(exc, "junk.keras is not a saved Keras model")


# ---------------------------------------------------------------- refusals

BAD_BUILDERS = {
    "import_error": (
        "import tf_keras as keras\nimport no_such_module_for_tfhsi\n\ndef build(**kw):\n    pass\n",
        UserCodeError,
        (
            "cannot import builder file",
            "ModuleNotFoundError",
            "no_such_module_for_tfhsi",
            "bad.py:2",
        ),
    ),
    "syntax_error": (
        "def build(**kw)\n    pass\n",
        UserCodeError,
        ("SyntaxError", "bad.py:1"),
    ),
    "raises": (
        "def build(*, bands, n_classes, patch_size):\n    raise ValueError('bands must be even')\n",
        UserCodeError,
        ("bad.py:build raised ValueError: bands must be even", "bad.py:2"),
    ),
    "not_a_model": (
        "def build(*, bands, n_classes, patch_size):\n    return 42\n",
        UnsupportedError,
        ("returned a builtins.int, not a tf_keras model", "from tfhsi import keras"),
    ),
    "keras3_object": (
        "class Functional:\n    pass\n\nFunctional.__module__ = 'keras.src.models.functional'\n\n"
        "def build(*, bands, n_classes, patch_size):\n    return Functional()\n",
        UnsupportedError,
        ("returned a Keras 3 Functional", "from tfhsi import keras", "import tf_keras as keras"),
    ),
    "wrong_input": (
        PLAIN.replace("(patch_size, patch_size, bands)", "(7, 7, bands)"),
        ConfigError,
        (
            "takes inputs of shape (7, 7, 6)",
            "the run feeds (5, 5, 6)",
            "keras.Input(shape=(5, 5, 6))",
        ),
    ),
    "wrong_classes": (
        PLAIN.replace("Dense(n_classes", "Dense(4"),
        ConfigError,
        ("outputs shape (4,)", "the scene has 3 classes", "Dense(n_classes)"),
    ),
    "softmax": (
        PLAIN.replace('Dense(n_classes, name="logits")', 'Dense(n_classes, activation="softmax")'),
        UnsupportedError,
        ("ends in a softmax", "no activation"),
    ),
    "signature": (
        "def build(x):\n    pass\n",
        ModelRefError,
        ("cannot be called as fn(bands=..., n_classes=..., patch_size=...", "keyword parameters"),
    ),
    "subclassed": (
        "import tf_keras as keras\n\nclass Net(keras.Model):\n    def call(self, x):\n"
        "        return x\n\ndef build(**kw):\n    return Net(name='net')\n",
        UnsupportedError,
        ("'net' is a subclassed Net", "keras.Model(inputs, outputs)"),
    ),
}


@pytest.mark.parametrize("case", list(BAD_BUILDERS))
def test_bad_builder_gives_one_line_naming_the_problem(tmp_path: Path, case: str) -> None:
    text, error, fragments = BAD_BUILDERS[case]
    path = _write(tmp_path, "bad.py", text)
    with pytest.raises(error) as exc:
        resolve_model(f"{path}:build").build(**SIZES)
    _one_line_error(exc, *fragments)


def test_syntax_error_is_found_by_the_cheap_check(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.py", "def build(**kw)\n    pass\n")
    with pytest.raises(UserCodeError) as exc:
        check_model_ref(f"{path}:build")
    _one_line_error(exc, "SyntaxError", f"{path}:1")


@pytest.mark.parametrize(
    ("ref", "fragments"),
    [
        ("missing.py:build", ("builder file", "missing.py does not exist")),
        (
            "gone/missing.keras",
            ("model file", "missing.keras does not exist", "nor does its folder"),
        ),
        ("student2", ("unknown model 'student2'", "Did you mean", "file.py:function")),
        ("nets.py", ("names a file but no function", "nets.py:build_model")),
        ("nets.py:9lives", ("is not a function name",)),
        (
            "no_such_pkg_for_tfhsi.nets:build",
            ("no module named 'no_such_pkg_for_tfhsi'", "PYTHONPATH"),
        ),
        ("model.tflite", ("not a model tfhsi can use (.tflite)",)),
        ("", ("non-empty string",)),
    ],
)
def test_bad_reference_gives_one_line(
    ref: str, fragments: tuple[str, ...], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for call in (check_model_ref, resolve_model):
        with pytest.raises(ModelRefError) as exc:
            call(ref)
        _one_line_error(exc, *fragments)
        assert isinstance(exc.value, ValueError)  # a recipe validator reports the field


def test_missing_function_lists_close_matches(tmp_path: Path) -> None:
    path = _write(tmp_path, "nets.py", PLAIN.replace("def build(", "def build_net("))
    for call in (check_model_ref, resolve_model):
        with pytest.raises(ModelRefError) as exc:
            call(f"{path}:build_nt")
        _one_line_error(exc, "has no function 'build_nt'", "Did you mean 'build_net'?")


def test_missing_function_in_a_module_lists_close_matches(tmp_path: Path, monkeypatch) -> None:
    _write(tmp_path / "hsi_user_pkg2", "__init__.py", "")
    _write(tmp_path / "hsi_user_pkg2", "nets.py", PLAIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelRefError) as exc:
        resolve_model("hsi_user_pkg2.nets:buld")
    _one_line_error(exc, "module hsi_user_pkg2.nets has no function 'buld'", "'build'")


def test_neighbour_modules_of_two_builder_folders_do_not_clash(tmp_path: Path) -> None:
    text = PLAIN.replace(
        "import tf_keras as keras", "import tf_keras as keras\nimport blocks_shared_name"
    ).replace("Conv2D(4", "Conv2D(blocks_shared_name.FILTERS")
    filters = []
    for folder, value in (("a", 2), ("b", 9)):
        _write(tmp_path / folder, "blocks_shared_name.py", f"FILTERS = {value}\n")
        path = _write(tmp_path / folder, "nets.py", text)
        filters.append(resolve_model(f"{path}:build").build(**SIZES).get_layer("conv").filters)
    assert filters == [2, 9]
    assert "blocks_shared_name" not in sys.modules
