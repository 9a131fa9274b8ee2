"""LiteRT latency statistics and the litert-benchmark cross-check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tfhsi.errors import ConfigError
from tfhsi.profile import latency as lat
from tfhsi.profile.interpreter import TFLiteModel

REPORT = """
========================================
 BENCHMARK RESULTS
========================================
Model initialization:  3.10 ms
Warmup (first):        1.50 ms
Warmup (avg):          0.60 ms (10 runs)
Inference (avg):       0.42 ms (100 runs)
Inference (min):       0.38 ms
Inference (max):       0.91 ms
Inference (median):    0.40 ms
Inference (std):       0.05 ms
Inference (p5):        0.38 ms
Inference (p95):       0.55 ms
Fully accelerated:     True
========================================
"""


@pytest.mark.parametrize("xnnpack", [True, False])
def test_measure_latency_stats_are_ordered_and_record_the_configuration(
    int8_2d: bytes, xnnpack: bool
) -> None:
    stats = lat.measure_latency(int8_2d, threads=1, xnnpack=xnnpack, warmup=3, runs=30)
    assert stats.runs == 30 and stats.threads == 1 and stats.xnnpack is xnnpack
    assert 0 < stats.min_ms <= stats.median_ms <= stats.p90_ms
    assert stats.min_ms <= stats.mean_ms
    assert stats.median_ms < 1_000  # a 0.5 M-MAC model, not seconds
    assert stats.source == "tfhsi"


def test_measure_latency_rejects_zero_threads(int8_2d: bytes) -> None:
    with pytest.raises(ConfigError, match="threads must be an integer >= 1"):
        lat.measure_latency(int8_2d, threads=0, xnnpack=True)


def test_invoke_timings_returns_one_positive_time_per_run(int8_2d: bytes) -> None:
    tfl = TFLiteModel(int8_2d, num_threads=1)
    x = lat.random_input(tfl, seed=3)
    assert x.dtype == np.int8 and x.shape == (1, 9, 9, 16)
    np.testing.assert_array_equal(x, lat.random_input(tfl, seed=3))
    times = tfl.invoke_timings(x, runs=7, warmup=2)
    assert times.shape == (7,) and (times > 0).all() and times.max() < 10


def test_benchmark_report_text_is_parsed() -> None:
    values = lat.parse_benchmark_output(REPORT)
    assert values["median_ms"] == 0.40 and values["avg_ms"] == 0.42
    assert values["min_ms"] == 0.38 and values["p95_ms"] == 0.55
    assert values["num_runs"] == 100
    assert values["fully_accelerated"] == 1.0


def test_benchmark_result_json_wins_over_text() -> None:
    saved = json.dumps(
        {
            "fully_accelerated": False,
            "latency": {"median_ms": 1.25, "avg_ms": 1.3, "num_runs": 20},
        }
    )
    values = lat.parse_benchmark_output(REPORT, saved)
    assert values["median_ms"] == 1.25 and values["num_runs"] == 20
    assert values["fully_accelerated"] == 0.0


def test_multithreaded_figures_of_partly_delegated_models_are_not_comparable() -> None:
    ours = lat.LatencyStats(2.0, 2.2, 2.0, 1.9, 10, 2, True)
    partly = lat.LatencyStats(1.0, 1.1, 1.0, 0.9, 10, 2, True, fully_delegated=False)
    fully = lat.LatencyStats(1.9, 2.1, 1.9, 1.8, 10, 2, True, fully_delegated=True)
    ok, why = lat.comparable(ours, partly)
    assert not ok and "not fully delegated" in why and "compare at 1 thread" in why
    assert lat.comparable(ours, fully) == (True, "")
    one = lat.LatencyStats(2.0, 2.2, 2.0, 1.9, 10, 1, True)
    assert lat.comparable(
        one, lat.LatencyStats(2.0, 2.2, 2.0, 1.9, 10, 1, True, fully_delegated=False)
    )[0]


def test_missing_benchmark_tool_is_unavailable_with_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, int8_2d_path: Path
) -> None:
    monkeypatch.setattr(lat.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    result = lat.litert_benchmark(int8_2d_path, threads=1, runs=5)
    assert not result
    assert isinstance(result, lat.Unavailable)
    assert "litert-benchmark not found" in result.reason and "ai-edge-litert" in result.reason


def test_litert_benchmark_runs_on_the_same_file(int8_2d_path: Path) -> None:
    if isinstance(lat.find_benchmark_tool(), lat.Unavailable):
        pytest.skip("litert-benchmark is not installed")
    result = lat.litert_benchmark(int8_2d_path, threads=1, runs=20, warmup=2)
    assert isinstance(result, lat.LatencyStats), getattr(result, "reason", "")
    assert result.source == "litert-benchmark" and result.runs == 20 and result.xnnpack
    assert 0 <= result.min_ms <= result.median_ms < 1_000
    assert result.fully_delegated is True  # conv, depthwise, mean, dense: all in XNNPACK


def test_percent_difference_is_relative_to_the_reference() -> None:
    ours = lat.LatencyStats(1.1, 1.2, 1.1, 1.0, 10, 1, True)
    ref = lat.LatencyStats(1.0, 1.1, 1.0, 0.9, 10, 1, True, source="litert-benchmark")
    assert lat.percent_difference(ours, ref) == pytest.approx(10.0)
    zero = lat.LatencyStats(0.0, 0.0, 0.0, 0.0, 10, 1, True, source="litert-benchmark")
    assert lat.percent_difference(ours, zero) is None  # below the tool's 0.01 ms resolution
