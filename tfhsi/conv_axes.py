"""One axis of a convolution or pooling window under TensorFlow's padding rule (pure Python):
shared by the Conv3D lowering for export and the Conv3D-as-Conv2D training substitute."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AxisPlan:
    """One axis of a convolution or pooling window, with TensorFlow's padding rule.

    ``"same"`` pads ``total = max((out - 1) * stride + span - size, 0)`` with
    ``total // 2`` before and the rest after (the convention of every TF conv/pool op,
    applied to each axis on its own, which is what makes the lowering exact).
    """

    size: int
    kernel: int
    stride: int
    padding: str
    dilation: int = 1

    @property
    def span(self) -> int:
        """Extent of the (dilated) window."""
        return (self.kernel - 1) * self.dilation + 1

    @property
    def out(self) -> int:
        if self.padding == "same":
            return -(-self.size // self.stride)
        return max((self.size - self.span) // self.stride + 1, 0)

    @property
    def pad_before(self) -> int:
        return self.pad_total // 2

    @property
    def pad_after(self) -> int:
        return self.pad_total - self.pad_before

    @property
    def pad_total(self) -> int:
        if self.padding != "same":
            return 0
        return max((self.out - 1) * self.stride + self.span - self.size, 0)

    def window_start(self, index: int) -> int:
        """First input position (possibly negative, i.e. in the padding) of output ``index``."""
        return index * self.stride - self.pad_before
