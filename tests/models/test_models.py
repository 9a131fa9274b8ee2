"""Registry-driven model tests: a newly registered model is covered here automatically."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from tfhsi.errors import ConfigError, UnknownNameError
from tfhsi.models import MODELS, ModelSpec, build_model, count_macs, input_shape

NAMES = MODELS.names()
N_CLASSES = 3
STANDARD_LAYERS = {
    "InputLayer",
    "Conv2D",
    "Conv3D",
    "DepthwiseConv2D",
    "BatchNormalization",
    "ReLU",
    "Activation",
    "MaxPooling2D",
    "GlobalAveragePooling2D",
    "Dense",
    "Dropout",
    "Reshape",
    "Flatten",
}


def _tiny(spec: ModelSpec) -> dict[str, int]:
    """Smallest patch the model accepts and a few bands (at least its minimum)."""
    return {"bands": max(spec.min_bands, 16), "patch_size": spec.min_patch}


def _batch(spec: ModelSpec, n: int, *, seed: int = 0) -> np.ndarray:
    size = _tiny(spec)
    shape = input_shape(spec, bands=size["bands"], patch_size=size["patch_size"])
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


@pytest.mark.parametrize("name", NAMES)
def test_model_builds_at_tiny_size_and_outputs_finite_logits(name: str) -> None:
    spec = MODELS.get(name)
    model = build_model(name, n_classes=N_CLASSES, seed=1, **_tiny(spec))
    x = _batch(spec, 2)
    y = model(x, training=False).numpy()

    assert model.name == name
    assert tuple(model.input_shape) == (None, *x.shape[1:])
    assert y.shape == (2, N_CLASSES)
    assert np.isfinite(y).all()
    last = model.layers[-1]
    assert (type(last).__name__, last.name, last.get_config()["activation"]) == (
        "Dense",
        "logits",
        "linear",
    )


@pytest.mark.parametrize("name", NAMES)
def test_model_uses_only_standard_keras_layers(name: str) -> None:
    spec = MODELS.get(name)
    model = build_model(name, n_classes=N_CLASSES, **_tiny(spec))
    kinds = {type(layer).__name__ for layer in model.layers}
    modules = {type(layer).__module__.split(".")[0] for layer in model.layers}
    assert kinds <= STANDARD_LAYERS
    assert modules == {"tf_keras"}


@pytest.mark.parametrize("name", NAMES)
def test_model_builds_at_its_minimum_sizes_and_rejects_smaller(name: str) -> None:
    spec = MODELS.get(name)
    patch = spec.min_patch if spec.layout != "1d" else None
    model = build_model(name, bands=spec.min_bands, n_classes=N_CLASSES, patch_size=patch)
    assert model.output_shape == (None, N_CLASSES)
    if spec.min_bands > 1:
        with pytest.raises(ConfigError, match=rf"{name}.*at least {spec.min_bands} spectral bands"):
            build_model(name, bands=spec.min_bands - 1, n_classes=N_CLASSES, patch_size=patch)
    if spec.layout != "1d" and spec.min_patch > 1:
        with pytest.raises(
            ConfigError, match=rf"{name}.*at least {spec.min_patch}x{spec.min_patch}"
        ):
            build_model(
                name, bands=spec.min_bands, n_classes=N_CLASSES, patch_size=spec.min_patch - 2
            )


@pytest.mark.parametrize("name", NAMES)
def test_model_trains_one_step_with_finite_loss_and_changed_weights(name: str) -> None:
    from tfhsi._keras import keras

    spec = MODELS.get(name)
    model = build_model(name, n_classes=N_CLASSES, seed=2, **_tiny(spec))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = _batch(spec, 4)
    y = np.arange(4, dtype=np.int32) % N_CLASSES
    before = [w.numpy().copy() for w in model.trainable_weights]
    loss = model.train_on_batch(x, y)
    after = [w.numpy() for w in model.trainable_weights]

    assert math.isfinite(float(loss))
    unchanged = [
        w.name
        for w, b, a in zip(model.trainable_weights, before, after, strict=True)
        if np.array_equal(b, a)
    ]
    assert unchanged == []


@pytest.mark.parametrize("name", NAMES)
def test_model_converts_to_fp32_tflite_matching_keras(name: str) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from tfhsi._keras import tf

    spec = MODELS.get(name)
    model = build_model(name, n_classes=N_CLASSES, seed=3, **_tiny(spec))
    x = _batch(spec, 1, seed=4)
    expected = model(x, training=False).numpy()

    fn = tf.function(lambda t: model(t, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec(x.shape, tf.float32))
    flatbuffer = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model).convert()
    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(out["index"])

    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_seeded_builds_repeat_weights_and_layer_names(name: str) -> None:
    spec = MODELS.get(name)
    a, b, c = (build_model(name, n_classes=N_CLASSES, seed=s, **_tiny(spec)) for s in (7, 7, 8))

    assert [layer.name for layer in a.layers] == [layer.name for layer in b.layers]
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights(), strict=True))
    assert not all(
        np.array_equal(u, v) for u, v in zip(a.get_weights(), c.get_weights(), strict=True)
    )


@pytest.mark.parametrize("name", NAMES)
def test_width_multiplier_shrinks_and_grows_the_model(name: str) -> None:
    spec = MODELS.get(name)
    counts = [
        build_model(name, n_classes=N_CLASSES, width=w, **_tiny(spec)).count_params()
        for w in (0.5, 1.0, 2.0)
    ]
    assert counts[0] < counts[1] < counts[2]


def test_hybridsn_matches_the_papers_parameter_count() -> None:
    # Roy et al. (2019), Table I: 5,122,176 trainable parameters for Indian Pines.
    model = build_model("hybridsn", bands=30, n_classes=16)
    assert model.count_params() == 5_122_176
    assert model.get_layer("to_2d").output_shape == (None, 19, 19, 576)


def test_students_fit_a_microcontroller_budget_at_default_size() -> None:
    for name in ("student3d", "student2d"):
        spec = MODELS.get(name)
        model = build_model(name, bands=spec.default_bands or 200, n_classes=16)
        assert model.count_params() < 50_000, name
        assert count_macs(model) < 10_000_000, name


def test_count_macs_counts_a_dense_and_a_conv_layer() -> None:
    from tfhsi._keras import keras

    inputs = keras.Input((5, 5, 2))
    x = keras.layers.Conv2D(4, 3)(inputs)  # 3x3 outputs x (3*3*2*4) weights = 648
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(x))  # 36 x 3 = 108
    assert count_macs(keras.Model(inputs, outputs)) == 648 + 108


@pytest.mark.parametrize(
    ("layout", "expected"),
    [("3d", (9, 9, 20, 1)), ("2d", (9, 9, 20)), ("1d", (20, 1))],
)
def test_input_shape_follows_the_layout(layout: str, expected: tuple[int, ...]) -> None:
    spec = next(MODELS.get(n) for n in NAMES if MODELS.get(n).layout == layout)
    assert input_shape(spec, bands=20, patch_size=9 if layout != "1d" else None) == expected
    assert input_shape(spec.name, bands=20, patch_size=9 if layout != "1d" else None) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 0}, r"'student3d'.*width must be a finite number > 0"),
        ({"width": -0.5}, r"width must be a finite number > 0"),
        ({"width": float("nan")}, r"width must be a finite number > 0"),
        ({"patch_size": 8}, r"'student3d'.*patch_size must be a positive odd integer"),
        ({"patch_size": 3}, r"'student3d' needs a patch of at least 5x5"),
        ({"bands": 10}, r"'student3d' needs at least 23 spectral bands.*got bands=10"),
        ({"bands": 0}, r"bands must be a positive integer"),
        ({"n_classes": 1}, r"n_classes must be an integer >= 2"),
        ({"seed": "x"}, r"seed must be an integer or None"),
    ],
)
def test_bad_arguments_raise_config_error_naming_model_and_fix(
    kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"bands": 30, "n_classes": 4, **kwargs}
    with pytest.raises(ConfigError, match=message):
        build_model("student3d", **args)  # type: ignore[arg-type]


def test_unknown_model_name_suggests_the_close_match() -> None:
    with pytest.raises(UnknownNameError, match=r"Did you mean 'hybridsn'"):
        build_model("hybridnet", bands=30, n_classes=4)


def test_registering_a_taken_name_raises() -> None:
    from tfhsi.models import register_model

    with pytest.raises(ValueError, match="already registered"):
        register_model(
            "hybridsn",
            kind="3d",
            layout="3d",
            default_patch=25,
            default_bands=30,
            paper="-",
            description="-",
            role="teacher",
        )(lambda **_: None)


def test_one_d_model_ignores_patch_size() -> None:
    name = next(n for n in NAMES if MODELS.get(n).layout == "1d")
    assert build_model(name, bands=20, n_classes=3, patch_size=9).input_shape == (None, 20, 1)


# --- CLI ------------------------------------------------------------------------------


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prints the CLI table at 200 columns so no cell is truncated."""
    import tfhsi.cli.models as models_cli

    monkeypatch.setattr(models_cli, "console", Console(width=200))


