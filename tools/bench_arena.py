"""TFLite Micro arena of lowered 3-D models against the un-lowered graph's lower bound.

For each model, prints:

- the lower bound: the largest sum of simultaneously live activations of the
  *un-lowered* Keras graph (liveness over the node order, batch norms and activations
  in place, one byte per element as in an int8 file), and the same over the op order
  of its fp32 TFLite file as converted ("fp32 graph", where BN/ReLU stay separate ops);
- for each lowering strategy asked for: the int8 file's flash size, the peak of its own
  liveness (same rule), the op where that peak sits, and the TFLM arena measured by
  :func:`tfhsi.profile.mcu.find_min_arena` (the real runtime, binary search, verified).

Weights are untrained (seeded): neither the arena nor the file size depends on their
values. Models (Indian Pines shapes): ``student3d`` (patch 7, 200 bands, as in
``recipes/kd_indian_pines.yaml``), ``hamida3d`` (patch 11, PCA 30, as in
``recipes/study_indian_pines.yaml``) and ``chain`` (the study's KD → prune → QAT chain: the
lowered student3d wrapped for quantisation-aware training, then converted).

    .venv/bin/python tools/bench_arena.py [student3d hamida3d chain]
        [--strategies sliced auto] [--json out.json]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tfhsi.atomic import write_json
from tfhsi.compress.lower import lower_conv3d, lowered_input
from tfhsi.export.tflite import convert
from tfhsi.models import build_model
from tfhsi.profile.mcu import find_min_arena

#: name -> (zoo model, patch, bands): the shapes the recipes use on Indian Pines.
MODELS = {
    "student3d": ("student3d", 7, 200),
    "hamida3d": ("hamida3d", 11, 30),
    "chain": ("student3d", 7, 200),
}
N_CLASSES = 16
CALIBRATION = 32


@dataclass(frozen=True)
class Liveness:
    """Peak of the activations live at once over a TFLite file's op order."""

    peak_bytes: int
    peak_op: str
    peak_index: int
    ops: int


@dataclass(frozen=True)
class Row:
    model: str
    strategy: str
    flash_bytes: int
    arena_bytes: int
    graph_peak_bytes: int
    peak_op: str
    ops: int
    lower_bound_bytes: int
    tflite_bound_bytes: int


