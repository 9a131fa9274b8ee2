"""Which TFLite builtin ops each deployment target can run, and where that comes from.

Op names are TFLite ``BuiltinOperator`` names, as :mod:`tfhsi.export.graph` reports them.
These are data, not code: when a runtime changes, update the set and its source note.

LiteRT + XNNPACK (``ai-edge-litert`` 2.3, the delegate LiteRT applies by default)
    Source: ``tensorflow/lite/delegates/xnnpack/README.md`` (its float32 and "quantized
    operators" lists), extended and corrected by measurement: every op below was checked
    by building a model with it, converting it with tfhsi's presets and seeing whether
    LiteRT 2.3 (x86-64) replaced it by a DELEGATE node (tests/export/test_targets.py
    keeps checking the models tfhsi makes). Measured *not* delegated: CONV_3D and
    RESIZE_NEAREST_NEIGHBOR in any precision; int8 AVERAGE_POOL_2D, BATCH_MATMUL,
    SOFTMAX, PRELU, HARD_SWISH, ABS, SQRT, RSQRT, DIV, MAXIMUM, MINIMUM, EXP, GELU,
    SQUARED_DIFFERENCE; hybrid (dynamic-range) DEPTHWISE_CONV_2D; anything with int16
    activations (int16x8 models run entirely on the built-in kernels); CONV_2D and
    FULLY_CONNECTED with int4 (packed) weights from ai-edge-quantizer 0.10 (the int8 ops
    around them stay delegated, so such a file runs in several partitions).

TFLite Micro (``tflite-micro`` Python runtime, the op resolver of ``python_ops_resolver``)
    Source: the ``MicroMutableOpResolver::Add*`` methods of
    ``tensorflow/lite/micro/micro_mutable_op_resolver.h`` and the kernels compiled into
    the installed ``tflite_micro/python/tflite_micro/_runtime.so`` (its ``Register_*``
    symbols), builtins only. There is no CONV_3D kernel. Kernel limits:
    ``kernels/strided_slice_common.cc`` (``kMaxDim = 4``) and ``kernels/concatenation.cc``
    (``kMaxInputNum = 10``). Measured with the runtime: hybrid models fail ("Hybrid models
    are not supported on TFLite Micro"), DEQUANTIZE takes int8/int16/uint8 only (so
    float16-weight models fail). int4 (packed) weights, measured with ai-edge-quantizer 0.10
    files: CONV_2D runs; FULLY_CONNECTED fails to prepare (``fully_connected_common.cc``:
    "input->type == kTfLiteInt8 && filter->type != kTfLiteInt4"); no other op was seen with
    int4 weights, so none is assumed to run.

Edge TPU
    Source: coral.ai, "TensorFlow models on the Edge TPU", *Supported operations* and
    *Model requirements* (compiler 16): 8-bit quantised tensors, static shapes, constant
    parameters, tensors 1-3-D (more dimensions only if all but the 3 innermost are 1),
    and the op table below. DEQUANTIZE is not in the table.
"""

from __future__ import annotations

__all__ = [
    "EDGETPU_MAX_INNER_DIMS",
    "EDGETPU_OPS",
    "TFLM_CONCAT_MAX_INPUTS",
    "TFLM_INT4_WEIGHT_OPS",
    "TFLM_MAX_RANK",
    "TFLM_OPS",
    "XNNPACK_FLOAT_OPS",
    "XNNPACK_HYBRID_OPS",
    "XNNPACK_INT8_OPS",
    "XNNPACK_MAX_RANK",
    "XNNPACK_STATIC_WEIGHT_OPS",
]

# --- LiteRT + XNNPACK -----------------------------------------------------------------
XNNPACK_FLOAT_OPS = frozenset(
    {
        # README float32 list
        "ABS", "ADD", "AVERAGE_POOL_2D", "CEIL", "CONV_2D", "DEPTH_TO_SPACE",
        "DEPTHWISE_CONV_2D", "DIV", "ELU", "FLOOR", "FULLY_CONNECTED", "HARD_SWISH",
        "LEAKY_RELU", "LOGISTIC", "MAX_POOL_2D", "MAXIMUM", "MEAN", "MINIMUM", "MUL", "NEG",
        "PAD", "PRELU", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR",
        "ROUND", "SOFTMAX", "SQRT", "SQUARE", "SQUARED_DIFFERENCE", "SUB",
        # measured with LiteRT 2.3
        "BATCH_MATMUL", "CONCATENATION", "EXP", "GELU", "REDUCE_MAX", "RSQRT", "SLICE",
        "SPACE_TO_DEPTH", "SPLIT", "STRIDED_SLICE", "SUM", "TANH", "TRANSPOSE",
        "TRANSPOSE_CONV",
    }
)  # fmt: skip
XNNPACK_INT8_OPS = frozenset(
    {
        # README "quantized operators" list
        "ADD", "CONV_2D", "DEPTHWISE_CONV_2D", "ELU", "FULLY_CONNECTED", "LOGISTIC",
        "MAX_POOL_2D", "MUL", "PAD", "SUB",
        # measured with LiteRT 2.3
        "CONCATENATION", "DEPTH_TO_SPACE", "LEAKY_RELU", "MEAN", "REDUCE_MAX", "RESHAPE",
        "SLICE", "SPACE_TO_DEPTH", "SPLIT", "STRIDED_SLICE", "SUM", "TANH", "TRANSPOSE",
        "TRANSPOSE_CONV",
    }
)  # fmt: skip
# int8 weights with float32 activations (dynamic-range quantisation), measured.
XNNPACK_HYBRID_OPS = frozenset({"CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"})
# Filter (and bias) must be static for these (README).
XNNPACK_STATIC_WEIGHT_OPS = frozenset(
    {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}
)
XNNPACK_MAX_RANK = 6  # XNN_MAX_TENSOR_DIMS in xnnpack.h

