"""Training throughput of each zoo model under each way of running its step, in one process.

Ways: ``plain`` (tf_keras' default), ``xla`` (``jit_compile=True``), and for models with
Conv3D layers ``conv2d`` (:func:`tfhsi.fast_conv3d.conv3d_as_conv2d`, what
``train_model`` and the ``Distiller`` use) and ``conv2d+xla``. For each model, one copy per
way built from the same seed, each warmed up on two batches, then one epoch of each,
alternated for ``--rounds`` rounds (so every way sees the same load). Random patches of the
model's input shape, batch 64, Adam. The registry's XLA hint (``ModelSpec.jit_compile``, read
by ``tfhsi.models.trains_with_xla``) should be on exactly where XLA beats the way
``train_model`` runs otherwise by a clear margin.

    .venv/bin/python tools/bench_train_step.py --models student3d hamida3d student2d cnn2d --json steps.json
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
    "student3d": (7, 200),
    "student2d": (9, 200),
    "cnn2d": (11, 30),
    "hybridsn": (25, 30),
    "cnn1d": (1, 200),
}
WAYS = ("plain", "xla", "conv2d", "conv2d+xla")


def measure(name: str, *, samples: int, rounds: int) -> dict[str, object]:
    from tfhsi._keras import keras
    from tfhsi.fast_conv3d import conv3d_as_conv2d

    patch, bands = INPUTS[name]
    shape = input_shape(name, bands=bands, patch_size=patch)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, *shape)).astype("float32")
    y = rng.integers(0, 16, size=samples)
    models = {}
    for way in WAYS:
        model = build_model(name, bands=bands, n_classes=16, patch_size=patch, seed=0)
        if way.startswith("conv2d"):
            model = conv3d_as_conv2d(model)
            if not any(type(layer).__name__ == "Conv3DAsConv2D" for layer in model.layers):
                continue  # no Conv3D: the same as plain / xla
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=way.endswith("xla"),
        )
        model.fit(x[:128], y[:128], batch_size=64, epochs=1, verbose=0)  # trace / compile
        models[way] = model
    rates: dict[str, list[float]] = {way: [] for way in models}
    for _ in range(rounds):
        for way, model in models.items():
            start = time.perf_counter()
            model.fit(x, y, batch_size=64, epochs=1, verbose=0)
            rates[way].append(samples / (time.perf_counter() - start))
    return {
        "model": name,
        "input": list(shape),
        "samples_per_s": {way: round(statistics.median(r), 1) for way, r in rates.items()},
        "rounds": {way: [round(v, 1) for v in r] for way, r in rates.items()},
        "registry_hint": "xla" if MODELS.get(name).jit_compile else "plain",
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
    print("| model | input | " + " | ".join(f"{w} samples/s" for w in WAYS) + " | registry hint |")
    print("|---|---|" + "---|" * len(WAYS) + "---|")
    for name in args.models:
        r = measure(name, samples=args.samples, rounds=args.rounds)
        results.append(r)
        rate = r["samples_per_s"]
        cells = [f"{rate[w]:,.0f}" if w in rate else "–" for w in WAYS]  # type: ignore[operator,index]
        print(f"| {name} | {'×'.join(map(str, r['input']))} | {' | '.join(cells)} | {r['registry_hint']} |", flush=True)  # type: ignore[index]  # fmt: skip
    if args.json:
        args.json.write_text(
            json.dumps({"results": results, "environment": environment()}, indent=2)
        )


if __name__ == "__main__":
    main()
