"""Target profiles: shipped YAML, strict validation of user files, and the fit assessment."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfhsi.errors import ConfigError, UnknownNameError
from tfhsi.profile.targets import TARGETS_DIR_ENV, assess, load_target_file, load_targets

KIB, MIB = 1024, 1024 * 1024
VALID = """\
title: Tiny MCU
kind: mcu
runtime: tflm
ram_bytes: 65536
flash_bytes: 262144
cycles_per_mac: 2.0
clock_hz: 48000000
requires_int8: true
"""


@pytest.fixture(autouse=True)
def _no_user_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TARGETS_DIR_ENV, raising=False)


def test_shipped_targets_load_with_the_documented_figures() -> None:
    targets = load_targets()
    assert {"cortex-m4", "cortex-m7", "esp32-s3", "coral-edgetpu", "android-cpu"} <= set(targets)
    m4, m7 = targets.get("cortex-m4"), targets.get("cortex-m7")
    assert (m4.ram_bytes, m4.flash_bytes) == (256 * KIB, 1 * MIB)
    assert (m7.ram_bytes, m7.flash_bytes) == (512 * KIB, 2 * MIB)
    for name in ("cortex-m4", "cortex-m7", "esp32-s3"):
        target = targets.get(name)
        assert target.kind == "mcu" and target.requires_int8
        assert "cycles" in target.notes.lower() and target.sources


def test_unknown_target_name_suggests_close_match() -> None:
    with pytest.raises(UnknownNameError, match="cortex-m4"):
        load_targets().get("cortex-m44")


def test_unknown_key_error_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(VALID + "ram_kb: 64\n")
    with pytest.raises(ConfigError, match=r"tiny\.yaml: unknown field 'ram_kb'"):
        load_target_file(path)


def test_wrong_type_error_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(VALID.replace("ram_bytes: 65536", "ram_bytes: lots"))
    with pytest.raises(ConfigError, match=r"tiny\.yaml: field 'ram_bytes'.*integer.*'lots'"):
        load_target_file(path)
    path.write_text(VALID.replace("requires_int8: true", "requires_int8: maybe"))
    with pytest.raises(ConfigError, match=r"tiny\.yaml: field 'requires_int8'"):
        load_target_file(path)


def test_mcu_without_clock_is_rejected_naming_the_missing_field(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(VALID.replace("clock_hz: 48000000\n", ""))
    with pytest.raises(ConfigError, match=r"tiny\.yaml: .*clock_hz"):
        load_target_file(path)


def test_name_must_match_file_stem_and_bad_yaml_names_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text("name: other\n" + VALID)
    with pytest.raises(ConfigError, match=r"tiny\.yaml: field 'name' is 'other'"):
        load_target_file(path)
    path.write_text("title: [unclosed\n")
    with pytest.raises(ConfigError, match=r"tiny\.yaml is not valid YAML"):
        load_target_file(path)


def test_user_directory_adds_and_overrides_targets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tiny.yaml").write_text(VALID)
    (tmp_path / "cortex-m4.yaml").write_text(VALID.replace("Tiny MCU", "My M4"))
    monkeypatch.setenv(TARGETS_DIR_ENV, str(tmp_path))
    targets = load_targets()
    assert targets.get("tiny").ram_bytes == 64 * KIB
    assert targets.get("cortex-m4").title == "My M4"
    assert load_targets(use_env=False).get("cortex-m4").title != "My M4"


def test_missing_targets_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"targets directory .*nowhere does not exist"):
        load_targets([tmp_path / "nowhere"])


def test_model_larger_than_flash_does_not_fit_with_figures() -> None:
    m4 = load_targets().get("cortex-m4")
    result = assess(m4, model_bytes=1_300_000, arena_bytes=10 * KIB, macs=1_000_000, int8=True)
    assert result.fits is False and result.verdict == "does not fit"
    flash = [r for r in result.reasons if r.startswith("FAIL: flash")]
    assert flash and "1,024.0 KiB" in flash[0]
    assert result.flash_needed_bytes == 1_300_000 + m4.runtime_code_bytes


def test_arena_larger_than_ram_does_not_fit_and_small_model_fits() -> None:
    m4 = load_targets().get("cortex-m4")
    big = assess(m4, model_bytes=50_000, arena_bytes=300 * KIB, macs=None, int8=True)
    assert big.fits is False and any(r.startswith("FAIL: RAM") for r in big.reasons)
    small = assess(m4, model_bytes=50_000, arena_bytes=20 * KIB, macs=None, int8=True)
    assert small.fits is True
    assert small.ram_needed_bytes == 20 * KIB + m4.ram_overhead_bytes


def test_mcu_latency_estimate_is_macs_times_cycles_over_clock_and_labelled() -> None:
    m4 = load_targets().get("cortex-m4")
    result = assess(m4, model_bytes=1_000, arena_bytes=1_000, macs=6_400_000, int8=True)
    expected = 1e3 * 6_400_000 * m4.cycles_per_mac / m4.clock_hz
    assert result.estimated_latency_ms == pytest.approx(expected)
    assert any("estimate" in r and "cycles/MAC" in r for r in result.reasons)


def test_float_model_or_missing_kernel_does_not_fit_an_int8_mcu() -> None:
    m7 = load_targets().get("cortex-m7")
    floaty = assess(m7, model_bytes=1_000, arena_bytes=1_000, macs=None, int8=False)
    assert floaty.fits is False and any("int8" in r for r in floaty.reasons)
    missing = assess(
        m7,
        model_bytes=1_000,
        arena_bytes=None,
        macs=None,
        int8=True,
        runtime_error="TFLite Micro has no kernel for CONV_3D",
    )
    assert missing.fits is False and any("CONV_3D" in r for r in missing.reasons)


def test_unmeasured_arena_leaves_the_mcu_verdict_unknown() -> None:
    m7 = load_targets().get("cortex-m7")
    result = assess(m7, model_bytes=1_000, arena_bytes=None, macs=None, int8=True)
    assert result.fits is None and result.verdict == "unknown"


def test_edgetpu_follows_the_audit_verdict() -> None:
    tpu = load_targets().get("coral-edgetpu")
    assert assess(tpu, model_bytes=1_000, arena_bytes=None, macs=None, int8=True).fits is None
    bad = assess(
        tpu,
        model_bytes=1_000,
        arena_bytes=None,
        macs=None,
        int8=True,
        audit_verdict=(False, ["not Edge TPU compatible: CONV_3D#1"]),
    )
    assert bad.fits is False and "CONV_3D#1" in bad.reasons[0]
    good = assess(
        tpu,
        model_bytes=9 * MIB,
        arena_bytes=None,
        macs=None,
        int8=True,
        audit_verdict=(True, ["all ops are 8-bit"]),
    )
    assert good.fits is True and any("streamed" in r for r in good.reasons)
