"""LiteRT latency: warm-up, N timed runs, median / p90, and a cross-check with ``litert-benchmark``.

:func:`measure_latency` times ``invoke()`` only, on one fixed seeded random input, on a
fresh interpreter per configuration (threads × XNNPACK on/off). :func:`litert_benchmark`
runs the ``litert-benchmark`` tool that ships with ``ai-edge-litert`` on the same file, so
the two figures can be compared; that tool runs the CompiledModel CPU path, which always
uses XNNPACK, so compare it with ``xnnpack=True`` at the same thread count.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tfhsi.errors import ConfigError
from tfhsi.profile.interpreter import TFLiteModel

__all__ = [
    "BENCHMARK_TOOL",
    "LatencyStats",
    "Unavailable",
    "all_threads",
    "comparable",
    "find_benchmark_tool",
    "litert_benchmark",
    "measure_latency",
    "parse_benchmark_output",
    "percent_difference",
    "random_input",
]

BENCHMARK_TOOL = "litert-benchmark"
#: litert-benchmark prints and saves milliseconds with two decimals.
BENCHMARK_RESOLUTION_MS = 0.01


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one configuration, in milliseconds.

    Attributes:
        median_ms, p90_ms, mean_ms, min_ms: Over the timed runs (p90: linear interpolation).
        runs: Timed runs (warm-up excluded).
        threads: Interpreter threads.
        xnnpack: Whether the XNNPACK delegate was applied.
        warmup: Untimed runs before timing.
        source: ``"tfhsi"`` (this module) or ``"litert-benchmark"``.
        fully_delegated: Whether every op ran in XNNPACK, as litert-benchmark reports it
            (``None`` when unknown).
    """

    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    runs: int
    threads: int
    xnnpack: bool
    warmup: int = 0
    source: str = "tfhsi"
    fully_delegated: bool | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Unavailable:
    """A measurement that could not be made, and why. Falsy, so ``if result:`` works."""

    reason: str

    def __bool__(self) -> bool:
        return False


