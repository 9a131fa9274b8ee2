"""Report tables: the short target verdicts."""

from __future__ import annotations


def test_target_reasons_are_shortened_to_the_failed_checks() -> None:
    from tfhsi.report.tables import short_reasons

    reasons = [
        "FAIL: tflm cannot run the model: does not run on TFLite Micro as is; CONV_3D#1: CONV_3D has no TFLite Micro kernel",
        "FAIL: Cortex-M4F MCU (256 KiB RAM, 1 MiB flash, 64 MHz) needs an int8 model; this one computes in float",
        "FAIL: RAM: arena 975.8 KiB + overhead 16.0 KiB (assumed) = 991.8 KiB > 256.0 KiB",
        "ok: flash: model 468.0 KiB + runtime code 80.0 KiB (estimate) = 548.0 KiB <= 1,024.0 KiB",
        "FAIL: not Edge TPU compatible: the compiler would stop mapping at CONV_3D#0; it and every op after it would run on the CPU",
    ]
    assert short_reasons(reasons) == (
        "CONV_3D has no TFLite Micro kernel; not int8; RAM 991.8 KiB > 256.0 KiB; CPU from CONV_3D#0"
    )
    assert short_reasons(["ok: flash fits"]) == "does not fit"


def test_edge_tpu_verdicts_are_marked_rule_based() -> None:
    from tfhsi.report.tables import _edgetpu_targets

    assert _edgetpu_targets(["cortex-m4", "coral-edgetpu", "android-cpu"]) == ["coral-edgetpu"]
