"""Training any tf_keras classifier on streamed patches: resumable, seeded, early-stopped.

The rhythm: :func:`train_model` compiles (Adam, cosine or constant learning rate,
sparse cross-entropy on logits), fits with the callbacks below, and restores the best
weights. After an interruption (SIGINT, SIGTERM, crash) the same call with
``resume=True`` continues from the last finished epoch — model, optimizer and epoch
counter come from Keras' ``BackupAndRestore``; the history, best epoch and early-stopping
state are derived from ``history.json``, written atomically after every epoch. A run
that had finished is not trained again.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfhsi._keras import keras, tf
from tfhsi.atomic import atomic_path, write_json
from tfhsi.errors import ConfigError, SetupError
from tfhsi.train.config import TrainConfig

HISTORY = "history.json"
BEST_WEIGHTS = "best.weights.h5"
BACKUP_DIR = "backup"


@dataclass
class TrainResult:
    """What a training run achieved (all derived from ``history.json``)."""

    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int  # 1-based
    best_value: float
    stopped_early: bool
    completed: bool
    wall_time_s: float
    best_weights: Path
    config: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seeds Python, NumPy and TensorFlow; optionally deterministic TF kernels."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def compile_classifier(
    model: keras.Model, *, config: TrainConfig, steps_per_epoch: int, loss: Any = None
) -> None:
    """Compiles ``model`` (logits out) with Adam, the configured schedule and accuracy."""
    lr: float | keras.optimizers.schedules.LearningRateSchedule = config.learning_rate
    if config.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=max(1, config.epochs * steps_per_epoch)
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def balanced_class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """``n / (C · n_c)`` per class present in ``labels`` (0-based class indices)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return {i: float(w) for i, w in enumerate(weights) if present[i]}


def _load_history(out_dir: Path) -> dict[str, Any]:
    path = out_dir / HISTORY
    if not path.is_file():
        return {"epochs": [], "completed": False}
    return json.loads(path.read_text(encoding="utf-8"))


def _best(epochs: list[dict[str, float]], monitor: str, after: int = 0) -> tuple[int, float]:
    """1-based best epoch among epochs ``after + 1 ...`` (the last one if none) and its value."""
    after = min(after, len(epochs) - 1)
    values = [e[monitor] for e in epochs[after:]]
    pick = np.argmin if monitor.endswith("loss") else np.argmax
    index = int(pick(values))
    return after + index + 1, float(values[index])


class _Bookkeeper(keras.callbacks.Callback):
    """Persists per-epoch logs, saves the best weights and stops early — all resumable."""

    def __init__(self, out_dir: Path, config: TrainConfig, state: dict[str, Any]) -> None:
        super().__init__()
        self.out_dir = out_dir
        self.config = config
        self.state = state

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        # After a restore, epochs beyond the restored one are re-run: forget their logs.
        del self.state["epochs"][epoch:]
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items()}
        logs["epoch_time_s"] = time.perf_counter() - self._started
        if self.config.monitor not in logs:
            raise ConfigError(
                f"no {self.config.monitor!r} in the training logs (got {sorted(logs)}); "
                "pass a validation dataset."
            )
        if not math.isfinite(logs["loss"]):
            self.model.stop_training = True
        epochs = self.state["epochs"]
        epochs.append(logs)
        if len(epochs) <= self.config.best_after:  # not yet eligible (e.g. still pruning)
            write_json(self.out_dir / HISTORY, self.state)
            return
        best_epoch, _ = _best(epochs, self.config.monitor, self.config.best_after)
        if best_epoch == len(epochs):
            with atomic_path(self.out_dir / BEST_WEIGHTS) as tmp:
                self.model.save_weights(str(tmp))
        write_json(self.out_dir / HISTORY, self.state)
        patience = self.config.patience
        if patience is not None and len(epochs) - best_epoch >= patience:
            self.state["stopped_early"] = True
            self.model.stop_training = True


class _RichProgress(keras.callbacks.Callback):
    def __init__(self, report: Callable[[str], None], epochs: int) -> None:
        super().__init__()
        self.report = report
        self.epochs = epochs
        self._t0 = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        parts = [
            f"{k} {v:.4f}"
            for k, v in logs.items()
            if k in ("loss", "accuracy", "val_loss", "val_accuracy")
        ]
        self.report(
            f"epoch {epoch + 1}/{self.epochs}  "
            + "  ".join(parts)
            + f"  {time.perf_counter() - self._t0:.1f}s"
        )


