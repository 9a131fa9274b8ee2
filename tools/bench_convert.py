"""TFLite conversion time: the converter given the Keras model vs its variables alone.

``tfhsi.export.tflite.convert`` hands ``TFLiteConverter.from_concrete_functions`` a
``tf.Module`` holding the model's variables; given the Keras model, the converter first saves
it as a SavedModel layer by layer. For each model and preset, both ways alternate for
``--rounds`` rounds in one process; the tool checks that both give the same bytes.

    .venv/bin/python tools/bench_convert.py --models student2d hamida3d --presets fp32 int8
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from tfhsi.env import environment
from tfhsi.models import build_model, input_shape

INPUTS = {"hamida3d": (11, 30), "student3d": (7, 30), "student2d": (9, 200), "cnn2d": (11, 30)}


def _convert(model, preset: str, trackable, representative) -> tuple[bytes, float]:
    from tfhsi._keras import tf
    from tfhsi.export.tflite import _input_specs

    start = time.perf_counter()
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        *_input_specs(model)
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], trackable)
    if preset == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
    return bytes(converter.convert()), time.perf_counter() - start


def measure(name: str, preset: str, rounds: int) -> dict[str, object]:
    from tfhsi._keras import tf

    patch, bands = INPUTS[name]
    model = build_model(name, bands=bands, n_classes=16, patch_size=patch, seed=0)
    shape = input_shape(name, bands=bands, patch_size=patch)
    rng = np.random.default_rng(0)
    samples = [rng.normal(size=(1, *shape)).astype("float32") for _ in range(32)]

    def representative():
        return ([x] for x in samples)

    holder = tf.Module()
    holder.variables_of_model = list(model.variables)
    times: dict[str, list[float]] = {"keras model": [], "variables": []}
    outputs: dict[str, bytes] = {}
    for _ in range(rounds):
        for way, trackable in (("keras model", model), ("variables", holder)):
            outputs[way], seconds = _convert(model, preset, trackable, representative)
            times[way].append(seconds)
    before, after = (statistics.median(times[w]) for w in ("keras model", "variables"))
    return {
        "model": name,
        "preset": preset,
        "seconds": {w: [round(t, 2) for t in ts] for w, ts in times.items()},
        "speedup": round(before / after, 2),
        "same_bytes": outputs["keras model"] == outputs["variables"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["student2d", "hamida3d"])
    parser.add_argument("--presets", nargs="+", default=["fp32", "int8"], choices=["fp32", "int8"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(
        "| model | preset | given the Keras model, s | given its variables, s | speed-up | same bytes |"
    )
    print("|---|---|---|---|---|---|")
    results = []
    for name in args.models:
        for preset in args.presets:
            r = measure(name, preset, args.rounds)
            results.append(r)
            secs = r["seconds"]
            print(f"| {name} | {preset} | {' / '.join(map(str, secs['keras model']))} | "  # type: ignore[index]
                  f"{' / '.join(map(str, secs['variables']))} | {r['speedup']}× | {r['same_bytes']} |", flush=True)  # type: ignore[index]  # fmt: skip
    if args.json:
        args.json.write_text(
            json.dumps({"results": results, "environment": environment()}, indent=2)
        )


if __name__ == "__main__":
    main()
