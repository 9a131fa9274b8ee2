"""int4 weights, layers kept int8, auto-mixed and the per-layer report (ai-edge-quantizer)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from export_samples import CLASSES, random_representative

from tfhsi.errors import ConfigError
from tfhsi.export import audit

BANDS, PATCH = 24, 5


@pytest.fixture(scope="module")
def prepared():
    from tfhsi.data.datasets import open_dataset
    from tfhsi.data.prepared import prepare
    from tfhsi.data.splits import make_split

    scene = open_dataset(f"synthetic:16x16x{BANDS}x{CLASSES}")
    split = make_split(scene.labels, "random:0.5", seed=0, patch_size=PATCH, val_fraction=0.3)
    return prepare(scene, split)


@pytest.fixture(scope="module")
def hamida():
    """A tiny seeded Conv3D model (hamida3d): lowered for every integer preset."""
    from tfhsi.models import build_model

    return build_model("hamida3d", bands=BANDS, n_classes=CLASSES, patch_size=PATCH, seed=0)


@pytest.fixture(scope="module")
def exported(hamida, prepared, tmp_path_factory):
    from tfhsi.deployment import export_tflite

    folder = tmp_path_factory.mktemp("aeq")
    return {
        preset: export_tflite(hamida, preset, folder / f"{preset}.tflite", prepared=prepared)
        for preset in ("int8", "w4a8")
    }


def test_w4a8_of_a_lowered_3d_model_has_int4_conv_and_dense_weights_under_0_6_of_int8_bytes(
    exported,
) -> None:
    from tfhsi.export.aeq import weight_bytes

    w4, i8 = exported["w4a8"], exported["int8"]
    report = audit(w4.path)
    names = {op.label: op.name for op in report.ops}
    compute = {
        lab: d for lab, d in report.weight_dtypes.items() if names[lab] != "DEPTHWISE_CONV_2D"
    }
    assert w4.lowered and report.is_full_int8 and "CONV_3D" not in report.op_counts
    assert set(compute.values()) == {"int4"} and len(compute) >= 5  # every conv and dense
    # the lowering's tap-gathering DEPTHWISE_CONV_2D has no int4 kernel: its 0/1 taps stay int8
    expected = "w4a8" if len(compute) == len(report.weight_dtypes) else "w4/8a8"
    assert w4.precision == report.precision == expected
    assert weight_bytes(w4.data) < 0.6 * weight_bytes(i8.data)


def test_tflm_verdict_names_the_int4_fully_connected_and_edgetpu_refuses_int4(exported) -> None:
    report = audit(exported["w4a8"].data)
    tflm = report.verdicts["tflm"]
    fc = [op.label for op in report.ops if op.name == "FULLY_CONNECTED"]
    assert not tflm.ok and tflm.failing_ops == fc
    assert any("int4 weights" in r for r in tflm.reasons)
    assert not report.verdicts["edgetpu"].ok


def test_keep_int8_keeps_the_named_layer_int8_and_tflm_can_then_run_it(
    hamida, prepared, tmp_path: Path
) -> None:
    from tfhsi.deployment import export_tflite

    kept = export_tflite(
        hamida, "w4a8", tmp_path / "w4a8.tflite", prepared=prepared, keep_int8=["logits"]
    )
    report = audit(kept.path, tflm_smoke=True)
    by_name = {op.label: op.name for op in report.ops}
    dtypes = {by_name[label]: d for label, d in report.weight_dtypes.items()}
    assert dtypes["FULLY_CONNECTED"] == "int8" and dtypes["CONV_2D"] == "int4"  # one per name
    assert kept.precision == "w4/8a8" and report.verdicts["tflm"].ok


@pytest.mark.parametrize("pattern", ["conv[", "no_such_layer"])
def test_a_bad_keep_int8_pattern_is_a_one_line_config_error(
    hamida, prepared, tmp_path: Path, pattern: str
) -> None:
    from tfhsi.deployment import export_tflite

    with pytest.raises(ConfigError) as info:
        export_tflite(hamida, "w4a8", tmp_path / "x.tflite", prepared=prepared, keep_int8=[pattern])
    message = str(info.value)
    assert "keep_int8" in message and pattern in message and "\n" not in message
    assert "conv1" in message  # the layers one can name
    assert not list(tmp_path.iterdir())


def test_keep_int8_on_a_converter_preset_is_refused() -> None:
    from tfhsi.export import convert

    with pytest.raises(ConfigError, match="keep_int8 applies to the ai-edge-quantizer presets"):
        convert(object(), "int8", representative=lambda: iter(()), keep_int8=["x"])  # type: ignore[arg-type]


def _planted(quantizer, flips: dict[str, slice], *, pixels: int = 2000):
    """A Validation of ``pixels`` pixels, all right for the int8 file; each int4 layer named
    in ``flips`` turns its slice of pixels to a wrong class, and back to the right one when
    another layer's slice overlaps it (flips that cancel in OA)."""
    from tfhsi.export.aeq import Validation

    names = {layer.op: layer.name for layer in quantizer.layers}
    labels = np.zeros(pixels, np.int64)

    def predict(data: bytes) -> np.ndarray:
        int4 = {names[op] for op, d in audit(data).weight_dtypes.items() if d == "int4"}
        predicted = labels.copy()
        for name in sorted(int4 & set(flips)):
            predicted[flips[name]] = np.where(predicted[flips[name]] == 0, 1, 0)
        return predicted

    return Validation(predict=predict, labels=labels)


