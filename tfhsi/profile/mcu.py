"""TensorFlow Lite Micro on the host: smallest tensor arena, raw outputs, agreement with LiteRT.

The ``tflite-micro`` package runs the TFLM reference kernels on this machine. Its native
code reports failures on stderr and could take the process down, so every trial runs in a
worker process (:mod:`tfhsi.profile._tflm_worker`): a fresh interpreter per trial, the
native log captured, a crash counted as a failed trial and the worker restarted.

The arena is searched over multiples of ``granularity``, starting from TFLM's own allocation
total at a generous arena (usually the minimum, so two more interpreters confirm it) and
closed by bisection, then verified in fresh interpreters: the minimum runs the sample inputs
with outputs equal to a generous arena's, and an arena clearly smaller (by
``max(1 KiB, 5 %)``) fails. The figure is what
TFLM needs on *this* 64-bit host with reference kernels: on a 32-bit MCU its bookkeeping
structs are smaller, while optimised kernels (CMSIS-NN, ESP-NN) may ask for extra scratch
buffers; the target profiles add a RAM overhead for that (see :mod:`tfhsi.profile.targets`).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from tfhsi.errors import ConfigError, DataFormatError, UnsupportedError
from tfhsi.profile._tflm_worker import TflmWorker, Trial, unsupported_reason

__all__ = [
    "Agreement",
    "ArenaResult",
    "TflmWorker",
    "Trial",
    "compare_with_litert",
    "find_min_arena",
    "run_tflm",
    "unsupported_reason",
]

KIB = 1024
#: "Clearly smaller" for the failing check: the minimum minus max(1 KiB, 5 %).
FAIL_MARGIN_BYTES = KIB
FAIL_MARGIN_FRACTION = 0.05
#: The search starts with this upper bound and doubles it while it fails for lack of memory.
ARENA_CAP_BYTES = 512 * 1024 * KIB
_RECORDED = re.compile(r"Arena allocation total (\d+) bytes")
KERNEL_CODE_NOTE = (
    "flash = model bytes plus the TFLM runtime and the kernels the model uses: register only "
    "those ops (MicroMutableOpResolver) to keep code small; the per-target figure is an "
    "estimate, measure yours in the linker map"
)


@dataclass(frozen=True)
class ArenaResult:
    """The smallest TFLM tensor arena for a model, found by search and verified.

    Attributes:
        min_bytes: Smallest multiple of ``granularity`` that worked.
        verified_ok_at: Arena that ran the sample inputs in a fresh interpreter with
            outputs equal to a generous arena's (``min_bytes``).
        verified_fail_at: Clearly smaller arena that failed in a fresh interpreter
            (``None`` when the minimum is too small to subtract the margin).
        granularity: Search step in bytes.
        trials: Interpreters built for the search and the checks.
        recorded_bytes: TFLM's own RecordingMicroAllocator total at a generous arena.
        reference_arena: The generous arena used as the reference.
        host: Where it was measured (pointer size matters for TFLM's bookkeeping).
    """

    min_bytes: int
    verified_ok_at: int
    verified_fail_at: int | None
    granularity: int
    trials: int
    recorded_bytes: int | None = None
    reference_arena: int = 0
    host: str = field(default_factory=lambda: f"{sys.platform}, {8 * _pointer_bytes()}-bit")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _pointer_bytes() -> int:
    return np.dtype(np.intp).itemsize


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def _sample_inputs(trial: Trial, samples: int, seed: int) -> np.ndarray:
    """Seeded random raw inputs with the model's TFLM input shape and dtype."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(trial.input_dtype)
    size = (samples, *trial.input_shape)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = max(int(info.min), -128), min(int(info.max), 127)
        return rng.integers(low, high, size=size, endpoint=True).astype(dtype)
    return rng.normal(size=size).astype(dtype)


def _recorded_total(log: str) -> int | None:
    found = _RECORDED.search(log)
    return int(found.group(1)) if found else None


def _bracket_hint(
    probe_at: Callable[[int], bool], hint: int | None, good: int, bad: int, step: int
) -> tuple[int, int]:
    """Narrows ``(good, bad)`` around TFLM's own allocation total before the binary search.

    The recording allocator's total at a generous arena is usually the minimum itself, so the
    search would need about 15 interpreters to find what two confirm. From the hint the bracket
    grows by doubling steps, up while the arena fails and down while it runs, so a wrong hint
    only costs a few extra trials; the binary search then closes whatever bracket is left.
    """
    if hint is None:
        return good, bad
    arena, gap, up = _round_up(hint, step), step, None
    while bad < arena < good:
        ok = probe_at(arena)
        good, bad = (arena, bad) if ok else (good, arena)
        if up is not None and ok != up:  # the boundary lies between the last two probes
            break
        up, arena, gap = ok, arena - gap if ok else arena + gap, 2 * gap
    return good, bad
    arena = _round_up(hint, step)
    if arena >= good:
        return good, bad
    up = probe_at(arena)
    gap = step
    while bad < arena < good:
        if up:
            good = arena
            arena = max(bad, (arena - gap) // step * step)
        else:
            bad = arena
            arena = min(good, _round_up(arena + gap, step))
        if not bad < arena < good:
            break
        ok = probe_at(arena)
        if ok != up:  # the boundary lies between the last two probes
            good, bad = (arena, bad) if ok else (good, arena)
            break
        gap *= 2
    return good, bad


def find_min_arena(
    model: bytes,
    *,
    lo: int = 0,
    hi: int | None = None,
    granularity: int = 16,
    samples: int = 4,
    seed: int = 0,
    source: str = "<bytes>",
) -> ArenaResult:
    """Finds the smallest tensor arena with which TFLM runs the model, and verifies it.

    Args:
        model: The ``.tflite`` content.
        lo: An arena known to fail (0 is always safe).
        hi: A first upper bound (default ``max(64 KiB, 4 × model size)``); doubled while it
            fails for lack of memory, up to 512 MiB.
        granularity: Search step in bytes (TFLM aligns allocations to 16).
        samples: Seeded random inputs for the verification run.
        seed: Seed of those inputs.
        source: The model's name in error messages.

    Raises:
        UnsupportedError: TFLM cannot run the model; the message names the op it lacks.
        ConfigError: for a non-positive granularity or ``lo >= hi``.
    """
    if granularity < 1:
        raise ConfigError(f"granularity must be >= 1 byte, got {granularity}")
    hi = hi if hi is not None else max(64 * KIB, 4 * len(model))
    if lo < 0 or lo >= hi:
        raise ConfigError(f"need 0 <= lo < hi, got lo={lo}, hi={hi}")
    with TflmWorker(model, source=source) as worker:
        hi = _round_up(hi, granularity)
        trials = 0
        while True:
            probe, _ = worker.trial(hi, record=True)
            trials += 1
            if probe.ok:
                break
            reason = unsupported_reason(probe)
            if reason is not None:
                raise UnsupportedError(f"{source}: {reason}; it cannot run on MCU targets as is")
            if hi >= ARENA_CAP_BYTES:
                raise UnsupportedError(
                    f"{source}: TFLite Micro could not allocate even a {hi // KIB} KiB arena"
                )
            lo, hi = hi, min(2 * hi, ARENA_CAP_BYTES)
        reference = hi
        good, bad = hi, lo // granularity * granularity
        bad = min(bad, good - granularity)

        def probe_at(arena: int) -> bool:
            nonlocal trials
            trial, _ = worker.trial(arena)
            trials += 1
            if trial.ok:
                return True
            if trial.out_of_memory or trial.crashed:
                return False
            raise UnsupportedError(f"{source}: {unsupported_reason(trial)} (arena {arena} bytes)")

        good, bad = _bracket_hint(probe_at, _recorded_total(probe.log), good, bad, granularity)
        while good - bad > granularity:
            mid = (bad + good) // 2 // granularity * granularity
            if probe_at(mid):
                good = mid
            else:
                bad = mid
        xs = _sample_inputs(probe, samples, seed)
        ref_trial, ref_out = worker.trial(reference, xs, record=True)
        at_min, min_out = worker.trial(good, xs)
        trials += 2
        same = min_out is not None and ref_out is not None and np.array_equal(min_out, ref_out)
        if not (at_min.ok and ref_trial.ok and same):
            raise UnsupportedError(
                f"{source}: TFLite Micro found {good} bytes by search but the verification run "
                f"{'failed' if not at_min.ok else 'gave different outputs'}; the runtime is "
                "not deterministic for this model"
            )
        margin = max(FAIL_MARGIN_BYTES, math.ceil(FAIL_MARGIN_FRACTION * good))
        fail_at = (good - margin) // granularity * granularity
        verified_fail: int | None = None
        if fail_at > 0:
            below, _ = worker.trial(fail_at, xs)
            trials += 1
            if below.ok:
                raise UnsupportedError(
                    f"{source}: TFLite Micro ran with {fail_at} bytes although the search "
                    f"found {good}; arena needs are not monotonic for this model"
                )
            verified_fail = fail_at
        recorded = _recorded_total(ref_trial.log)
    return ArenaResult(
        min_bytes=good,
        verified_ok_at=good,
        verified_fail_at=verified_fail,
        granularity=granularity,
        trials=trials,
        recorded_bytes=recorded,
        reference_arena=reference,
    )


def run_tflm(
    model: bytes,
    x: np.ndarray,
    *,
    arena_bytes: int | None = None,
    source: str = "<bytes>",
) -> np.ndarray:
    """Runs raw (already quantised) inputs through TFLite Micro.

    Args:
        model: The ``.tflite`` content.
        x: ``(N, *input_shape)`` samples in the model's input dtype (e.g. int8), or a single
            batch with the model's exact input shape.
        arena_bytes: Arena size (default ``max(1 MiB, 10 × model size)``).
        source: The model's name in error messages.

    Returns:
        ``(N, *output_shape)`` raw outputs as TFLM stores them.

    Raises:
        UnsupportedError: TFLM cannot run the model (the op it lacks is named) or the arena
            is too small.
    """
    arena = arena_bytes or max(1024 * KIB, 10 * len(model))
    with TflmWorker(model, source=source) as worker:
        trial, outputs = worker.trial(arena, np.asarray(x))
    if not trial.ok or outputs is None:
        reason = unsupported_reason(trial) or f"a {arena}-byte arena is too small"
        raise UnsupportedError(f"{source}: {reason}")
    return outputs


@dataclass(frozen=True)
class Agreement:
    """LiteRT vs TFLite Micro on the same raw inputs.

    Attributes:
        samples: Inputs compared.
        xnnpack: Whether LiteRT ran with XNNPACK.
        max_lsb_diff: Largest |LiteRT − TFLM| over all logits, in output quantisation steps
            (integer outputs); ``None`` for float outputs.
        max_abs_diff: The same in the raw output unit (float outputs: real values).
        differing_logits: How many logits differ at all.
        logits: Logits compared in total.
    """

    samples: int
    xnnpack: bool
    max_lsb_diff: int | None
    max_abs_diff: float
    differing_logits: int
    logits: int

    def within(self, lsb: int = 1) -> bool:
        return self.max_lsb_diff is not None and self.max_lsb_diff <= lsb

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def compare_with_litert(
    model: bytes,
    samples: np.ndarray | int = 16,
    *,
    seed: int = 0,
    arena_bytes: int | None = None,
    xnnpack: bool = False,
    source: str = "<bytes>",
) -> Agreement:
    """Runs the same raw inputs through LiteRT (``TFLiteModel.invoke_raw``) and TFLM.

    Args:
        model: The ``.tflite`` content.
        samples: ``(N, *sample_shape)`` raw inputs in the model's input dtype, or a count of
            seeded random ones to draw.
        seed: Seed of the random inputs.
        arena_bytes: TFLM arena (default: generous).
        xnnpack: Run LiteRT with XNNPACK instead of its built-in kernels. The built-in
            kernels share TFLM's integer arithmetic (expect <= 1 LSB); XNNPACK requantises
            in fp32, so its logits can differ by one step per layer (measured: up to 2 LSB).
        source: The model's name in error messages.

    Raises:
        UnsupportedError: TFLM cannot run the model.
        DataFormatError: inputs of the wrong dtype or shape.
    """
    from tfhsi.profile.interpreter import TFLiteModel

    litert = TFLiteModel(model, num_threads=1, xnnpack=xnnpack)
    batch_shape = tuple(d or 1 for d in litert.input_shape)
    if isinstance(samples, int):
        rng = np.random.default_rng(seed)
        size = (samples, *batch_shape)
        drawn = (
            rng.integers(-128, 127, size=size, endpoint=True)
            if litert.input_dtype.kind in "iu"
            else rng.normal(size=size)
        )
        xs = drawn.astype(litert.input_dtype)
    else:
        xs = np.asarray(samples)
        if xs.shape[1:] == batch_shape[1:]:
            xs = xs[:, None]  # one sample per batch-1 invocation
    if xs.dtype != litert.input_dtype:
        raise DataFormatError(
            f"{source}: samples are {xs.dtype}, the model takes raw {litert.input_dtype}; "
            "quantise them with TFLiteModel.quantize_input"
        )
    ours = np.stack([litert.invoke_raw(x) for x in xs])
    theirs = run_tflm(model, xs, arena_bytes=arena_bytes, source=source).reshape(ours.shape)
    diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    integer = ours.dtype.kind in "iu"
    return Agreement(
        samples=len(xs),
        xnnpack=xnnpack,
        max_lsb_diff=int(diff.max()) if integer else None,
        max_abs_diff=float(diff.max()),
        differing_logits=int(np.count_nonzero(diff)),
        logits=int(diff.size),
    )
