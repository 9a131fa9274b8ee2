"""Run a ``.tflite`` model on the LiteRT interpreter with a Keras-like ``predict``.

This is the only module in tfhsi that builds a LiteRT interpreter (``ai_edge_litert``,
not the deprecated ``tf.lite.Interpreter``); it does not import TensorFlow.
:meth:`TFLiteModel.predict` takes float patches of any batch size and returns float
scores, quantising integer inputs and dequantising integer outputs, so it can be handed
to :func:`tfhsi.train.evaluate.evaluate` exactly like ``keras_model.predict_on_batch``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from tfhsi.errors import (
    ConfigError,
    DataFormatError,
    SetupError,
    TfhsiError,
    UnsupportedError,
)
from tfhsi.native import quiet_native_stderr
from tfhsi.tflite_file import HOW_TO_EXPORT, read_tflite

try:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise SetupError(
        f"cannot import the LiteRT interpreter ({exc}). Install it with "
        "`pip install 'ai-edge-litert==2.3.*'`."
    ) from exc

__all__ = ["TFLiteModel"]


def _quantization(detail: dict[str, Any], *, source: str) -> tuple[float, int] | None:
    params = detail["quantization_parameters"]
    scales, zero_points = params["scales"], params["zero_points"]
    if len(scales) == 0:
        return None
    if len(scales) > 1:
        raise UnsupportedError(
            f"{source}: tensor {detail['name']!r} is quantised per axis; only per-tensor "
            "quantised model inputs and outputs are supported"
        )
    return float(scales[0]), int(zero_points[0])


def _shape(detail: dict[str, Any]) -> tuple[int | None, ...]:
    return tuple(None if d < 0 else int(d) for d in detail["shape_signature"])


class TFLiteModel:
    """A ``.tflite`` classifier on the LiteRT interpreter.

    Args:
        model: Path to a ``.tflite`` file, or its bytes.
        num_threads: CPU threads for the interpreter (>= 1); ``None`` lets LiteRT choose.
        xnnpack: Apply LiteRT's default XNNPACK delegate; ``False`` runs the built-in
            kernels only (``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``).

    Attributes:
        source: The file path, or ``"<bytes>"``, as used in error messages.
        input_shape: Input shape with ``None`` for dynamic dimensions, e.g. ``(1, 11, 11, 30)``.
        input_dtype: numpy dtype of the input tensor.
        output_shape: Output shape, e.g. ``(1, 16)``.
        output_dtype: numpy dtype of the output tensor.
        input_quantization: ``(scale, zero_point)`` of an integer input, else ``None``.
        output_quantization: ``(scale, zero_point)`` of an integer output, else ``None``.

    Raises:
        ModelFileNotFoundError: if the path does not exist.
        DataFormatError: if the content is not a loadable TFLite flatbuffer.
        UnsupportedError: for ops this LiteRT lacks (e.g. Select TF ops) or a model
            without exactly one input and one output.
        ConfigError: for an invalid ``num_threads``.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes,
        *,
        num_threads: int | None = None,
        xnnpack: bool = True,
    ) -> None:
        if num_threads is not None and (
            isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1
        ):
            raise ConfigError(f"num_threads must be an integer >= 1 or None, got {num_threads!r}")
        self.source, content = read_tflite(model)
        self._content = content  # the interpreter reads from this buffer; keep it alive
        resolver = (
            OpResolverType.BUILTIN if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        try:
            with quiet_native_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate ..."
                self._interpreter = Interpreter(
                    model_content=content,
                    num_threads=num_threads,
                    experimental_op_resolver_type=resolver,
                )
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise self._load_error(exc) from exc
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise UnsupportedError(
                f"{self.source} has {len(inputs)} inputs and {len(outputs)} outputs; "
                "only single-input, single-output classifiers are supported"
            )
        self._in, self._out = inputs[0], outputs[0]
        self.input_shape = _shape(self._in)
        self.output_shape = _shape(self._out)
        self.input_dtype = np.dtype(self._in["dtype"])
        self.output_dtype = np.dtype(self._out["dtype"])
        self.input_quantization = _quantization(self._in, source=self.source)
        self.output_quantization = _quantization(self._out, source=self.source)
        self._current_shape = tuple(int(d) for d in self._in["shape"])
        self.xnnpack = xnnpack
        self.num_threads = num_threads

    def _load_error(self, exc: Exception) -> TfhsiError:
        text = str(exc)
        if "Didn't find op" in text or "Flex" in text or "Select TensorFlow" in text:
            return UnsupportedError(
                f"LiteRT cannot run {self.source}: {text.strip()}. The model uses ops outside "
                "the TFLite builtins (e.g. Select TF ops); export it with builtin ops only"
            )
        return DataFormatError(
            f"LiteRT could not load {self.source}: {text.strip()}. The file may be truncated "
            f"or corrupt; {HOW_TO_EXPORT}"
        )

    def __repr__(self) -> str:
        return (
            f"TFLiteModel({self.source!r}, input={self.input_shape} {self.input_dtype}, "
            f"output={self.output_shape} {self.output_dtype}, xnnpack={self.xnnpack})"
        )

    @property
    def fixed_batch(self) -> int | None:
        """The model's fixed batch size (usually 1), or ``None`` when it is dynamic."""
        return self.input_shape[0]

    def _check_input(self, x: np.ndarray) -> None:
        expected = self.input_shape
        sample = expected[1:]
        matches = x.ndim == len(expected) and all(
            e is None or e == d for e, d in zip(sample, x.shape[1:], strict=True)
        )
        if matches:
            return
        shown = "(" + ", ".join("None" if d is None else str(d) for d in expected) + ")"
        if x.ndim == len(sample) and all(
            e is None or e == d for e, d in zip(sample, x.shape, strict=True)
        ):
            raise DataFormatError(
                f"{self.source} expects input {shown} but got a single sample of shape "
                f"{x.shape}; add a batch axis (x[None])"
            )
        raise DataFormatError(
            f"{self.source}: model expects input {shown} but got patches of shape "
            f"{x.shape[1:]}: build the split/patches with the model's patch size and bands "
            "(PCA? the number of bands must match the one the model was trained on)"
        )

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Converts real-valued input to the model's input dtype.

        Integer inputs use ``round(x / scale) + zero_point`` (rounding half away from zero,
        as TFLite's quantize kernel), clipped to the dtype's range; float inputs are cast.
        """
        x = np.asarray(x)
        if self.input_dtype.kind == "f":
            return np.ascontiguousarray(x, dtype=self.input_dtype)
        v = x.astype(np.float32)
        if self.input_quantization is not None:
            scale, zero_point = self.input_quantization
            v = v / np.float32(scale)
            v = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)) + np.float32(zero_point)
        else:
            v = np.rint(v)
        info = np.iinfo(self.input_dtype)
        return np.ascontiguousarray(np.clip(v, info.min, info.max).astype(self.input_dtype))

    def dequantize_output(self, raw: np.ndarray) -> np.ndarray:
        """Maps a raw output tensor to float32: ``scale * (q - zero_point)`` if quantised."""
        raw = np.asarray(raw)
        if self.output_quantization is None:
            return raw.astype(np.float32)
        scale, zero_point = self.output_quantization
        return (np.float32(scale) * (raw.astype(np.float32) - np.float32(zero_point))).astype(
            np.float32
        )

    def _ensure_shape(self, shape: tuple[int, ...]) -> None:
        if shape == self._current_shape:
            return
        index = self._in["index"]
        self._interpreter.resize_tensor_input(index, list(shape), strict=True)
        self._interpreter.allocate_tensors()
        self._current_shape = shape

    def _run(self, batch: np.ndarray) -> np.ndarray:
        self._ensure_shape(tuple(batch.shape))
        self._interpreter.set_tensor(self._in["index"], batch)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._out["index"])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Scores a batch of real-valued inputs.

        Args:
            x: ``(N, *sample_shape)`` inputs, any N; integer models get them quantised
                with the input scale / zero point (pass real values, not quantised ones).

        Returns:
            ``(N, C)`` float32 scores (dequantised when the model output is integer).

        Raises:
            DataFormatError: if the sample shape does not match the model's input.
        """
        x = np.asarray(x)
        self._check_input(x)
        n = x.shape[0]
        if n == 0:
            return np.zeros((0, *(d or 0 for d in self.output_shape[1:])), np.float32)
        q = self.quantize_input(x)
        fixed = self.fixed_batch
        if fixed is None:
            raw = self._run(q)
        else:
            chunks = []
            for start in range(0, n, fixed):
                chunk = q[start : start + fixed]
                k = len(chunk)
                if k < fixed:  # pad the last chunk; the padded rows are dropped
                    pad = np.zeros((fixed - k, *chunk.shape[1:]), chunk.dtype)
                    chunk = np.concatenate([chunk, pad])
                chunks.append(self._run(chunk)[:k])
            raw = np.concatenate(chunks)
        return self.dequantize_output(raw)

    def invoke_raw(self, x_quantized_batch1: np.ndarray) -> np.ndarray:
        """Runs one already-quantised batch and returns the raw output tensor.

        Args:
            x_quantized_batch1: Input in the model's own dtype (e.g. int8, see
                :meth:`quantize_input`) with the model's input shape (batch 1 for
                fixed-batch models).

        Returns:
            The output tensor as stored by LiteRT (e.g. int8), not dequantised.

        Raises:
            DataFormatError: for a dtype or shape other than the model's input.
        """
        x = np.asarray(x_quantized_batch1)
        if x.dtype != self.input_dtype:
            raise DataFormatError(
                f"invoke_raw takes the model's raw input dtype {self.input_dtype}, got "
                f"{x.dtype}; quantise with quantize_input() or use predict() for real values"
            )
        self._check_input(x)
        fixed = self.fixed_batch
        if fixed is not None and x.shape[0] != fixed:
            raise DataFormatError(
                f"invoke_raw takes exactly one model batch of {fixed}, got {x.shape[0]} "
                "samples; use predict() for any batch size"
            )
        return self._run(np.ascontiguousarray(x))

    def ops(self) -> list[dict[str, Any]]:
        """The model's operators in execution order, as LiteRT lists them.

        Each dict has ``op_name`` (e.g. ``"CONV_2D"``), ``inputs`` and ``outputs`` (tensor
        indices, ``-1`` for an omitted optional input). Nodes that stand for a delegate
        (XNNPACK) are left out, so the list is the same with and without XNNPACK.
        """
        return [op for op in self._interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]

    def tensors(self) -> dict[int, dict[str, Any]]:
        """Tensor details (``name``, ``shape``, ``dtype``, quantisation) by tensor index."""
        return {t["index"]: t for t in self._interpreter.get_tensor_details()}

    def invoke_timings(self, x_raw: np.ndarray, *, runs: int, warmup: int = 0) -> np.ndarray:
        """Times ``invoke()`` alone on one fixed, already-quantised input.

        The input is set once; ``warmup`` untimed invocations come first, then ``runs``
        timed ones (``time.perf_counter_ns`` around each ``invoke()``).

        Returns:
            ``(runs,)`` float64 seconds, one per timed invocation.

        Raises:
            DataFormatError: for a dtype or shape other than the model's input batch.
            ConfigError: for ``runs < 1`` or ``warmup < 0``.
        """
        if runs < 1 or warmup < 0:
            raise ConfigError(f"need runs >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
        x = np.asarray(x_raw)
        if x.dtype != self.input_dtype:
            raise DataFormatError(
                f"invoke_timings takes the model's raw input dtype {self.input_dtype}, got {x.dtype}"
            )
        self._check_input(x)
        self._ensure_shape(tuple(x.shape))
        self._interpreter.set_tensor(self._in["index"], np.ascontiguousarray(x))
        invoke = self._interpreter.invoke
        for _ in range(warmup):
            invoke()
        times = np.empty(runs, np.float64)
        clock = time.perf_counter_ns
        for i in range(runs):
            start = clock()
            invoke()
            times[i] = clock() - start
        return times * 1e-9