def test_auto_mixed_keeps_the_planted_sensitive_layer_and_meets_its_rule(hamida) -> None:
    """conv2 at int4 changes 3 % of the predictions and every other layer 0.05 %: greedy
    keeps conv2 alone (the other six change 0.3 %, within 0.5 %), and its file says so."""
    from tfhsi.compress.lower import lower_conv3d
    from tfhsi.export import convert
    from tfhsi.export.aeq import AeqQuantizer, auto_mixed

    lowered, _ = lower_conv3d(hamida)
    quantizer = AeqQuantizer(convert(lowered, "fp32"), random_representative((PATCH, PATCH, BANDS)))
    others = [layer.name for layer in quantizer.layers if layer.name != "conv2"]
    flips = {"conv2": slice(0, 60)} | {n: slice(100 + i, 101 + i) for i, n in enumerate(others)}
    search = auto_mixed(quantizer, _planted(quantizer, flips))
    assert search.keep == ["conv2"]
    assert search.changed_pp <= 0.5 and (search.reference_oa - search.oa) * 100 <= 0.5
    assert next(iter(search.sensitivity)) == "conv2"
    assert [t[0] for t in search.trials] == [[], ["conv2"]]  # the empty set failed first
    assert audit(search.data).precision == "w4/8a8"
    from tfhsi.export.aeq import layers_by_weight_bits

    by_bits = layers_by_weight_bits(search.data)  # read back from the file
    assert "conv2" in by_bits["int8"] and set(others) - set(by_bits["int8"]) <= set(by_bits["int4"])


def test_auto_mixed_does_not_let_flips_that_cancel_in_oa_pass(hamida) -> None:
    """conv1 and conv2 at int4 each change 1 % of the predictions; together OA is unchanged
    (conv2 flips conv1's wrong pixels back and 1 % of right ones) but 1 % still differ, so
    the search must keep one of them."""
    from tfhsi.compress.lower import lower_conv3d
    from tfhsi.export import convert
    from tfhsi.export.aeq import AeqQuantizer, auto_mixed

    lowered, _ = lower_conv3d(hamida)
    quantizer = AeqQuantizer(convert(lowered, "fp32"), random_representative((PATCH, PATCH, BANDS)))
    search = auto_mixed(
        quantizer, _planted(quantizer, {"conv1": slice(0, 20), "conv2": slice(0, 40)})
    )
    assert search.trials[0][1] < search.reference_oa or search.trials[0][2] > 0.5
    assert {"conv1", "conv2"} & set(search.keep) and search.changed_pp <= 0.5


