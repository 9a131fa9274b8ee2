"""Conv3D lowering: equal outputs in float, rank <= 4 TFLite graphs, int8 models that run on TFLM."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lowering_samples import randomize_batch_norms

from tfhsi._keras import keras, tf, tfmot
from tfhsi.compress._lower_geometry import AxisPlan, dense_kernel
from tfhsi.compress.lower import (
    LoweringMismatchError,
    check_equivalence,
    lower_conv3d,
    lowered_input,
)
from tfhsi.data.io import load_scene
from tfhsi.data.prepared import prepare
from tfhsi.data.splits import make_split
from tfhsi.errors import ConfigError, UnsupportedError
from tfhsi.export.tflite import convert
from tfhsi.models import build_model

layers = keras.layers

ATOL = 1e-4
#: Builtin ops of TFLite Micro's MicroMutableOpResolver that a lowered model may use.
TFLM_OPS = {
    "ADD",
    "AVERAGE_POOL_2D",
    "CONCATENATION",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "DEQUANTIZE",
    "FULLY_CONNECTED",
    "MAX_POOL_2D",
    "MAXIMUM",
    "MEAN",
    "MUL",
    "PAD",
    "PADV2",
    "QUANTIZE",
    "REDUCE_MAX",
    "RELU",
    "RELU6",
    "RESHAPE",
    "STRIDED_SLICE",
    "SUB",
}
#: Tiny zoo models: (name, build kwargs).
ZOO = {
    "student3d": {"bands": 30, "patch_size": 7},
    "hamida3d": {"bands": 20, "patch_size": 5},
    "hybridsn": {"bands": 16, "patch_size": 9, "width": 0.25},
}


def _zoo(name: str, seed: int = 1) -> keras.Model:
    model = build_model(name, n_classes=5, seed=seed, **ZOO[name])
    randomize_batch_norms(model, np.random.default_rng(seed))
    return model


def _max_rank(model: keras.Model) -> int:
    """Largest rank of any tensor in the Keras graph."""
    return max(
        len(t.shape)
        for layer in model.layers
        for node in layer._inbound_nodes
        for t in tf.nest.flatten(node.outputs)
    )


def _patches(model: keras.Model, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *model.input_shape[1:])).astype("float32")


# ---------------------------------------------------------------- property test: Conv3D


@dataclass(frozen=True)
class ConvCase:
    size: tuple[int, int, int]
    kernel: tuple[int, int, int]
    strides: tuple[int, int, int]
    dilation: tuple[int, int, int]
    padding: str
    c_in: int
    c_out: int
    use_bias: bool
    activation: str | None
    batch_norm: bool


@st.composite
def conv_cases(draw: st.DrawFn) -> ConvCase:
    size = (draw(st.integers(5, 9)), draw(st.integers(5, 9)), draw(st.integers(6, 20)))
    padding = draw(st.sampled_from(["same", "valid"]))
    dilated = draw(st.booleans()) and draw(st.booleans())  # ~1 in 4
    kernel, strides, dilation = [], [], []
    for n in size:
        rate = draw(st.integers(1, 2)) if dilated else 1
        kernel.append(draw(st.integers(1, min(5, (n - 1) // rate + 1))))
        strides.append(1 if dilated else draw(st.integers(1, 3)))
        dilation.append(rate)
    return ConvCase(
        size=size,
        kernel=tuple(kernel),  # type: ignore[arg-type]
        strides=tuple(strides),  # type: ignore[arg-type]
        dilation=tuple(dilation),  # type: ignore[arg-type]
        padding=padding,
        c_in=draw(st.integers(1, 4)),
        c_out=draw(st.integers(1, 6)),
        use_bias=draw(st.booleans()),
        activation=draw(st.sampled_from(["relu", None])),
        batch_norm=draw(st.booleans()),
    )


def _conv_model(case: ConvCase, seed: int) -> keras.Model:
    rng = np.random.default_rng(seed)
    inputs = keras.Input((*case.size, case.c_in))
    x = layers.Conv3D(
        case.c_out,
        case.kernel,
        strides=case.strides,
        dilation_rate=case.dilation,
        padding=case.padding,
        use_bias=case.use_bias,
        activation=case.activation,
        name="conv",
    )(inputs)
    if case.batch_norm:
        x = layers.BatchNormalization(name="bn")(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(3, name="logits")(x)
    model = keras.Model(inputs, outputs)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    randomize_batch_norms(model, rng)
    return model


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_cases(), seed=st.integers(0, 2**16))
def test_lowered_conv3d_equals_the_original_for_random_configurations(
    case: ConvCase, seed: int
) -> None:
    # TensorFlow's own Conv3D (the reference) is wrong with "same" padding when a stride
    # exceeds the (dilated) kernel, like its 3-D pooling (e.g. a 1×1×1 kernel with depth
    # stride 3 on 6 bands: 3.6 max error against x[..., ::3]); those cases prove nothing.
    spans = [d * (k - 1) + 1 for k, d in zip(case.kernel, case.dilation, strict=True)]
    assume(case.padding == "valid" or all(s <= k for s, k in zip(case.strides, spans, strict=True)))
    model = _conv_model(case, seed)
    x = np.random.default_rng(seed).normal(size=(3, *case.size, case.c_in)).astype("float32")
    # "lean" needs spatial stride 1 and several spatial taps; elsewhere it is "sliced".
    lean_ok = case.strides[:2] == (1, 1) and case.kernel[0] * case.kernel[1] > 1
    for strategy in ("dense", "sliced", "lean"):
        lowered, report = lower_conv3d(model, strategy=strategy)
        assert _max_rank(lowered) <= 4
        assert not any(isinstance(layer, layers.Conv3D) for layer in lowered.layers)
        (conv,) = [entry for entry in report.layers if entry.kind == "Conv3D"]
        assert conv.strategy == (strategy if strategy != "lean" or lean_ok else "sliced")
        assert conv.folded_batch_norm == (
            "bn" if case.batch_norm and case.activation is None else None
        )
        assert check_equivalence(model, lowered, x, atol=ATOL) <= ATOL


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pool=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4)),
    strides=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    padding=st.sampled_from(["same", "valid"]),
    average=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_lowered_pooling3d_equals_the_original_for_random_configurations(
    pool: tuple[int, int, int],
    strides: tuple[int, int, int],
    padding: str,
    average: bool,
    seed: int,
) -> None:
    # TensorFlow's own 3-D pooling (the reference here) is wrong with "same" padding when a
    # stride exceeds its pool size (e.g. pool 1, stride 3 skips the wrong rows); the lowered
    # 2-D pools agree with a separable 2-D reference there, so those cases prove nothing.
    assume(padding == "valid" or all(s <= p for s, p in zip(strides, pool, strict=True)))
    cls = layers.AveragePooling3D if average else layers.MaxPooling3D
    inputs = keras.Input((6, 7, 11, 2))
    x = cls(pool, strides=strides, padding=padding, name="pool")(inputs)
    model = keras.Model(inputs, layers.Dense(3)(layers.Flatten()(x)))
    lowered, report = lower_conv3d(model)
    assert _max_rank(lowered) <= 4
    assert [entry.kind for entry in report.layers] == [cls.__name__]
    x5 = np.random.default_rng(seed).normal(size=(3, 6, 7, 11, 2)).astype("float32")
    assert check_equivalence(model, lowered, x5, atol=ATOL) <= ATOL


def test_dense_kernel_places_each_spectral_tap_in_its_band() -> None:
    kernel = np.arange(1, 4, dtype="float32").reshape(1, 1, 3, 1, 1)  # taps 1, 2, 3
    depth = AxisPlan(size=5, kernel=3, stride=2, padding="same")  # out 3, pad 1 before
    banded = dense_kernel(kernel, depth)[0, 0]  # (d_in, d_out)
    # d_out 0 reads d_in -1..1 (tap 1 in the padding), d_out 1 reads 1..3, d_out 2 reads 3..5
    expected = np.array([[2, 0, 0], [3, 1, 0], [0, 2, 0], [0, 3, 1], [0, 0, 2]], dtype="float32")
    np.testing.assert_array_equal(banded, expected)


# ---------------------------------------------------------------- other 3-D layers


def test_lowered_graph_with_pooling_padding_merges_and_standalone_bn_equals_the_original() -> None:
    rng = np.random.default_rng(3)
    inputs = keras.Input((8, 8, 12), name="patch2d")
    x = layers.Reshape((8, 8, 12, 1), name="to_3d")(inputs)
    x = layers.ZeroPadding3D(((1, 0), (0, 1), (2, 1)), name="pad")(x)
    a = layers.Conv3D(3, (3, 3, 3), padding="same", activation="relu", name="a")(x)
    b = layers.Conv3D(3, (1, 1, 5), padding="same", name="b")(x)
    x = layers.Add(name="add")([a, b])
    x = layers.BatchNormalization(name="bn")(x)  # after a merge: not foldable, tiled
    x = layers.LeakyReLU(0.1, name="leaky")(x)
    x = layers.MaxPooling3D((2, 2, 3), strides=(2, 2, 2), padding="same", name="maxpool")(x)
    x = layers.Cropping3D(((0, 1), (1, 0), (1, 1)), name="crop")(x)
    x = layers.Concatenate(axis=3, name="cat")([x, layers.AveragePooling3D((1, 1, 2))(x)])
    g = layers.GlobalAveragePooling3D(name="gap")(x)
    f = layers.Dense(4, name="fc")(layers.Flatten()(x))
    outputs = layers.Dense(3, name="logits")(layers.Concatenate()([g, f]))
    model = keras.Model(inputs, outputs)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    randomize_batch_norms(model, rng)

    lowered, report = lower_conv3d(model, check=rng.normal(size=(4, 8, 8, 12)).astype("float32"))

    assert report.max_abs_diff is not None and report.max_abs_diff <= ATOL
    assert _max_rank(lowered) <= 4
    assert lowered.input_shape == (None, 8, 8, 12)  # a 2-D input stays 2-D
    x2 = rng.normal(size=(2, 8, 8, 12)).astype("float32")
    np.testing.assert_allclose(lowered(x2).numpy(), model(x2).numpy(), atol=ATOL)
    kinds = [entry.kind for entry in report.layers]
    assert kinds.count("Conv3D") == 2 and "BatchNormalization" in kinds and "MaxPooling3D" in kinds


def test_lowering_leaves_the_original_model_unchanged() -> None:
    model = _zoo("student3d")
    before = [w.copy() for w in model.get_weights()]
    lowered, _ = lower_conv3d(model)
    lowered.set_weights([w * 0 for w in lowered.get_weights()])
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


# ---------------------------------------------------------------- zoo models


@pytest.mark.parametrize("strategy", ["auto", "dense", "lean", "sliced"])
@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_lowers_to_equal_outputs(name: str, strategy: str) -> None:
    model = _zoo(name)
    lowered, report = lower_conv3d(model, strategy=strategy, check=_patches(model, 8))
    assert report.max_abs_diff is not None and report.max_abs_diff <= ATOL
    assert report.lowered_input_layout == "2d"
    assert report.as_dict()["layers"][0]["name"] == report.layers[0].name
    assert lowered.input_shape == model.input_shape[:-1]  # (k, k, B, 1) -> (k, k, B)
    assert _max_rank(lowered) <= 4
    n_conv3d = sum(isinstance(layer, layers.Conv3D) for layer in model.layers)
    assert report.conv2d_count == n_conv3d
    if strategy == "sliced":  # sliced keeps exactly the Conv3D weights (BN folded in)
        assert all(e.params_after <= e.params_before for e in report.layers)
        assert all(e.macs_after == e.macs_before for e in report.layers)


def test_auto_picks_lean_for_a_200_band_student_and_dense_for_a_full_depth_kernel() -> None:
    student = build_model("student3d", bands=200, n_classes=16, patch_size=7, seed=0)
    _, report = lower_conv3d(student)
    assert [e.strategy for e in report.layers] == ["lean"] * 3
    conv1 = report.layers[0]
    # kernel + the folded BN as bias + the 3 x 3 one-hot column taps
    assert conv1.params_after == 3 * 3 * 7 * 8 + 8 + 3 * 3
    # the one-hot taps and the few columns that straddle two pixels cost < 15 % more MACs
    assert all(e.macs_before <= e.macs_after <= 1.15 * e.macs_before for e in report.layers)

    inputs = keras.Input((5, 5, 9, 1))
    x = layers.Conv3D(4, (3, 3, 9), name="full_depth")(inputs)  # D_out = 1: no zero blocks
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(x)))
    _, report = lower_conv3d(model)
    assert [e.strategy for e in report.layers] == ["dense"]


# ---------------------------------------------------------------- TFLite / TFLite Micro


def _tflite_graph(content: bytes) -> tuple[Counter[str], list[dict], Interpreter]:
    interpreter = Interpreter(
        model_content=content, experimental_op_resolver_type=OpResolverType.BUILTIN_REF
    )
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()
    return Counter(op["op_name"] for op in ops), ops, interpreter


@pytest.mark.parametrize("name", sorted(ZOO))
def test_lowered_zoo_model_converts_to_tflm_ops_of_rank_at_most_4(name: str) -> None:
    model = _zoo(name)
    lowered, _ = lower_conv3d(model)
    content = convert(lowered, "fp32")

    names, ops, interpreter = _tflite_graph(content)
    assert set(names) <= TFLM_OPS, set(names) - TFLM_OPS
    assert max(len(t["shape"]) for t in interpreter.get_tensor_details()) <= 4
    assert all(len(op["inputs"]) <= 10 for op in ops if op["op_name"] == "CONCATENATION")

    x5 = _patches(model, 2)
    expected = model(x5).numpy()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    for i in range(len(x5)):
        interpreter.set_tensor(inp["index"], lowered_input(x5[i : i + 1]))
        interpreter.invoke()
        np.testing.assert_allclose(
            interpreter.get_tensor(out["index"]), expected[i : i + 1], atol=ATOL
        )


def test_wide_spatial_kernel_nests_concatenations_of_at_most_10_inputs() -> None:
    inputs = keras.Input((6, 6, 8, 2))
    x = layers.Conv3D(3, (5, 5, 3), padding="same", name="wide")(inputs)  # 25 taps
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(x)))
    lowered, _ = lower_conv3d(model, strategy="sliced", check=_patches(model, 3))

    _, ops, interpreter = _tflite_graph(convert(lowered, "fp32"))
    widths = sorted(len(op["inputs"]) for op in ops if op["op_name"] == "CONCATENATION")
    assert widths == [3, 5, 10, 10]
    x5 = _patches(model, 1, seed=5)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], lowered_input(x5))
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, model(x5).numpy(), atol=ATOL)


def test_int8_lowered_student_is_integer_end_to_end_and_runs_on_tflite_micro() -> None:
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    model = _zoo("student3d")
    lowered, _ = lower_conv3d(model)
    calibration = lowered_input(_patches(model, 64, seed=1))

    def representative():  # type: ignore[no-untyped-def]
        for i in range(len(calibration)):
            yield [calibration[i : i + 1]]

    content = convert(lowered, "int8", representative=representative)

    names, ops, interpreter = _tflite_graph(content)
    assert set(names) <= TFLM_OPS - {"QUANTIZE", "DEQUANTIZE"}, names
    assert "CONV_3D" not in names and names["CONV_2D"] == 3
    dtypes = {t["dtype"].__name__ for t in interpreter.get_tensor_details()}
    assert dtypes <= {"int8", "int32"}, dtypes  # int32: biases and shape operands
    for op in ops:
        if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED"):
            details = [interpreter._get_tensor_details(i, 0) for i in op["inputs"][:2]]
            assert all(d["dtype"].__name__ == "int8" for d in details)

    micro = runtime.Interpreter.from_bytes(content, arena_size=1 << 20)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = inp["quantization"]
    x = lowered_input(_patches(model, 4, seed=2))
    quantized = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
    for i in range(len(quantized)):
        interpreter.set_tensor(inp["index"], quantized[i : i + 1])
        interpreter.invoke()
        expected = interpreter.get_tensor(out["index"]).astype(np.int32)
        micro.set_input(quantized[i : i + 1], 0)
        micro.invoke()
        got = micro.get_output(0).astype(np.int32)
        assert np.max(np.abs(got - expected)) <= 1


def test_lowered_model_saves_and_loads_without_custom_objects(tmp_path: Path) -> None:
    model = _zoo("hamida3d")
    lowered, _ = lower_conv3d(model)
    lowered.save(tmp_path / "lowered.keras")
    loaded = keras.models.load_model(tmp_path / "lowered.keras")
    x = lowered_input(_patches(model, 2))
    np.testing.assert_allclose(loaded(x).numpy(), model(_patches(model, 2)).numpy(), atol=ATOL)


def test_lowered_model_can_be_wrapped_for_quantization_aware_training() -> None:
    model = _zoo("student3d")
    lowered, _ = lower_conv3d(model)
    qat = tfmot.quantization.keras.quantize_model(lowered)
    assert qat(lowered_input(_patches(model, 2))).shape == (2, 5)


@pytest.mark.real_data
def test_200_band_zoo_models_lower_exactly_on_real_indian_pines_patches(
    real_data_dir: Path,
) -> None:
    scene = load_scene("indian_pines", data_dir=real_data_dir, verify=False)
    prepared = prepare(scene, make_split(scene.labels, "random:0.1", seed=0, patch_size=7))
    for name, patch in (("student3d", 7), ("hamida3d", 5)):
        samples = prepared.representative(patch_size=patch, layout="3d", num_samples=32)
        x5 = np.concatenate([x for (x,) in samples()])
        model = build_model(
            name, bands=scene.cube.shape[-1], n_classes=16, patch_size=patch, seed=0
        )
        randomize_batch_norms(model, np.random.default_rng(0))
        _, report = lower_conv3d(model, check=x5)
        assert report.max_abs_diff is not None and report.max_abs_diff <= ATOL, name


# ---------------------------------------------------------------- errors


def _single(layer: keras.layers.Layer, shape: tuple[int, ...] = (6, 6, 8, 2)) -> keras.Model:
    inputs = keras.Input(shape)
    return keras.Model(inputs, layers.Flatten()(layer(inputs)))


@pytest.mark.parametrize(
    ("layer", "reason"),
    [
        (layers.Conv3DTranspose(2, 3, name="up"), "Conv3DTranspose layer 'up'"),
        (layers.Conv3D(2, 3, groups=2, name="grouped"), "groups=2"),
        (
            layers.Conv3D(2, 3, padding="same", data_format="channels_first", name="cf"),
            "'cf' uses data_format='channels_first'",
        ),
        (layers.Conv3D(2, 3, activation="softmax", name="sm3"), "activation='softmax'"),
        (layers.UpSampling3D(name="ups"), "'ups' (UpSampling3D) receives a 5-D tensor"),
        (layers.Activation("softmax", name="sm"), "'sm' applies 'softmax'"),
        (layers.BatchNormalization(axis=1, name="bn_h"), "'bn_h' normalises axis"),
    ],
)
def test_unsupported_layer_raises_an_error_naming_it(
    layer: keras.layers.Layer, reason: str
) -> None:
    model = _single(layer)
    with pytest.raises(UnsupportedError, match=re.escape(reason)):
        lower_conv3d(model)


def test_concatenating_channels_of_5d_tensors_is_rejected() -> None:
    inputs = keras.Input((5, 5, 6, 1))
    a = layers.Conv3D(2, 3, padding="same")(inputs)
    x = layers.Concatenate(axis=-1, name="chan_cat")([a, a])
    model = keras.Model(inputs, layers.Flatten()(x))
    with pytest.raises(UnsupportedError, match="'chan_cat' joins 5-D tensors along axis -1"):
        lower_conv3d(model)


def test_shared_3d_layer_is_rejected_with_its_name() -> None:
    inputs = keras.Input((5, 5, 6, 2))
    shared = layers.Conv3D(2, 3, padding="same", name="twice")
    x = shared(shared(inputs))
    model = keras.Model(inputs, layers.Flatten()(x))
    with pytest.raises(UnsupportedError, match=r"'twice' .* is called more than once"):
        lower_conv3d(model)


def test_unknown_strategy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="valid: auto, dense, lean, sliced"):
        lower_conv3d(_zoo("student3d"), strategy="fast")


def test_check_equivalence_raises_when_the_models_differ() -> None:
    model = _zoo("hamida3d")
    lowered, _ = lower_conv3d(model)
    lowered.get_layer("logits").set_weights(
        [w + 1.0 for w in lowered.get_layer("logits").get_weights()]
    )
    with pytest.raises(LoweringMismatchError, match="differs from the original"):
        check_equivalence(model, lowered, _patches(model, 2))


class _Gain(layers.Layer):
    """A user's layer: multiplies by a learned gain per channel."""

    def build(self, input_shape) -> None:
        self.gain = self.add_weight("gain", (int(input_shape[-1]),), initializer="ones")

    def call(self, x):
        return x * self.gain


