"""The arithmetic of Conv3D lowering: output lengths, TF padding, the two kernels, costs.

NumPy only (no TensorFlow), so the maths can be read and tested on its own. Axis
names follow :mod:`tfhsi.compress.lower`: ``h, w`` spatial, ``d`` spectral (depth),
``c`` channels; a folded tensor stores element ``(h, w, d, c)`` at ``(h, w, d * C + c)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfhsi.conv_axes import AxisPlan


def dense_kernel(kernel: np.ndarray, depth: AxisPlan) -> np.ndarray:
    """The banded ``(kh, kw, D_in * C_in, D_out * C_out)`` Conv2D kernel of a Conv3D kernel.

    Block ``(d_in, d_out)`` holds ``kernel[:, :, t]`` where ``d_in = start(d_out) + t * dilation``
    and zeros elsewhere; taps that fall into the spectral padding are simply left out,
    which is what zero padding contributes.
    """
    kh, kw, kd, c_in, c_out = kernel.shape
    out = np.zeros((kh, kw, depth.size * c_in, depth.out * c_out), dtype=kernel.dtype)
    for d_out in range(depth.out):
        start = depth.window_start(d_out)
        for t in range(kd):
            d_in = start + t * depth.dilation
            if 0 <= d_in < depth.size:
                out[:, :, d_in * c_in : (d_in + 1) * c_in, d_out * c_out : (d_out + 1) * c_out] = (
                    kernel[:, :, t]
                )
    return out


def sliced_kernel(kernel: np.ndarray) -> np.ndarray:
    """The ``(1, kd, kh * kw * C_in, C_out)`` kernel of the spectral Conv2D.

    Input channel ``(i * kw + j) * C_in + c`` is spatial tap ``(i, j)`` of channel ``c``.
    """
    kh, kw, kd, c_in, c_out = kernel.shape
    return kernel.transpose(2, 0, 1, 3, 4).reshape(1, kd, kh * kw * c_in, c_out)


def fold_batch_norm(
    kernel: np.ndarray,
    bias: np.ndarray | None,
    *,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    mean: np.ndarray,
    variance: np.ndarray,
    epsilon: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Kernel and bias of ``BN(conv(x))`` (inference statistics) as one convolution."""
    scale = 1.0 / np.sqrt(variance.astype(np.float64) + epsilon)
    if gamma is not None:
        scale = scale * gamma
    shift = -mean * scale
    if beta is not None:
        shift = shift + beta
    if bias is not None:
        shift = shift + bias * scale
    folded = kernel.astype(np.float64) * scale  # broadcast over the last (output) axis
    return folded.astype(kernel.dtype), shift.astype(kernel.dtype)


@dataclass(frozen=True)
class ConvCosts:
    """Weights (kernel + bias) and multiply-accumulates per sample of one lowered Conv3D."""

    params_before: int
    params_dense: int
    params_sliced: int
    macs_before: int
    macs_dense: int
    macs_sliced: int


def conv_costs(
    *,
    kernel_shape: tuple[int, int, int, int, int],
    use_bias: bool,
    height: AxisPlan,
    width: AxisPlan,
    depth: AxisPlan,
) -> ConvCosts:
    """What each strategy costs; "sliced" keeps the Conv3D's own weights and MACs."""
    kh, kw, kd, c_in, c_out = kernel_shape
    positions = height.out * width.out
    kernel = kh * kw * kd * c_in * c_out
    dense_kernel_size = kh * kw * depth.size * c_in * depth.out * c_out
    bias = c_out if use_bias else 0
    return ConvCosts(
        params_before=kernel + bias,
        params_dense=dense_kernel_size + bias * depth.out,
        params_sliced=kernel + bias,
        macs_before=positions * depth.out * kernel,
        macs_dense=positions * dense_kernel_size,
        macs_sliced=positions * depth.out * kernel,
    )


#: "auto" takes the single dense CONV_2D only while its zero blocks cost at most this
#: factor in weights and MACs; beyond it the sliced form (exact weights) wins.
AUTO_DENSE_MAX_RATIO = 1.5


def lean_applies(kernel_shape: tuple[int, ...], height: AxisPlan, width: AxisPlan) -> bool:
    """The "lean" form needs spatial stride 1 and more than one spatial tap.

    (One tap needs no gathering at all: "sliced" is then a RESHAPE and one CONV_2D.)
    """
    kh, kw = kernel_shape[:2]
    return height.stride == width.stride == 1 and kh * kw > 1


def lean_direct(height: AxisPlan, depth: AxisPlan) -> bool:
    """The "lean" Conv2D runs on the gathered buffer as it is (no space-to-depth view).

    Conv2D cannot combine a stride with a dilation: a spectral stride with a row or
    spectral dilation takes the space-to-depth view instead.
    """
    return depth.stride == 1 or (height.dilation == 1 and depth.dilation == 1)


def choose_strategy(strategy: str, costs: ConvCosts, *, lean_ok: bool) -> str:
    """Resolves ``"auto"`` for one layer ("lean" falls back to "sliced" where it cannot apply)."""
    if strategy == "lean":
        return "lean" if lean_ok else "sliced"
    if strategy != "auto":
        return strategy
    if costs.params_dense <= AUTO_DENSE_MAX_RATIO * costs.params_before:
        return "dense"
    return "lean" if lean_ok else "sliced"


@dataclass(frozen=True)
class LeanPlan:
    """The "lean" form's spectral layout: depth padded to ``groups * stride`` positions.

    Space-to-depth on the spectral axis: padded position ``g * stride + s`` becomes group
    ``g``, phase ``s``, so a window of ``span`` positions with stride ``stride`` is a window
    of ``kernel`` groups with stride 1 (Conv2D cannot combine a stride with the dilation
    that carries the spatial taps). ``extra`` outputs past ``out`` are cropped.
    """

    before: int
    after: int
    groups: int
    kernel: int
    extra: int


def lean_plan(depth: AxisPlan) -> LeanPlan:
    """Padding and grouping of the spectral axis for :func:`lean_kernel`."""
    stride = depth.stride
    kernel = -(-depth.span // stride)
    groups = max(-(-(depth.size + depth.pad_before) // stride), depth.out - 1 + kernel)
    after = groups * stride - depth.size - depth.pad_before
    return LeanPlan(
        before=depth.pad_before,
        after=after,
        groups=groups,
        kernel=kernel,
        extra=groups - kernel + 1 - depth.out,
    )


def lean_kernel(kernel: np.ndarray, depth: AxisPlan) -> np.ndarray:
    """The ``(kh, K', stride * C_in * kw, C_out)`` Conv2D kernel of the "lean" form.

    Its input row ``h * Wo + w`` holds, for group ``g``, channel ``(s * C_in + c) * kw + j``
    = padded depth ``g * stride + s`` of channel ``c`` at spatial ``(h, w + j)``; tap ``t``
    of the Conv3D sits at padded offset ``p = t * dilation``, i.e. group ``p // stride``,
    phase ``p % stride`` (the other phases are zeros).
    """
    kh, kw, kd, c_in, c_out = kernel.shape
    plan = lean_plan(depth)
    stride = depth.stride
    out = np.zeros((kh, plan.kernel, stride * c_in * kw, c_out), dtype=kernel.dtype)
    for t in range(kd):
        group, phase = divmod(t * depth.dilation, stride)
        for c in range(c_in):
            for j in range(kw):
                out[:, group, (phase * c_in + c) * kw + j] = kernel[:, j, t, c]
    return out
