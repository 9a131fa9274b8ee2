"""The TFLite Micro worker process and its client: one trial per JSON line.

``python -m tfhsi.profile._tflm_worker MODEL`` reads requests ``{"arena": N, "inputs":
path.npy, "outputs": path.npy, "record": bool}`` from stdin, builds a fresh TFLM interpreter
with an ``N``-byte arena, invokes it on each input (one all-zero input if none) and answers
one JSON line: ``ok``, ``error``, the native log (stdout and stderr of that trial, captured
at the file-descriptor level) and the input shape / dtype. Running TFLM out of process keeps
its native failures (messages on stderr, possible crashes) away from the caller.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfhsi.errors import DataFormatError, SetupError, UnsupportedError

__all__ = ["TflmWorker", "Trial", "unsupported_reason"]

#: Restarts after crashes before giving up on a model.
MAX_CRASHES = 5
_MISSING_OP = re.compile(r"Didn't find op for builtin opcode '([A-Z0-9_]+)'")
_MISSING_CUSTOM = re.compile(r"Didn't find op for custom opcode '([^']+)'")
_ARENA_HINTS = (
    "Failed to allocate",
    "Unable to allocate",
    "Arena size is too small",
    "memory",
    "available",
)


# --- worker side ----------------------------------------------------------------------
def _serve(model_path: str) -> None:  # pragma: no cover - runs in the worker process
    from tflite_micro.python.tflite_micro import runtime

    model = Path(model_path).read_bytes()
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    for line in sys.stdin:
        request = json.loads(line)
        with tempfile.TemporaryFile() as log:
            saved = os.dup(1), os.dup(2)
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                answer = _trial(runtime, model, request)
            except Exception as exc:
                answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])
            log.seek(0)
            answer["log"] = log.read().decode("utf-8", "replace")[-4000:]
        protocol.write(json.dumps(answer) + "\n")


def _trial(
    runtime: Any, model: bytes, request: dict[str, Any]
) -> dict[str, Any]:  # pragma: no cover
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=int(request["arena"]))
    detail = interpreter.get_input_details(0)
    shape, dtype = tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"])
    has_inputs = bool(request.get("inputs"))
    samples = np.load(request["inputs"]) if has_inputs else np.zeros((1, *shape), dtype)
    outputs = []
    for x in samples:
        interpreter.set_input(np.ascontiguousarray(x.reshape(shape), dtype), 0)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_output(0)))
    answer: dict[str, Any] = {"ok": True, "input_shape": list(shape), "input_dtype": dtype.name}
    if request.get("outputs"):
        np.save(request["outputs"], np.stack(outputs))
    if request.get("record"):
        interpreter.print_allocations()  # to the captured log: "Arena allocation total N"
    return answer


# --- parent side ----------------------------------------------------------------------
@dataclass(frozen=True)
class Trial:
    """One TFLM run at a given arena size."""

    arena: int
    ok: bool
    log: str = ""
    error: str = ""
    crashed: bool = False
    input_shape: tuple[int, ...] = ()
    input_dtype: str = ""

    @property
    def out_of_memory(self) -> bool:
        """Failed for lack of arena (and not for a missing kernel)."""
        if self.ok or _MISSING_OP.search(self.log) or _MISSING_CUSTOM.search(self.log):
            return False
        return "allocate tensors" in self.error or any(h in self.log for h in _ARENA_HINTS)


class TflmWorker:
    """A TFLM worker process for one model; use as a context manager.

    Args:
        model: The ``.tflite`` content.
        source: How to name the model in error messages.
        timeout_s: A trial without an answer by then counts as a crash (the worker is
            killed and restarted).
    """

    def __init__(self, model: bytes, *, source: str = "<bytes>", timeout_s: float = 600.0) -> None:
        if model[4:8] != b"TFL3":
            raise DataFormatError(f"{source} is not a TFLite flatbuffer (no 'TFL3' identifier)")
        self.source = source
        self.timeout_s = timeout_s
        self._dir = tempfile.TemporaryDirectory(prefix="tfhsi-tflm-")
        self._model_path = Path(self._dir.name) / "model.tflite"
        self._model_path.write_bytes(model)
        self._proc: subprocess.Popen[str] | None = None
        self._count = 0
        self.crashes = 0

    def __enter__(self) -> TflmWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop()
        self._dir.cleanup()

    def _stop(self) -> None:
        if self._proc is not None:
            if self._proc.stdin:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout:
                self._proc.stdout.close()
            self._proc = None

    def _start(self) -> subprocess.Popen[str]:
        if self._proc is None:
            try:
                import tflite_micro  # noqa: F401  # fail here, in the parent, if missing
            except ImportError as exc:
                raise SetupError(
                    f"cannot import tflite_micro ({exc}); `pip install -e .` installs the "
                    "pinned tflite-micro package"
                ) from exc
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tfhsi.profile._tflm_worker", str(self._model_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                bufsize=1,
            )
        return self._proc

    def trial(
        self, arena: int, inputs: np.ndarray | None = None, *, record: bool = False
    ) -> tuple[Trial, np.ndarray | None]:
        """Builds a TFLM interpreter with ``arena`` bytes and runs ``inputs`` (N samples).

        Without inputs it runs one all-zero input. Returns the trial and, when inputs were
        given and the run succeeded, the ``(N, *output_shape)`` raw outputs.
        """
        self._count += 1
        request: dict[str, Any] = {"arena": int(arena), "record": record}
        if inputs is not None:
            request["inputs"] = str(Path(self._dir.name) / f"in{self._count}.npy")
            request["outputs"] = str(Path(self._dir.name) / f"out{self._count}.npy")
            np.save(request["inputs"], np.asarray(inputs))
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], self.timeout_s)
            line = proc.stdout.readline() if ready else ""
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            if proc.poll() is None:  # hung: no answer within the timeout
                proc.kill()
            code = proc.wait()
            self._proc = None
            self.crashes += 1
            if self.crashes > MAX_CRASHES:
                raise UnsupportedError(
                    f"TFLite Micro crashed {self.crashes} times on {self.source} "
                    f"(last: exit code {code} at arena {arena} bytes); it cannot run this model"
                )
            return Trial(
                arena, False, error=f"worker crashed (exit code {code})", crashed=True
            ), None
        answer = json.loads(line)
        trial = Trial(
            arena,
            bool(answer["ok"]),
            answer.get("log", ""),
            answer.get("error", ""),
            input_shape=tuple(answer.get("input_shape", ())),
            input_dtype=answer.get("input_dtype", ""),
        )
        outputs = None
        if trial.ok and inputs is not None:
            outputs = np.load(request["outputs"])
        return trial, outputs


def unsupported_reason(trial: Trial) -> str | None:
    """The op TFLM lacks (or another non-memory failure) named from the native log."""
    if trial.ok:
        return None
    found = _MISSING_OP.search(trial.log)
    if found:
        return f"TFLite Micro has no kernel for {found.group(1)}"
    custom = _MISSING_CUSTOM.search(trial.log)
    if custom:
        return f"TFLite Micro has no kernel for the custom op {custom.group(1)!r}"
    if trial.out_of_memory:
        return None
    detail = " | ".join(
        line.strip() for line in trial.log.strip().splitlines()[-4:] if line.strip()
    )
    return f"TFLite Micro failed: {trial.error or 'error'}{f' ({detail})' if detail else ''}"


if __name__ == "__main__":  # pragma: no cover - the worker process
    _serve(sys.argv[1])