def test_cli_list_shows_every_model_with_its_parameter_count(wide_console: None) -> None:
    from tfhsi.cli.models import app

    result = CliRunner().invoke(app, ["list", "--bands", "200", "--classes", "16"])

    assert result.exit_code == 0, result.output
    for name in NAMES:
        spec = MODELS.get(name)
        count = build_model(name, bands=spec.default_bands or 200, n_classes=16).count_params()
        line = next(row for row in result.output.splitlines() if f" {name} " in row)
        assert f" {count:,} " in line, line
        assert spec.paper in line


def test_cli_list_without_params_lists_names_and_papers(wide_console: None) -> None:
    from tfhsi.cli.models import app

    result = CliRunner().invoke(app, ["list", "--no-params"])

    assert result.exit_code == 0, result.output
    assert "params" not in result.output
    assert all(name in result.output for name in NAMES)


def test_importing_models_and_their_cli_does_not_import_tensorflow() -> None:
    code = (
        "import sys, tfhsi.models, tfhsi.cli.models; "
        "tfhsi.models.input_shape('hybridsn', bands=30, patch_size=None); "
        "print(sorted(m for m in ('tensorflow', 'tf_keras') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_only_models_the_registry_marks_train_with_xla_and_never_when_wrapped_by_tf_mot() -> None:
    import tensorflow_model_optimization as tfmot

    from tfhsi._keras import keras
    from tfhsi.models import trains_with_xla

    assert [n for n in MODELS if MODELS.get(n).jit_compile] == ["student3d"]
    student3d = build_model("student3d", bands=24, n_classes=3, patch_size=5, seed=0)
    assert trains_with_xla(student3d) and trains_with_xla(student3d, epochs=10)
    assert not trains_with_xla(student3d, epochs=9)  # compiling would not pay back
    assert not trains_with_xla(build_model("student2d", bands=24, n_classes=3, patch_size=5))
    pruned = tfmot.sparsity.keras.prune_low_magnitude(student3d)
    assert pruned.name == "student3d" and not trains_with_xla(pruned)
    inputs = keras.Input((4,))
    users = keras.Model(inputs, keras.layers.Dense(2)(inputs), name="my_net")
    assert not trains_with_xla(users)