def train_model(
    model: keras.Model,
    train_data: tf.data.Dataset,
    val_data: tf.data.Dataset,
    *,
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    class_weight: dict[int, float] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    compile: bool = True,
    report: Callable[[str], None] | None = None,
) -> TrainResult:
    """Fits ``model`` with validation, best-checkpointing, early stopping and resume.

    Args:
        model: A tf_keras classifier producing logits.
        train_data: Batched ``(x, y)`` dataset, one pass = one epoch (not repeated).
        val_data: Batched ``(x, y)`` validation dataset.
        config: See :class:`TrainConfig`.
        out_dir: Where ``history.json``, ``best.weights.h5`` and the resume backup live.
        resume: Continue an interrupted run in ``out_dir``; without it an existing run there
            is an error (never silently overwritten).
        class_weight: Optional per-class loss weights (see :func:`balanced_class_weights`).
        callbacks: Extra callbacks (e.g. pruning's ``UpdatePruningStep``).
        compile: Compile with :func:`compile_classifier`; False if the caller compiled.
        report: Receives one line per epoch (the CLI prints it with rich).

    Returns:
        The result, with the model holding the best epoch's weights.
    """
    out = Path(out_dir)
    state = _load_history(out)
    if state["epochs"] and not resume:
        raise ConfigError(
            f"{out} already holds a training run ({len(state['epochs'])} epochs). "
            "Pass --resume to continue it, or choose another --out."
        )
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed, deterministic=config.deterministic)
    steps = int(train_data.cardinality().numpy())
    if steps <= 0:
        raise ConfigError(
            "the training dataset is empty or infinite; pass a finite, batched dataset."
        )
    if compile:
        compile_classifier(model, config=config, steps_per_epoch=steps)
    state.setdefault("stopped_early", False)
    state["config"] = asdict(config)

    if not state.get("completed"):
        all_callbacks = [
            # The bookkeeper records an epoch before the backup marks it done: a failure or
            # interruption in between re-runs that epoch on resume instead of losing its record.
            _Bookkeeper(out, config, state),
            keras.callbacks.BackupAndRestore(str(out / BACKUP_DIR)),
            *callbacks,
        ]
        if report:
            all_callbacks.append(_RichProgress(report, config.epochs))
        if config.tensorboard:
            all_callbacks.append(_tensorboard(out))
        model.fit(
            train_data,
            validation_data=val_data,
            epochs=config.epochs,
            class_weight=class_weight,
            callbacks=all_callbacks,
            verbose=0,
        )
        state["completed"] = True
        write_json(out / HISTORY, state)
        shutil.rmtree(out / BACKUP_DIR, ignore_errors=True)

    if not (out / BEST_WEIGHTS).is_file():  # stopped (NaN loss) before any epoch was eligible
        with atomic_path(out / BEST_WEIGHTS) as tmp:
            model.save_weights(str(tmp))
    model.load_weights(str(out / BEST_WEIGHTS))
    epochs = state["epochs"]
    best_epoch, best_value = _best(epochs, config.monitor, config.best_after)
    return TrainResult(
        history={k: [e[k] for e in epochs] for k in epochs[0]},
        epochs_run=len(epochs),
        best_epoch=best_epoch,
        best_value=best_value,
        stopped_early=bool(state["stopped_early"]),
        completed=True,
        wall_time_s=float(sum(e["epoch_time_s"] for e in epochs)),
        best_weights=out / BEST_WEIGHTS,
        config=state["config"],
    )


def _tensorboard(out: Path) -> keras.callbacks.Callback:
    try:
        import tensorboard  # noqa: F401
    except ImportError as exc:
        raise SetupError(
            "TensorBoard logs were asked for, but TensorFlow 2.21 no longer installs TensorBoard: "
            "`pip install tensorboard` (or drop --tensorboard)."
        ) from exc
    return keras.callbacks.TensorBoard(log_dir=str(out / "tensorboard"))
