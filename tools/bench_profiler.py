"""Compare tfhsi's LiteRT latency (``measure_latency``) with ``litert-benchmark`` on .tflite files.

For each file and thread count (1 and 2 by default), the two are run alternately for a few
rounds, so drifting machine load hits both alike; each round prints both medians and the
difference, and the last line per configuration gives the median of the per-round
differences. Both use XNNPACK (the tool's CompiledModel CPU path always does).

    .venv/bin/python tools/bench_profiler.py model.tflite [more.tflite …] [--threads 1 2]
        [--runs 100] [--warmup 10] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from tfhsi.atomic import write_json
from tfhsi.env import environment
from tfhsi.profile.latency import (
    LatencyStats,
    comparable,
    litert_benchmark,
    measure_latency,
    percent_difference,
)


def compare(path: Path, *, threads: int, runs: int, warmup: int, rounds: int) -> dict:
    rows: list[dict] = []
    diffs: list[float] = []
    why_not = ""
    for r in range(rounds):
        ours = measure_latency(path, threads=threads, xnnpack=True, warmup=warmup, runs=runs)
        tool = litert_benchmark(path, threads=threads, runs=runs, warmup=warmup)
        if not isinstance(tool, LatencyStats):
            print(f"{path.name} threads={threads}: litert-benchmark unavailable: {tool.reason}")
            return {"file": str(path), "threads": threads, "unavailable": tool.reason}
        diff = percent_difference(ours, tool)
        if diff is None:
            print(f"{path.name}: litert-benchmark reads 0.00 ms; too fast to compare")
            return {"file": str(path), "threads": threads, "unavailable": "below 0.01 ms"}
        ok, why = comparable(ours, tool)
        why_not = why_not or why
        diffs.append(diff)
        rows.append({"ours": ours.to_dict(), "tool": tool.to_dict(), "difference_pct": diff})
        print(
            f"{path.name:32s} threads={threads} round {r + 1}: ours {ours.median_ms:9.3f} ms "
            f"(p90 {ours.p90_ms:8.3f})  litert-benchmark {tool.median_ms:8.2f} ms  "
            f"diff {diff:+6.1f} %{'' if ok else ' (not comparable)'}",
            flush=True,
        )
    median_diff = statistics.median(diffs)
    print(f"{path.name:32s} threads={threads} median difference {median_diff:+.1f} %")
    if why_not:
        print(f"{path.name:32s} threads={threads} not comparable: {why_not}")
    return {
        "file": str(path),
        "threads": threads,
        "rounds": rows,
        "median_diff_pct": median_diff,
        "comparable": not why_not,
        "why_not": why_not,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="Write all figures here.")
    args = parser.parse_args(argv)
    results = [
        compare(path, threads=t, runs=args.runs, warmup=args.warmup, rounds=args.rounds)
        for path in args.models
        for t in args.threads
    ]
    if args.json:
        write_json(args.json, {"environment": environment(), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
