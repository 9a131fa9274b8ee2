"""Training options, importable without TensorFlow (recipes validate them instantly)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tfhsi.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Attributes:
        epochs: Maximum number of epochs.
        learning_rate: Initial Adam learning rate.
        schedule: ``cosine`` (decay to 0 over all epochs) or ``constant``.
        patience: Epochs without improvement of ``monitor`` before stopping; None = never.
            Ignored without a validation set (all epochs run).
        monitor: Validation quantity that picks the best epoch (``val_accuracy`` or
            ``val_loss``); ties go to the better other one, then to the earlier epoch
            (:func:`tfhsi.train.fit.best_epoch`). Without a validation set the last epoch is
            kept.
        seed: Seeds Python, NumPy and TensorFlow.
        deterministic: Ask TensorFlow for deterministic kernels (slower on some ops).
        tensorboard: Write TensorBoard logs to ``<out>/tensorboard`` (needs the tensorboard package).
        best_after: Epochs that can be neither the best epoch nor count towards early
            stopping (e.g. pruning: only epochs after the target sparsity is reached).
        jit_compile: XLA-compile the training step (callers that build from the registry
            set it from :func:`tfhsi.models.trains_with_xla`).
    """

    epochs: int = 100
    learning_rate: float = 1e-3
    schedule: Literal["cosine", "constant"] = "cosine"
    patience: int | None = 20
    monitor: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    seed: int = 0
    deterministic: bool = True
    tensorboard: bool = False
    best_after: int = 0
    jit_compile: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be ≥ 1, got {self.epochs}.")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}.")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}.")
        if not 0 <= self.best_after < self.epochs:
            raise ConfigError(f"best_after must be in [0, epochs), got {self.best_after}.")
        if self.monitor not in ("val_accuracy", "val_loss"):
            raise ConfigError(
                f"monitor must be 'val_accuracy' or 'val_loss', got {self.monitor!r}."
            )
