"""Small pieces every model family shares: scaled widths and seeded initialisers."""

from __future__ import annotations

from typing import Any


def scaled(channels: int, width: float) -> int:
    """``channels`` times the width multiplier, rounded, at least 1."""
    return max(1, round(channels * width))


def conv_length(size: int, kernel: int, stride: int = 1, padding: str = "valid") -> int:
    """Output length of a convolution or pooling along one axis (Keras rules)."""
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1


class Seeds:
    """Hands out initialisers and dropout seeds, each distinct, all derived from one seed.

    With ``seed=None`` it returns Keras' unseeded defaults.
    """

    def __init__(self, seed: int | None) -> None:
        self._seed = seed
        self._count = 0

    def next(self) -> int | None:
        """The next seed (``None`` when unseeded)."""
        if self._seed is None:
            return None
        self._count += 1
        return self._seed * 1000 + self._count

    def init(self, name: str = "he_normal") -> Any:
        """A fresh initialiser of class ``name`` ("he_normal", "glorot_uniform" ...)."""
        from tfhsi._keras import keras

        return keras.initializers.get({"class_name": name, "config": {"seed": self.next()}})