def test_auto_mixed_export_meets_its_rule_on_validation_pixels(
    hamida, prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exported file changes at most 0.5 % of the validation predictions of the search's
    reference, the same quantiser's all-int8 file (recorded as the search scores it)."""
    import tfhsi.experiment.quantisation as quantisation
    from tfhsi.deployment import DuplicateExportError, export_tflite
    from tfhsi.export.aeq import Validation
    from tfhsi.export.presets import PRESETS

    scored: list[tuple[bytes, np.ndarray]] = []
    real = quantisation.validation_scorer

    def recording(*args, **kwargs) -> Validation:
        validation = real(*args, **kwargs)

        def predict(data: bytes) -> np.ndarray:
            scored.append((data, validation.predict(data)))
            return scored[-1][1]

        return Validation(predict=predict, labels=validation.labels)

    monkeypatch.setattr(quantisation, "validation_scorer", recording)
    try:
        mixed = export_tflite(hamida, "auto-mixed", tmp_path / "m.tflite", prepared=prepared)
    except DuplicateExportError as exc:  # no layer needed int8: it is the w4a8 file
        assert exc.same_as == "w4a8"
        return
    assert mixed.precision in PRESETS.get("auto-mixed").accepts
    reference, predicted = scored[0]  # the search scores its reference first
    assert audit(reference).precision == "int8"
    validation = real(prepared, patch=PATCH, layout="2d", stage=mixed.inputs)
    changed = np.mean(validation.predict(mixed.data) != predicted) * 100
    assert changed <= 0.5


def test_quant_report_ranks_layers_and_writes_json_markdown_and_plot(
    hamida, prepared, tmp_path: Path
) -> None:
    from tfhsi.experiment.quantisation import plot_layer_errors, quant_report

    report, files = quant_report(hamida, prepared, preset="w4a8", samples=8, calibration=16)
    ranked = report.ranked()
    assert [r["name"] for r in ranked][:1] and {r["name"] for r in ranked} >= {"conv1", "logits"}
    costs = [r["oa_cost_pp"] for r in ranked]
    assert costs == sorted(costs, reverse=True)
    assert all(np.isfinite(r["mse"]) and -1 <= r["cosine"] <= 1.0001 for r in ranked)
    assert report.weight_bytes["w4a8"] < 0.6 * report.weight_bytes["int8"]
    assert set(report.whole["per_class"]) == set(prepared.scene.class_names)
    png = plot_layer_errors(report, tmp_path / "layers.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = report.markdown()
    assert ranked[0]["name"] in text and "| rank | layer |" in text
    assert json.loads(json.dumps(report.to_dict()))["layers"][0]["name"] == ranked[0]["name"]
    assert audit(files["w4a8"]).precision in ("w4a8", "w4/8a8")


def test_the_xnnpack_verdict_of_a_w4a8_file_names_the_int4_ops_litert_leaves_undelegated(
    exported,
) -> None:
    from test_runtime_agreement import _not_delegated

    report = audit(exported["w4a8"].data)
    xnnpack = report.verdicts["litert-xnnpack"]
    int4 = {lab for lab, dtype in report.weight_dtypes.items() if dtype == "int4"}
    assert int4 and not xnnpack.ok and set(xnnpack.failing_ops) == int4
    assert _not_delegated(exported["w4a8"].data) == int4  # what LiteRT itself does
    assert audit(exported["int8"].data).verdicts["litert-xnnpack"].ok


def test_calibration_takes_each_tensors_range_over_all_samples_as_the_converter_does(
    hamida,
) -> None:
    """ai-edge-quantizer's own calibrate() keeps a moving average of per-sample ranges, which
    narrowed the activation ranges of a lowered hamida3d and cost OA; tfhsi's calibration
    takes the min of mins and max of maxes, so the int8 file's input scale matches the
    converter's on the same samples."""
    from ai_edge_litert.interpreter import Interpreter

    from tfhsi.compress.lower import lower_conv3d
    from tfhsi.export import convert
    from tfhsi.export.aeq import AeqQuantizer

    lowered, _ = lower_conv3d(hamida)
    representative = random_representative((PATCH, PATCH, BANDS), n=32)
    quantizer = AeqQuantizer(convert(lowered, "fp32"), representative)
    samples = np.concatenate([x for (x,) in representative()])
    qsv = next(v for k, v in quantizer.calibration.items() if k.startswith("serving_default_"))
    assert float(np.min(qsv["min"])) == pytest.approx(float(samples.min()), rel=1e-6)
    assert float(np.max(qsv["max"])) == pytest.approx(float(samples.max()), rel=1e-6)

    def input_scale(data: bytes) -> float:
        details = Interpreter(model_content=data).get_tensor_details()
        quantised = [d for d in details if d["dtype"] == np.int8 and len(d["shape"]) == 4]
        return float(quantised[0]["quantization_parameters"]["scales"][0])

    converter = convert(lowered, "int8", representative=representative)
    assert input_scale(quantizer.quantize(weight_bits=8)) == pytest.approx(
        input_scale(converter), rel=0.02
    )


def test_auto_mixed_with_a_plain_function_as_validation_says_what_to_pass() -> None:
    from tfhsi.export import convert

    with pytest.raises(ConfigError, match=r"Validation\(predict=.*not function"):
        convert(object(), "auto-mixed", representative=lambda: iter(()), validate=lambda d: 1.0)  # type: ignore[arg-type]
