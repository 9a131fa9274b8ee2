"""Training any tf_keras classifier on streamed patches: resumable, seeded, early-stopped.

The rhythm: :func:`train_model` compiles (Adam, cosine or constant learning rate,
sparse cross-entropy on logits), fits with the callbacks below, and restores the best
weights. After an interruption (SIGINT, SIGTERM, crash) the same call with
``resume=True`` continues from the last finished epoch — model, optimizer and epoch
counter come from Keras' ``BackupAndRestore``; the history, best epoch and early-stopping
state are derived from ``history.json``, written atomically after every epoch. A run
that had finished is not trained again.

Model selection (:func:`best_epoch`, the one rule for the checkpoint, early stopping and the
result): the epoch with the best monitored validation quantity; ties (common on validation
sets of tens of pixels) go to the lower ``val_loss`` (``val_accuracy`` when monitoring the
loss), then to the earlier epoch. Without a validation set (``val_data=None``) nothing is
monitored: no early stopping, and the last epoch (with a finite loss) is kept — the test set
is never a stand-in.
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
from tfhsi.fast_conv3d import conv3d_as_conv2d
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
    best_value: float | None  # None without validation (the last epoch is kept)
    stopped_early: bool
    completed: bool
    wall_time_s: float
    best_weights: Path
    config: dict[str, Any] = field(default_factory=dict)
    monitor: str | None = None  # what picked best_epoch; None = no validation, last epoch


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seeds Python, NumPy and TensorFlow; optionally deterministic TF kernels."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def compile_classifier(
    model: keras.Model, *, config: TrainConfig, steps_per_epoch: int, loss: Any = None
) -> None:
    """Compiles ``model`` (logits out) with Adam, the configured schedule and accuracy (XLA
    steps with ``config.jit_compile``)."""
    lr: float | keras.optimizers.schedules.LearningRateSchedule = config.learning_rate
    if config.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=max(1, config.epochs * steps_per_epoch)
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=config.jit_compile,
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


_TIE_BREAK = {"val_accuracy": "val_loss", "val_loss": "val_accuracy"}


def _score(value: float | None, *, lower_is_better: bool) -> float:
    """Larger is better; NaN and missing values are worst."""
    if value is None or math.isnan(value):
        return -math.inf
    return -value if lower_is_better else value


def best_epoch(
    epochs: Sequence[dict[str, float]], monitor: str | None, after: int = 0
) -> tuple[int, float | None]:
    """The selection rule: 1-based best epoch among ``after + 1 ...`` and its monitored value.

    With ``monitor`` (``val_accuracy`` or ``val_loss``): its best value; ties go to the better
    tie-break quantity (``val_loss`` for accuracy, ``val_accuracy`` for the loss), then to the
    earliest epoch. NaN counts as worst. With ``monitor=None`` (no validation set): the last
    epoch with a finite training loss (the last epoch if none), value None. If no epoch is past
    ``after``, the last epoch is considered alone.
    """
    after = min(after, len(epochs) - 1)
    window = epochs[after:]
    if monitor is None:
        finite = [i for i, e in enumerate(window) if math.isfinite(e["loss"])]
        return after + (finite[-1] if finite else len(window) - 1) + 1, None
    lower = monitor.endswith("loss")
    tie = _TIE_BREAK.get(monitor)

    def rank(i: int) -> tuple[float, float, int]:
        e = window[i]
        second = _score(e.get(tie), lower_is_better=not lower) if tie else 0.0
        return _score(e.get(monitor), lower_is_better=lower), second, -i

    index = max(range(len(window)), key=rank)
    return after + index + 1, float(window[index][monitor])


class _Bookkeeper(keras.callbacks.Callback):
    """Persists per-epoch logs, saves the best weights and stops early — all resumable.

    ``monitor`` None (no validation set): every epoch with a finite loss is the new "best"
    (the last epoch is kept) and there is no early stopping.
    """

    def __init__(
        self,
        out_dir: Path,
        config: TrainConfig,
        state: dict[str, Any],
        monitor: str | None,
        saves: keras.Model | None = None,
    ) -> None:
        super().__init__()
        self.saves = saves  # the caller's model (the fitted one may be its faster twin)
        self.out_dir = out_dir
        self.config = config
        self.state = state
        self.monitor = monitor

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        # After a restore, epochs beyond the restored one are re-run: forget their logs.
        del self.state["epochs"][epoch:]
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items()}
        logs["epoch_time_s"] = time.perf_counter() - self._started
        if self.monitor is not None and self.monitor not in logs:
            raise ConfigError(
                f"no {self.monitor!r} in the training logs (got {sorted(logs)}); "
                "pass a validation dataset, or val_data=None to keep the last epoch."
            )
        if not math.isfinite(logs["loss"]):
            self.model.stop_training = True
        epochs = self.state["epochs"]
        epochs.append(logs)
        if len(epochs) <= self.config.best_after:  # not yet eligible (e.g. still pruning)
            write_json(self.out_dir / HISTORY, self.state)
            return
        best, _ = best_epoch(epochs, self.monitor, self.config.best_after)
        if best == len(epochs):
            with atomic_path(self.out_dir / BEST_WEIGHTS) as tmp:
                (self.saves or self.model).save_weights(str(tmp))
        write_json(self.out_dir / HISTORY, self.state)
        patience = None if self.monitor is None else self.config.patience
        if patience is not None and len(epochs) - best >= patience:
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
    val_data: tf.data.Dataset | None,
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
        val_data: Batched ``(x, y)`` validation dataset that picks the epoch
            (:func:`best_epoch`); None when there is none (see
            :meth:`tfhsi.data.prepared.PreparedScene.selection_subset`): then all
            ``config.epochs`` run, ``config.patience`` is ignored and the last epoch is kept.
            Never pass the test set here.
        config: See :class:`TrainConfig`.
        out_dir: Where ``history.json``, ``best.weights.h5`` and the resume backup live.
        resume: Continue an interrupted run in ``out_dir``; without it an existing run there
            is an error (never silently overwritten).
        class_weight: Optional per-class loss weights (see :func:`balanced_class_weights`).
        callbacks: Extra callbacks (e.g. pruning's ``UpdatePruningStep``).
        compile: Compile with :func:`compile_classifier`; False if the caller compiled.
        report: Receives one line per epoch (the CLI prints it with rich), and a line saying
            that the last epoch is kept when ``val_data`` is None.

    Returns:
        The result, with the model holding the best epoch's weights.

    Raises:
        ConfigError: ``out_dir`` holds a run and ``resume`` is False, or the run there was
            trained with (without) validation and this call is without (with) it.
    """
    out = Path(out_dir)
    state = _load_history(out)
    if state["epochs"] and not resume:
        raise ConfigError(
            f"{out} already holds a training run ({len(state['epochs'])} epochs). "
            "Pass --resume to continue it, or choose another --out."
        )
    monitor = config.monitor if val_data is not None else None
    had = state.get("monitor", config.monitor)  # runs from before the key always had one
    if state["epochs"] and (had is None) != (monitor is None):
        raise ConfigError(
            f"{out} holds a run trained {'without' if had is None else 'with'} a validation "
            f"set, but this call has {'one' if monitor is not None else 'none'}; resume with "
            "the same split and val_fraction, or choose another --out."
        )
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed, deterministic=config.deterministic)
    steps = int(train_data.cardinality().numpy())
    if steps <= 0:
        raise ConfigError(
            "the training dataset is empty or infinite; pass a finite, batched dataset."
        )
    fitted = model
    if compile:  # a caller compiling its own model (e.g. a Distiller) chose its layers
        fitted = conv3d_as_conv2d(model)  # the same variables, faster CPU kernels
        for each in {id(m): m for m in (model, fitted)}.values():
            compile_classifier(each, config=config, steps_per_epoch=steps)
    state.setdefault("stopped_early", False)
    state["config"] = asdict(config)
    state["monitor"] = monitor
    if monitor is None and report and not state.get("completed"):
        report(
            "no validation set: all epochs run (no early stopping) and the last one is kept; "
            "the test set picks nothing."
        )

    if not state.get("completed"):
        all_callbacks = [
            # The bookkeeper records an epoch before the backup marks it done: a failure or
            # interruption in between re-runs that epoch on resume instead of losing its record.
            _Bookkeeper(out, config, state, monitor, model),
            keras.callbacks.BackupAndRestore(str(out / BACKUP_DIR)),
            *callbacks,
        ]
        if report:
            all_callbacks.append(_RichProgress(report, config.epochs))
        if config.tensorboard:
            all_callbacks.append(_tensorboard(out))
        fitted.fit(
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
    best, best_value = best_epoch(epochs, monitor, config.best_after)
    return TrainResult(
        history={k: [e[k] for e in epochs] for k in epochs[0]},
        epochs_run=len(epochs),
        best_epoch=best,
        best_value=best_value,
        stopped_early=bool(state["stopped_early"]),
        completed=True,
        wall_time_s=float(sum(e["epoch_time_s"] for e in epochs)),
        best_weights=out / BEST_WEIGHTS,
        config=state["config"],
        monitor=monitor,
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
