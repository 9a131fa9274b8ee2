"""The static verdicts agree with what the runtimes actually do with tfhsi's models.

XNNPACK: LiteRT replaces the ops it delegates by DELEGATE nodes; an op whose output is
produced inside a DELEGATE partition was delegated, the rest fall back to the built-in
kernels. TFLM: the tflite-micro Python runtime loads and invokes the model (or not).
"""

from __future__ import annotations

import pytest

from tfhsi.export import audit

CASES = [
    ("student2d", "fp32"),
    ("student2d", "fp16"),
    ("student2d", "dynamic"),
    ("student2d", "int8"),
    ("student2d", "int16x8"),
    ("student3d", "fp32"),
    ("student3d", "int8-mixed"),
    ("planted", "int8-mixed"),
]


def _not_delegated(content: bytes) -> set[str]:
    """Labels (NAME#index) of the ops LiteRT's default XNNPACK delegate did not take."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=content, experimental_op_resolver_type=OpResolverType.BUILTIN
    )
    interpreter.allocate_tensors()
    details = interpreter._get_ops_details()
    original = [d for d in details if d["op_name"] != "DELEGATE"]
    producer = {int(t): d["index"] for d in original for t in d["outputs"]}
    delegated: set[int] = set()
    for node in (d for d in details if d["op_name"] == "DELEGATE"):
        boundary = {int(t) for t in node["inputs"]}
        stack = [int(t) for t in node["outputs"]]
        while stack:
            tensor = stack.pop()
            if tensor in boundary or tensor not in producer or producer[tensor] in delegated:
                continue
            index = producer[tensor]
            delegated.add(index)
            stack.extend(int(t) for t in original[index]["inputs"] if t >= 0)
    return {f"{d['op_name']}#{d['index']}" for d in original if d["index"] not in delegated}


@pytest.mark.parametrize(("name", "preset"), CASES)
def test_xnnpack_verdict_matches_litert_delegation(converted, name, preset):
    data = converted(name, preset)
    verdict = audit(data).verdicts["litert-xnnpack"]
    measured = _not_delegated(data)
    assert set(verdict.failing_ops) == measured
    assert verdict.ok == (not measured)


@pytest.mark.parametrize(("name", "preset"), CASES)
def test_tflm_verdict_matches_the_tflm_runtime(converted, name, preset):
    report = audit(converted(name, preset), tflm_smoke=True)
    static_ok = audit(converted(name, preset)).verdicts["tflm"].ok
    assert static_ok == report.smoke[0].ok, report.smoke[0].detail
