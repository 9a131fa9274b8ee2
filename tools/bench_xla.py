"""Training throughput with and without XLA-compiled steps, per zoo model, in one process.

For each model: two copies built from the same seed, one compiled with ``jit_compile=False``
and one with ``jit_compile=True``, each warmed up on two batches, then one epoch of each,
alternated for ``--rounds`` rounds (so both sides see the same load). Random patches of the
model's input shape, batch 64, Adam. The registry's hint (``ModelSpec.jit_compile``, read by
``tfhsi.models.trains_with_xla``) should be on exactly where the ratio is well above 1.

    .venv/bin/python tools/bench_xla.py --models student3d hamida3d student2d cnn2d --json xla.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from tfhsi.env import environment
from tfhsi.models import MODELS, build_model, input_shape

INPUTS = {  # (patch, bands) the main job and the study feed each model on Indian Pines
    "hamida3d": (11, 30),
    "student3d": (7, 30),
    "student2d": (9, 200),
    "cnn2d": (11, 30),
    "hybridsn": (25, 30),
    "cnn1d": (1, 200),
}


def measure(name: str, *, samples: int, rounds: int) -> dict[str, object]:
    from tfhsi._keras import keras

    patch, bands = INPUTS[name]
    shape = input_shape(name, bands=bands, patch_size=patch)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, *shape)).astype("float32")
    y = rng.integers(0, 16, size=samples)
    models = {}
    for jit in (False, True):
        model = build_model(name, bands=bands, n_classes=16, patch_size=patch, seed=0)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=jit,
        )
        model.fit(x[:128], y[:128], batch_size=64, epochs=1, verbose=0)  # trace / compile
        models[jit] = model
    rates: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for jit, model in models.items():
            start = time.perf_counter()
            model.fit(x, y, batch_size=64, epochs=1, verbose=0)
            rates[jit].append(samples / (time.perf_counter() - start))
    plain, xla = statistics.median(rates[False]), statistics.median(rates[True])
    return {
        "model": name,
        "input": list(shape),
        "samples_per_s": {"plain": round(plain, 1), "xla": round(xla, 1)},
        "rounds": {
            "plain": [round(r, 1) for r in rates[False]],
            "xla": [round(r, 1) for r in rates[True]],
        },
        "xla_speedup": round(xla / plain, 2),
        "registry_hint": MODELS.get(name).jit_compile,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=["student3d", "hamida3d", "student2d", "cnn2d"]
    )
    parser.add_argument("--samples", type=int, default=1024, help="patches per timed epoch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    results = []
    print("| model | input | plain samples/s | XLA samples/s | XLA speed-up | registry hint |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        r = measure(name, samples=args.samples, rounds=args.rounds)
        results.append(r)
        rate = r["samples_per_s"]
        print(f"| {name} | {'×'.join(map(str, r['input']))} | {rate['plain']:,.0f} | "  # type: ignore[index]
              f"{rate['xla']:,.0f} | {r['xla_speedup']:.2f}× | {'XLA' if r['registry_hint'] else 'plain'} |",  # type: ignore[index]
              flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(
            json.dumps({"results": results, "environment": environment()}, indent=2)
        )


if __name__ == "__main__":
    main()