def liveness(content: bytes, *, bytes_per_element: int | None = None) -> Liveness:
    """Largest sum of live activation tensors of a ``.tflite`` over its op order.

    A tensor is live from the op that writes it (the graph input: from the start) to the
    last op that reads it (a graph output: to the end). Constants (never written by an
    op, not a graph input) are weights and live in flash. ``bytes_per_element`` overrides
    the tensor's own dtype size (1: what an int8 file would hold).
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    ops = interpreter._get_ops_details()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    inputs = {d["index"] for d in interpreter.get_input_details()}
    outputs = {d["index"] for d in interpreter.get_output_details()}
    born = {i: -1 for i in inputs}
    for k, op in enumerate(ops):
        for t in op["outputs"]:
            born[t] = k
    last = dict(born)
    for k, op in enumerate(ops):
        for t in op["inputs"]:
            if t in born:
                last[t] = max(last[t], k)
    for t in outputs:
        last[t] = len(ops)

    def size(t: int) -> int:
        detail = tensors[t]
        item = bytes_per_element or np.dtype(detail["dtype"]).itemsize
        return int(math.prod(int(s) for s in detail["shape"])) * item

    best = (0, -1)
    for k in range(len(ops)):
        live = sum(size(t) for t in born if born[t] <= k <= last[t])
        best = max(best, (live, k))
    return Liveness(best[0], ops[best[1]]["op_name"], best[1], len(ops))


#: Layers a converter fuses into the op before them or that only relabel a buffer.
_IN_PLACE = ("BatchNormalization", "ReLU", "Activation", "Dropout", "Flatten", "Reshape")


def keras_lower_bound(model: object) -> int:
    """Largest sum of live activations of a Keras graph, one byte per element.

    Walks the nodes in topological order; batch norms, activations, dropout, flatten and
    reshape write into their input's buffer (what the converter's fusion gives at best),
    every other layer into a new one that lives until its last reader.
    """
    nodes = [
        n for d in sorted(model._nodes_by_depth, reverse=True) for n in model._nodes_by_depth[d]
    ]
    buffer: dict[int, int] = {}  # id(KerasTensor) -> buffer number
    sizes: list[int] = []
    born: list[int] = []
    last: list[int] = []
    for k, node in enumerate(nodes):
        ins = [buffer[id(t)] for t in node.keras_inputs if id(t) in buffer]
        for b in ins:
            last[b] = k
        (out,) = node.outputs if isinstance(node.outputs, list) else [node.outputs]
        if ins and type(node.layer).__name__ in _IN_PLACE:
            buffer[id(out)] = ins[0]
            continue
        buffer[id(out)] = len(sizes)
        sizes.append(int(math.prod(int(s) for s in out.shape[1:])))
        born.append(k)
        last.append(k)
    for t in model.outputs:
        last[buffer[id(t)]] = len(nodes)
    return max(
        sum(s for s, b, e in zip(sizes, born, last, strict=True) if b <= k <= e)
        for k in range(len(nodes))
    )


def _representative(x: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    def samples() -> Iterator[list[np.ndarray]]:
        for i in range(len(x)):
            yield [x[i : i + 1]]

    return samples


def int8_file(name: str, strategy: str, *, seed: int = 0) -> tuple[bytes, bytes, int]:
    """(un-lowered fp32 file, lowered int8 file, Keras lower bound) of one benchmark model."""
    from tfhsi._keras import tfmot

    zoo, patch, bands = MODELS[name]
    model = build_model(zoo, bands=bands, n_classes=N_CLASSES, patch_size=patch, seed=seed)
    original = convert(model, "fp32")
    lowered, _ = lower_conv3d(model, strategy=strategy)
    if name == "chain":
        lowered = tfmot.quantization.keras.quantize_model(lowered)
    rng = np.random.default_rng(seed)
    x5 = rng.normal(size=(CALIBRATION, patch, patch, bands, 1)).astype(np.float32)
    content = convert(lowered, "int8", representative=_representative(lowered_input(x5)))
    return original, content, keras_lower_bound(model)


def measure(name: str, strategy: str) -> Row:
    original, content, keras_bound = int8_file(name, strategy)
    bound = liveness(original, bytes_per_element=1)
    own = liveness(content)
    arena = find_min_arena(content, source=f"{name} ({strategy})")
    return Row(
        model=name,
        strategy=strategy,
        flash_bytes=len(content),
        arena_bytes=arena.min_bytes,
        graph_peak_bytes=own.peak_bytes,
        peak_op=f"#{own.peak_index} {own.peak_op}",
        ops=own.ops,
        lower_bound_bytes=keras_bound,
        tflite_bound_bytes=bound.peak_bytes,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help=f"of {', '.join(MODELS)} (default: all)")
    parser.add_argument("--strategies", nargs="+", default=["auto"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; valid: {', '.join(MODELS)}")
    args.models = args.models or list(MODELS)
    rows = []
    print(
        f"{'model':10s} {'strategy':8s} {'lower bound':>12s} {'fp32 graph':>11s} {'graph peak':>11s} "
        f"{'TFLM arena':>11s} {'flash':>9s} {'ops':>4s}  peak at"
    )
    for name in args.models:
        for strategy in args.strategies:
            row = measure(name, strategy)
            rows.append(row)
            print(
                f"{row.model:10s} {row.strategy:8s} {row.lower_bound_bytes:12,d} "
                f"{row.tflite_bound_bytes:11,d} "
                f"{row.graph_peak_bytes:11,d} {row.arena_bytes:11,d} {row.flash_bytes:9,d} "
                f"{row.ops:4d}  {row.peak_op}",
                flush=True,
            )
    if args.json:
        write_json(args.json, [asdict(r) for r in rows])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