class _ShiftedConv3D(layers.Conv3D):
    """A user's Conv3D that adds one to its output: not what Conv3D computes."""

    def call(self, x):
        return super().call(x) + 1.0


@pytest.mark.parametrize(
    ("layer", "reason"),
    [
        (_Gain(name="gain"), "'gain' (_Gain) receives a 5-D tensor and has no rank-4 equivalent"),
        (
            _ShiftedConv3D(2, 3, name="shifted"),
            "'shifted' (_ShiftedConv3D) receives a 5-D tensor and overrides Conv3D.call()",
        ),
    ],
)
def test_custom_layer_on_a_5d_tensor_is_named(layer: keras.layers.Layer, reason: str) -> None:
    with pytest.raises(UnsupportedError, match=re.escape(reason)):
        lower_conv3d(_single(layer))


def test_custom_layer_after_the_3d_part_is_copied_with_its_weights() -> None:
    inputs = keras.Input((5, 5, 6, 1))
    x = layers.Conv3D(2, 3, name="conv")(inputs)
    x = _Gain(name="gain")(layers.Flatten()(x))
    model = keras.Model(inputs, layers.Dense(3, name="logits")(x))
    model.get_layer("gain").set_weights([np.linspace(0.5, 2.0, 72, dtype=np.float32)])
    x5 = np.random.default_rng(0).random((4, 5, 5, 6, 1), dtype=np.float32)

    _, report = lower_conv3d(model, check=x5)
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-5