# --- TFLite Micro ---------------------------------------------------------------------
TFLM_OPS = frozenset(
    {
        "ABS", "ADD", "ADD_N", "ARG_MAX", "ARG_MIN", "ASSIGN_VARIABLE", "AVERAGE_POOL_2D",
        "BATCH_MATMUL", "BATCH_TO_SPACE_ND", "BROADCAST_ARGS", "BROADCAST_TO", "CALL_ONCE",
        "CAST", "CEIL", "CONCATENATION", "CONV_2D", "COS", "CUMSUM", "DEPTH_TO_SPACE",
        "DEPTHWISE_CONV_2D", "DEQUANTIZE", "DIV", "DYNAMIC_UPDATE_SLICE", "ELU",
        "EMBEDDING_LOOKUP", "EQUAL", "EXP", "EXPAND_DIMS", "FILL", "FLOOR", "FLOOR_DIV",
        "FLOOR_MOD", "FULLY_CONNECTED", "GATHER", "GATHER_ND", "GREATER", "GREATER_EQUAL",
        "HARD_SWISH", "IF", "L2_NORMALIZATION", "L2_POOL_2D", "LEAKY_RELU", "LESS",
        "LESS_EQUAL", "LOG", "LOG_SOFTMAX", "LOGICAL_AND", "LOGICAL_NOT", "LOGICAL_OR",
        "LOGISTIC", "MAX_POOL_2D", "MAXIMUM", "MEAN", "MINIMUM", "MIRROR_PAD", "MUL", "NEG",
        "NOT_EQUAL", "PACK", "PAD", "PADV2", "PRELU", "QUANTIZE", "READ_VARIABLE",
        "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6", "RESHAPE", "RESIZE_BILINEAR",
        "RESIZE_NEAREST_NEIGHBOR", "REVERSE_V2", "ROUND", "RSQRT", "SELECT_V2", "SHAPE",
        "SIN", "SLICE", "SOFTMAX", "SPACE_TO_BATCH_ND", "SPACE_TO_DEPTH", "SPLIT", "SPLIT_V",
        "SQRT", "SQUARE", "SQUARED_DIFFERENCE", "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM",
        "SVDF", "TANH", "TRANSPOSE", "TRANSPOSE_CONV", "UNIDIRECTIONAL_SEQUENCE_LSTM",
        "UNPACK", "VAR_HANDLE", "WHILE", "ZEROS_LIKE",
    }
)  # fmt: skip
TFLM_INT4_WEIGHT_OPS = frozenset({"CONV_2D"})  # ops whose TFLM kernel takes int4 weights
TFLM_MAX_RANK = {"STRIDED_SLICE": 4}  # input rank limit per op
TFLM_CONCAT_MAX_INPUTS = 10

# --- Edge TPU -------------------------------------------------------------------------
EDGETPU_OPS = frozenset(
    {
        "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D",
        "EXPAND_DIMS", "FULLY_CONNECTED", "L2_NORMALIZATION", "LOGISTIC", "MAX_POOL_2D",
        "MAXIMUM", "MEAN", "MINIMUM", "MUL", "PACK", "PAD", "PRELU", "QUANTIZE",
        "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE",
        "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE", "SOFTMAX",
        "SPACE_TO_DEPTH", "SPLIT", "SQUARED_DIFFERENCE", "SQUEEZE", "STRIDED_SLICE", "SUB",
        "SUM", "TANH", "TRANSPOSE", "TRANSPOSE_CONV", "UNIDIRECTIONAL_SEQUENCE_LSTM",
    }
)  # fmt: skip
EDGETPU_MAX_INNER_DIMS = 3  # only the 3 innermost dimensions may be larger than 1
