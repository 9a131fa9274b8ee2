"""TFLite Micro: arena search and verification, raw outputs, agreement with LiteRT, missing ops."""

from __future__ import annotations

import numpy as np
import pytest

from tfhsi.errors import UnsupportedError
from tfhsi.profile.mcu import (
    KIB,
    TflmWorker,
    Trial,
    compare_with_litert,
    find_min_arena,
    run_tflm,
    unsupported_reason,
)


@pytest.fixture(scope="module")
def arena(int8_2d: bytes):
    return find_min_arena(int8_2d, granularity=16)


def _inputs(n: int, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 127, size=(n, 1, 9, 9, 16), endpoint=True).astype(np.int8)


def test_arena_search_minimum_runs_and_one_kib_less_fails(int8_2d: bytes, arena) -> None:
    assert arena.min_bytes % 16 == 0 and arena.min_bytes > KIB
    assert arena.verified_ok_at == arena.min_bytes
    assert arena.verified_fail_at is not None
    assert arena.verified_fail_at <= arena.min_bytes - KIB
    x = _inputs(3)
    at_min = run_tflm(int8_2d, x, arena_bytes=arena.min_bytes)
    generous = run_tflm(int8_2d, x, arena_bytes=1024 * KIB)
    np.testing.assert_array_equal(at_min, generous)
    with pytest.raises(UnsupportedError, match="too small"):
        run_tflm(int8_2d, x, arena_bytes=arena.min_bytes - KIB)


def test_arena_search_is_tight_to_the_granularity(int8_2d: bytes, arena) -> None:
    with pytest.raises(UnsupportedError, match="too small"):
        run_tflm(int8_2d, _inputs(1), arena_bytes=arena.min_bytes - 16)


def test_arena_minimum_matches_tflm_recording_allocator(arena) -> None:
    assert arena.recorded_bytes is not None
    assert arena.min_bytes - 16 < arena.recorded_bytes <= arena.min_bytes


def test_tflm_and_litert_builtin_kernels_agree_within_one_lsb(int8_2d: bytes, arena) -> None:
    agreement = compare_with_litert(int8_2d, 64, seed=2, arena_bytes=arena.min_bytes, xnnpack=False)
    assert agreement.samples == 64 and agreement.logits == 64 * 5
    assert agreement.max_lsb_diff is not None and agreement.within(1)


def test_tflm_and_litert_xnnpack_differ_by_rounding_only(int8_2d: bytes, arena) -> None:
    # XNNPACK requantises in fp32, TFLite / TFLM with a fixed-point multiplier: one step per
    # layer at most, measured up to 2 LSB at the logits of this 4-layer model (0-1 on others).
    agreement = compare_with_litert(int8_2d, 64, seed=2, arena_bytes=arena.min_bytes, xnnpack=True)
    assert agreement.xnnpack and agreement.max_lsb_diff is not None
    assert agreement.max_lsb_diff <= 2


def test_given_samples_are_compared_as_is(int8_2d: bytes) -> None:
    x = _inputs(4, seed=9)[:, 0]  # (N, 9, 9, 16): one batch-1 invocation each
    agreement = compare_with_litert(int8_2d, x, xnnpack=False)
    assert agreement.samples == 4 and agreement.max_lsb_diff == 0


def test_float_model_runs_on_tflm_and_reports_absolute_difference(float_2d: bytes) -> None:
    agreement = compare_with_litert(float_2d, 4, xnnpack=False)
    assert agreement.max_lsb_diff is None
    assert agreement.max_abs_diff < 1e-4


def test_conv3d_model_is_unsupported_naming_conv3d(int8_conv3d: bytes) -> None:
    with pytest.raises(UnsupportedError, match="no kernel for CONV_3D") as err:
        find_min_arena(int8_conv3d, source="m3d.tflite")
    assert "m3d.tflite" in str(err.value) and "MCU" in str(err.value)
    x = np.zeros((1, 1, 7, 7, 8, 1), np.int8)
    with pytest.raises(UnsupportedError, match="CONV_3D"):
        run_tflm(int8_conv3d, x)


def test_failure_log_parsing_separates_missing_ops_from_small_arenas() -> None:
    missing = Trial(
        0,
        False,
        log="Didn't find op for builtin opcode 'CONV_3D'\nFailed to get registration",
        error="RuntimeError: TFLM failed to allocate tensors",
    )
    assert not missing.out_of_memory
    assert unsupported_reason(missing) == "TFLite Micro has no kernel for CONV_3D"
    small = Trial(
        0,
        False,
        log="Failed to allocate tail memory. Requested: 336, available 320, missing: 16",
        error="RuntimeError: TFLM failed to allocate tensors",
    )
    assert small.out_of_memory and unsupported_reason(small) is None
    crashed = Trial(0, False, error="worker crashed (exit code -11)", crashed=True)
    assert "crashed" in (unsupported_reason(crashed) or "")


def test_hung_worker_is_killed_counted_as_crash_and_restarted(int8_2d: bytes) -> None:
    with TflmWorker(int8_2d, timeout_s=1e-4) as worker:  # no answer that fast: "hung"
        trial, outputs = worker.trial(64 * KIB)
        assert trial.crashed and not trial.ok and outputs is None
        assert worker.crashes == 1
        worker.timeout_s = 120.0
        trial, outputs = worker.trial(64 * KIB, _inputs(2))
        assert trial.ok and outputs is not None and outputs.shape == (2, 1, 5)


@pytest.mark.parametrize("hint", [None, 100, 4_000, 4_096, 4_112, 9_000, 50_000, 64 * KIB])
@pytest.mark.parametrize("minimum", [16, 4_096, 4_112, 30_000])
def test_the_allocation_hint_narrows_the_search_and_never_changes_its_result(
    hint: int | None, minimum: int
) -> None:
    """Whatever TFLM's recorded total says, the bracket keeps the true minimum inside it."""
    from tfhsi.profile.mcu import _bracket_hint, _round_up

    probes: list[int] = []

    def runs(arena: int) -> bool:
        probes.append(arena)
        return arena >= minimum

    good, bad = _bracket_hint(runs, hint, 64 * KIB, 0, 16)
    assert bad < minimum <= good and good % 16 == 0 and bad % 16 == 0
    assert all(0 < p < 64 * KIB for p in probes)  # inside the bracket it was given
    if hint is not None and _round_up(hint, 16) == minimum:
        assert (good, bad) == (minimum, minimum - 16) and len(probes) == 2


def test_the_search_confirms_tflm_s_allocation_total_in_a_few_interpreters(arena) -> None:
    assert arena.trials <= 8  # bisection of a 64 KiB bracket alone builds about 15