def all_threads() -> int:
    """CPUs this process may run on (its affinity mask), else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def random_input(model: TFLiteModel, *, seed: int = 0) -> np.ndarray:
    """A seeded random input batch in the model's raw dtype and shape.

    Integers are uniform over the dtype's range clipped to [-128, 127]; floats are uniform
    in [-1, 1), as ``litert-benchmark`` fills its inputs.
    """
    rng = np.random.default_rng(seed)
    shape = tuple(d or 1 for d in model.input_shape)
    dtype = model.input_dtype
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = max(int(info.min), -128), min(int(info.max), 127)
        return rng.integers(low, high, size=shape, endpoint=True).astype(dtype)
    if dtype.kind == "f":
        return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
    return np.zeros(shape, dtype)


def _stats(times_ms: np.ndarray, **config: object) -> LatencyStats:
    return LatencyStats(
        median_ms=float(np.median(times_ms)),
        p90_ms=float(np.percentile(times_ms, 90)),
        mean_ms=float(np.mean(times_ms)),
        min_ms=float(np.min(times_ms)),
        runs=int(times_ms.size),
        **config,  # type: ignore[arg-type]
    )


def measure_latency(
    model: bytes | str | os.PathLike[str],
    *,
    threads: int,
    xnnpack: bool,
    warmup: int = 10,
    runs: int = 100,
    seed: int = 0,
) -> LatencyStats:
    """Times ``invoke()`` of a ``.tflite`` model on LiteRT.

    A fresh interpreter is built for the configuration, the seeded random input is set
    once, ``warmup`` untimed invocations run, then ``runs`` timed ones.

    Args:
        model: Path or bytes of the ``.tflite`` model.
        threads: Interpreter threads (>= 1).
        xnnpack: Apply the XNNPACK delegate (LiteRT's default) or the built-in kernels only.
        warmup: Untimed invocations first (XNNPACK packs weights on the first one).
        runs: Timed invocations.
        seed: Seed of the input.

    Raises:
        ConfigError: for ``threads < 1``, ``runs < 1`` or ``warmup < 0``.
        ModelFileNotFoundError, DataFormatError, UnsupportedError: as :class:`TFLiteModel`.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be an integer >= 1, got {threads!r}")
    tfl = TFLiteModel(model, num_threads=threads, xnnpack=xnnpack)
    seconds = tfl.invoke_timings(random_input(tfl, seed=seed), runs=runs, warmup=warmup)
    return _stats(seconds * 1e3, threads=threads, xnnpack=xnnpack, warmup=warmup)


def find_benchmark_tool() -> Path | Unavailable:
    """The ``litert-benchmark`` script installed with ``ai-edge-litert``.

    Looks beside the running Python first (the virtual environment's ``bin``), then on PATH.
    """
    name = BENCHMARK_TOOL + (".exe" if os.name == "nt" else "")
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which(BENCHMARK_TOOL)
    if found:
        return Path(found)
    return Unavailable(
        f"{BENCHMARK_TOOL} not found beside {sys.executable} or on PATH; it ships with "
        "ai-edge-litert (`pip install 'ai-edge-litert==2.3.*'`)"
    )


def _parse_text(stdout: str) -> dict[str, float]:
    """Reads ``Inference (median):    1.23 ms`` lines of litert-benchmark's report."""
    values: dict[str, float] = {}
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("Fully accelerated:"):
            values["fully_accelerated"] = float(line.split(":", 1)[1].strip() == "True")
        if not line.startswith("Inference (") or ":" not in line:
            continue
        key, _, rest = line.partition(":")
        words = rest.split()
        if len(words) >= 2 and words[1] == "ms":
            try:
                values[key[len("Inference (") : -1] + "_ms"] = float(words[0])
            except ValueError:
                continue
        if key == "Inference (avg)" and "(" in rest:
            digits = rest.split("(")[1].split()[0]
            if digits.isdigit():
                values["num_runs"] = float(digits)
    return values


def parse_benchmark_output(stdout: str, result_json: str | None = None) -> dict[str, float]:
    """Latency fields of a litert-benchmark run: ``median_ms``, ``avg_ms``, ``min_ms``, …,
    and ``fully_accelerated`` (1.0 / 0.0).

    The JSON result file is preferred; the printed report is the fallback.
    """
    if result_json:
        try:
            saved = json.loads(result_json)
            values = {
                k: float(v) for k, v in saved["latency"].items() if isinstance(v, (int, float))
            }
            if isinstance(saved.get("fully_accelerated"), bool):
                values["fully_accelerated"] = float(saved["fully_accelerated"])
            return values
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
    return _parse_text(stdout)


def litert_benchmark(
    path: str | os.PathLike[str],
    *,
    threads: int,
    runs: int = 100,
    warmup: int = 10,
    timeout_s: float = 600.0,
) -> LatencyStats | Unavailable:
    """Runs ``litert-benchmark`` on a ``.tflite`` file and reads its latency report.

    The tool times its whole Python-level ``run_by_name`` call (input/output buffers
    included), uses XNNPACK, reports milliseconds with two decimals and has no p90; the
    returned ``p90_ms`` is its p95 (an upper bound of p90).

    Its ``--num_threads`` sets XNNPACK's threads only: ops XNNPACK does not take (e.g.
    ``CONV_3D``) run on one thread there, while ``Interpreter(num_threads=N)`` runs them on
    N. Above one thread the two agree only for fully delegated models; ``fully_delegated``
    carries the tool's own verdict so callers can tell (see :func:`comparable`).

    Returns:
        The tool's figures (``source="litert-benchmark"``, ``xnnpack=True``), or
        :class:`Unavailable` with the reason when the tool is missing, fails or prints
        nothing readable.
    """
    tool = find_benchmark_tool()
    if isinstance(tool, Unavailable):
        return tool
    path = Path(path)
    if not path.is_file():
        return Unavailable(f"{path} is not a file")
    with tempfile.TemporaryDirectory(prefix="tfhsi-bench-") as tmp:
        result_file = Path(tmp) / "result.json"
        command = [
            str(tool),
            f"--model={path}",
            f"--num_threads={threads}",
            f"--num_runs={runs}",
            f"--warmup_runs={warmup}",
            f"--result_json={result_file}",
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Unavailable(f"{BENCHMARK_TOOL} could not run: {exc}")
        saved = result_file.read_text(encoding="utf-8") if result_file.is_file() else None
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return Unavailable(
            f"{BENCHMARK_TOOL} exited with {done.returncode}: {' | '.join(last) or 'no output'}"
        )
    values = parse_benchmark_output(done.stdout, saved)
    if "median_ms" not in values:
        return Unavailable(f"{BENCHMARK_TOOL} printed no 'Inference (median)' figure")
    return LatencyStats(
        median_ms=values["median_ms"],
        p90_ms=values.get("p95_ms", float("nan")),
        mean_ms=values.get("avg_ms", float("nan")),
        min_ms=values.get("min_ms", float("nan")),
        runs=int(values.get("num_runs", runs)),
        threads=threads,
        xnnpack=True,
        warmup=warmup,
        source=BENCHMARK_TOOL,
        fully_delegated=(
            bool(values["fully_accelerated"]) if "fully_accelerated" in values else None
        ),
    )


def comparable(ours: LatencyStats, tool: LatencyStats) -> tuple[bool, str]:
    """Whether a litert-benchmark figure measures what ``ours`` measured, and why not.

    Same thread count, XNNPACK on, and either one thread or a fully delegated model (the
    tool's thread count does not reach the ops XNNPACK leaves to the built-in kernels).
    """
    if ours.threads != tool.threads or not ours.xnnpack:
        return False, "different thread count or XNNPACK setting"
    if ours.threads > 1 and tool.fully_delegated is False:
        return False, (
            f"not fully delegated: {BENCHMARK_TOOL} runs the ops XNNPACK leaves over on 1 "
            f"thread, the LiteRT Interpreter on {ours.threads}; compare at 1 thread"
        )
    return True, ""


def percent_difference(ours: LatencyStats, reference: LatencyStats) -> float | None:
    """``100 · (ours − reference) / reference`` of the medians; ``None`` if the reference is 0.

    litert-benchmark rounds to 0.01 ms, so below ~1 ms its own rounding moves this figure
    by up to ``0.5 / median_ms`` percent; below 0.01 ms it reads 0 and there is no figure.
    """
    if reference.median_ms <= 0:
        return None
    return 100.0 * (ours.median_ms - reference.median_ms) / reference.median_ms
