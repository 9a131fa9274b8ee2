"""Knowledge distillation: a frozen teacher guides a small student (Hinton et al., 2015).

The student minimises::

    loss = α · CE(labels, s) + (1 − α) · T² · KL(softmax(t/T) ‖ softmax(s/T)) + Σ β_i · hint_i

where ``t`` and ``s`` are the teacher's and student's logits. The T² factor keeps the
soft-target gradients on the same scale as the hard-label ones whatever the temperature.
Optional hints (FitNets, Romero et al., 2015) match an intermediate student feature to a
teacher feature through a learned 1x1 adapter (a Dense layer on the channel axis) with
MSE; the adapters are thrown away by :func:`finalize_distillation`.

The teacher is frozen: ``teacher.trainable = False``, called with ``training=False``
(BatchNorm statistics and Dropout in inference mode) and its outputs pass through
``tf.stop_gradient``, so no gradient reaches it and its weights stay bit-identical.

Inputs: a batch is either ``(x, y)`` (teacher and student read the same patch) or
``((x_teacher, x_student), y)`` when they read different inputs, e.g. a HybridSN teacher
on 25x25x30 PCA patches and a student2d on 9x9x200 patches of the same centres. Build
the pair with :func:`paired_dataset` from two unshuffled streams over the same centres.

Soft targets computed once: the frozen teacher gives the same logits for the same patch
every epoch, so :func:`teacher_logit_table` can run it once per patch and augmentation
(:func:`tfhsi.data.pipeline.augmented_patches`) and ``Distiller(..., teacher_logits=table)``
reads ``((key, x_student), y)`` batches (``patch_dataset(..., keys=True)``), looking the
teacher's logits up instead of running the teacher every step. Same loss, same gradients
(up to float rounding); without hints only.

Rhythm (``train_model`` lives in ``tfhsi.train``; the runner joins the two)::

    distiller = Distiller(teacher, student, alpha=0.1, temperature=4.0)
    compile_distiller(distiller, learning_rate=1e-3)
    train_model(distiller, train_ds, val_ds, config=..., out_dir=..., compile=False)
    student = finalize_distillation(distiller)   # plain functional model

Logged metrics: ``loss`` (the total above), ``accuracy`` (student), ``student_loss``
(plain CE, comparable with a run without KD), ``distillation_loss`` (T²·KL, before the
(1 − α) weight) and, with hints, ``hint_loss`` (Σ β_i · MSE_i); Keras prefixes ``val_``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfhsi._keras import keras, tf
from tfhsi.errors import ConfigError
from tfhsi.fast_conv3d import conv3d_as_conv2d

__all__ = [
    "Distiller",
    "Hint",
    "compile_distiller",
    "finalize_distillation",
    "paired_dataset",
    "teacher_logit_table",
]


@dataclass(frozen=True)
class Hint:
    """Feature distillation between two layers.

    Attributes:
        student_layer: Name of the student layer whose output is adapted.
        teacher_layer: Name of the teacher layer whose output is the target.
        weight: β, the weight of this hint's MSE in the total loss.
    """

    student_layer: str
    teacher_layer: str
    weight: float = 1.0


def _layer_output(model: keras.Model, name: str, role: str) -> tf.Tensor:
    names = [layer.name for layer in model.layers]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ConfigError(
            f"the {role} {model.name!r} has no layer {name!r}.{hint} Its layers: {', '.join(names)}."
        )
    layer = model.get_layer(name)
    try:
        return layer.output
    except AttributeError as exc:  # a layer called more than once has no single output
        raise ConfigError(
            f"layer {name!r} of the {role} {model.name!r} is used more than once; "
            "pick a layer with a single output for the hint."
        ) from exc


def _common_shapes(
    s_shape: tuple[int, ...], t_shape: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Merges trailing axes of the higher-rank feature so both have the same rank."""

    def merge(shape: tuple[int, ...], rank: int) -> tuple[int, ...]:
        return (*shape[: rank - 1], int(np.prod(shape[rank - 1 :])))

    rank = min(len(s_shape), len(t_shape))
    return merge(s_shape, rank), merge(t_shape, rank)


class _HintSpec:
    """A hint resolved against the two models: shapes, reshapes and its adapter."""

    def __init__(self, hint: Hint, index: int, student: keras.Model, teacher: keras.Model) -> None:
        if not (hint.weight >= 0 and math.isfinite(hint.weight)):
            raise ConfigError(f"hint weight β must be a finite number ≥ 0, got {hint.weight}.")
        s_out = _layer_output(student, hint.student_layer, "student")
        t_out = _layer_output(teacher, hint.teacher_layer, "teacher")
        s_shape = tuple(s_out.shape[1:])
        t_shape = tuple(t_out.shape[1:])
        if None in s_shape or None in t_shape:
            raise ConfigError(
                f"hint {hint.student_layer!r} → {hint.teacher_layer!r}: feature shapes "
                f"{s_shape} and {t_shape} must be static."
            )
        self.s_shape, self.t_shape = _common_shapes(s_shape, t_shape)
        if self.s_shape[:-1] != self.t_shape[:-1]:
            raise ConfigError(
                f"hint {hint.student_layer!r} → {hint.teacher_layer!r}: the student feature is "
                f"{'x'.join(map(str, s_shape))} and the teacher feature "
                f"{'x'.join(map(str, t_shape))}; their spatial sizes "
                f"{self.s_shape[:-1]} and {self.t_shape[:-1]} differ. The 1x1 adapter maps "
                "channels only: pick layers with the same spatial size (or a pooled layer)."
            )
        self.hint = hint
        self.student_output = s_out
        self.teacher_output = t_out
        self.adapter = keras.layers.Dense(self.t_shape[-1], name=f"hint_adapter_{index}")
        with tf.name_scope(self.adapter.name):  # variables named hint_adapter_i/kernel
            self.adapter.build((None, *self.s_shape))

    def loss(self, s_feat: tf.Tensor, t_feat: tf.Tensor) -> tf.Tensor:
        """Per-sample MSE between the adapted student feature and the teacher feature."""
        s_feat = tf.reshape(s_feat, (-1, *self.s_shape))
        t_feat = tf.reshape(t_feat, (-1, *self.t_shape))
        diff = self.adapter(s_feat) - t_feat
        return tf.reduce_mean(tf.reshape(tf.square(diff), (tf.shape(diff)[0], -1)), axis=-1)


def _reduce(per_sample: tf.Tensor, sample_weight: tf.Tensor | None) -> tf.Tensor:
    """Mean over the batch; with weights, ``Σ w·l / N`` like Keras' SUM_OVER_BATCH_SIZE."""
    if sample_weight is None:
        return tf.reduce_mean(per_sample)
    weight = tf.reshape(tf.cast(sample_weight, per_sample.dtype), tf.shape(per_sample))
    return tf.reduce_sum(per_sample * weight) / tf.cast(tf.size(per_sample), per_sample.dtype)


class Distiller(keras.Model):
    """Trains ``student`` on labels and on ``teacher``'s softened logits (and hints).

    Args:
        teacher: Trained functional classifier producing logits; frozen here
            (``teacher.trainable`` becomes False), never updated.
        student: Functional classifier producing logits for the same classes.
        alpha: α, weight of the hard-label cross-entropy; 1 − α weighs the soft targets.
        temperature: T > 0 softening both logit vectors.
        hints: Optional feature hints, see :class:`Hint`.
        teacher_logits: Optional ``(K, C)`` table of the teacher's logits (see
            :func:`teacher_logit_table`); batches are then ``((key, x_student), y)`` and the
            teacher is not run. Not with ``hints``.

    Raises:
        ConfigError: α outside [0, 1], T ≤ 0, class counts differ, shared weights, or a
            hint names a missing layer or joins features of different spatial size.
    """

    def __init__(
        self,
        teacher: keras.Model,
        student: keras.Model,
        *,
        alpha: float = 0.1,
        temperature: float = 4.0,
        hints: Sequence[Hint] = (),
        teacher_logits: np.ndarray | None = None,
        name: str = "distiller",
    ) -> None:
        super().__init__(name=name)
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1], got {alpha}.")
        if not (temperature > 0 and math.isfinite(temperature)):
            raise ConfigError(f"temperature must be a finite number > 0, got {temperature}.")
        t_classes, s_classes = teacher.output_shape[-1], student.output_shape[-1]
        if t_classes != s_classes:
            raise ConfigError(
                f"the teacher {teacher.name!r} predicts {t_classes} classes but the student "
                f"{student.name!r} predicts {s_classes}; build both for the same scene."
            )
        shared = {id(w) for w in teacher.weights} & {id(w) for w in student.weights}
        if shared:
            raise ConfigError(
                f"teacher {teacher.name!r} and student {student.name!r} share {len(shared)} "
                "weights; distil into a separately built student."
            )
        teacher.trainable = False
        self._table = None
        if teacher_logits is not None:
            table = np.asarray(teacher_logits, np.float32)
            if hints:
                raise ConfigError(
                    "teacher_logits replace the teacher's forward pass, but hints need its "
                    "features; pass either hints or teacher_logits."
                )
            if table.ndim != 2 or table.shape[1] != t_classes:
                raise ConfigError(
                    f"teacher_logits must have shape (K, {t_classes}); got {table.shape}."
                )
            with tf.init_scope(), tf.device("/CPU:0"):
                self._table = tf.constant(table)
        self.teacher = teacher
        self.student = student
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self._hints = [_HintSpec(h, i, student, teacher) for i, h in enumerate(hints)]
        self.adapters = [spec.adapter for spec in self._hints]
        if self._hints:  # one forward pass yields logits and the hinted features
            self._teacher_net = keras.Model(
                teacher.inputs,
                [teacher.output, *(s.teacher_output for s in self._hints)],
                name=f"{teacher.name}_features",
            )
            self._student_net = keras.Model(
                student.inputs,
                [student.output, *(s.student_output for s in self._hints)],
                name=f"{student.name}_features",
            )
        else:
            # The same variables, with Conv3D on faster CPU kernels (tfhsi.fast_conv3d).
            self._teacher_net = conv3d_as_conv2d(teacher)
            self._teacher_net.trainable = False
            self._student_net = conv3d_as_conv2d(student)
        names = ["loss", "student_loss", "distillation_loss"] + (["hint_loss"] if hints else [])
        self._trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self._accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.built = True  # every part is built; lets save_weights/load_weights work at once

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self._trackers["loss"], self._accuracy, *list(self._trackers.values())[1:]]

    def _split(self, x: Any) -> tuple[Any, Any]:
        if isinstance(x, tuple | list):
            if len(x) != 2:
                raise ConfigError(
                    f"a distillation batch holds x or (x_teacher, x_student); got {len(x)} inputs."
                )
            return x[0], x[1]
        if self._table is not None:
            raise ConfigError(
                "with teacher_logits a distillation batch holds (key, x_student); see "
                "patch_dataset(..., keys=True)."
            )
        t_shape = tuple(self.teacher.input_shape[1:])
        s_shape = tuple(self.student.input_shape[1:])
        if t_shape != s_shape:
            raise ConfigError(
                f"the teacher reads {t_shape} patches and the student {s_shape}; feed "
                "((x_teacher, x_student), y) batches (see paired_dataset)."
            )
        return x, x

    @staticmethod
    def _as_list(out: Any) -> list[tf.Tensor]:
        return list(out) if isinstance(out, list | tuple) else [out]

    def call(self, inputs: Any, training: bool | None = None) -> tf.Tensor:
        """The student's logits (for ``predict``); the teacher is not run."""
        return self.student(self._split(inputs)[1], training=training)

    def compute_distillation_losses(
        self, x: Any, y: tf.Tensor, sample_weight: tf.Tensor | None = None, *, training: bool
    ) -> dict[str, tf.Tensor]:
        """All loss terms of one batch plus the student's logits (key ``logits``).

        Gradients of ``loss`` reach only the student and the hint adapters: the teacher
        runs in inference mode and its outputs are cut off by ``tf.stop_gradient``.
        """
        x_t, x_s = self._split(x)
        if self._table is not None:  # x_t is the key of each patch in the table
            t_out = [tf.gather(self._table, tf.cast(tf.reshape(x_t, [-1]), tf.int32))]
        else:
            t_out = [
                tf.stop_gradient(o) for o in self._as_list(self._teacher_net(x_t, training=False))
            ]
        s_out = self._as_list(self._student_net(x_s, training=training))
        t_logits, s_logits = t_out[0], s_out[0]
        temp = self.temperature
        # Pixels labelled -1 (a transfer set without classes) get the soft targets only; the
        # cross-entropy is averaged over the labelled ones (all of them in a plain batch).
        labelled = tf.cast(tf.reshape(y, [-1]) >= 0, s_logits.dtype)
        y_class = tf.maximum(tf.reshape(y, [-1]), 0)
        ce = keras.losses.sparse_categorical_crossentropy(y_class, s_logits, from_logits=True)
        share = tf.cast(tf.size(labelled), s_logits.dtype) / tf.maximum(
            tf.reduce_sum(labelled), 1.0
        )
        log_p_t = tf.nn.log_softmax(t_logits / temp, axis=-1)
        log_p_s = tf.nn.log_softmax(s_logits / temp, axis=-1)
        kl = tf.reduce_sum(tf.exp(log_p_t) * (log_p_t - log_p_s), axis=-1)
        losses = {
            "student_loss": share * _reduce(ce * labelled, sample_weight),
            "distillation_loss": temp**2 * _reduce(kl, sample_weight),
        }
        total = (
            self.alpha * losses["student_loss"] + (1.0 - self.alpha) * losses["distillation_loss"]
        )
        if self._hints:
            hint = tf.add_n(
                [
                    spec.hint.weight * _reduce(spec.loss(s, t), sample_weight)
                    for spec, s, t in zip(self._hints, s_out[1:], t_out[1:], strict=True)
                ]
            )
            losses["hint_loss"] = hint
            total = total + hint
        losses["loss"] = total
        losses["logits"] = s_logits
        losses["labelled"] = labelled
        return losses

    def _update_metrics(self, y: tf.Tensor, losses: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        batch = tf.shape(losses["logits"])[0]  # epoch values are per-sample means, as in Keras
        for name, tracker in self._trackers.items():
            tracker.update_state(losses[name], sample_weight=batch)
        y_class = tf.maximum(tf.reshape(y, [-1]), 0)
        self._accuracy.update_state(y_class, losses["logits"], sample_weight=losses["labelled"])
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            losses = self.compute_distillation_losses(x, y, sample_weight, training=True)
        variables = self.trainable_variables  # student + adapters; the teacher is frozen
        grads = tape.gradient(losses["loss"], variables)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        return self._update_metrics(y, losses)

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        losses = self.compute_distillation_losses(x, y, sample_weight, training=False)
        return self._update_metrics(y, losses)


def compile_distiller(
    distiller: Distiller,
    *,
    optimizer: keras.optimizers.Optimizer | None = None,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3,
    jit_compile: bool = False,
) -> None:
    """Compiles ``distiller`` for ``train_model(..., compile=False)``.

    Args:
        distiller: The model to compile.
        optimizer: Any tf_keras optimizer; default Adam with ``learning_rate``.
        learning_rate: A float or a schedule (e.g. ``CosineDecay``), used without ``optimizer``.
        jit_compile: XLA-compile the step (see :func:`tfhsi.models.trains_with_xla`); only
            with a teacher-logit table (the teacher's forward pass stays uncompiled).
    """
    if not isinstance(distiller, Distiller):
        raise ConfigError(f"compile_distiller needs a Distiller, got {type(distiller).__name__}.")
    distiller.compile(
        optimizer=optimizer or keras.optimizers.Adam(learning_rate=learning_rate),
        jit_compile=jit_compile and distiller._table is not None,
    )


def finalize_distillation(distiller: Distiller) -> keras.Model:
    """Returns the trained student: a plain functional model, ready to save, prune or quantise."""
    if not isinstance(distiller, Distiller):
        raise ConfigError(
            f"finalize_distillation needs a Distiller, got {type(distiller).__name__}."
        )
    student = distiller.student
    student.trainable = True
    return student


def paired_dataset(teacher_data: tf.data.Dataset, student_data: tf.data.Dataset) -> tf.data.Dataset:
    """Zips two ``(x, y)`` streams into ``((x_teacher, x_student), y)`` batches.

    Both streams must visit the same centres in the same order with the same batch size
    (same subset, no shuffle or the same shuffle seed); differing labels raise an
    ``InvalidArgumentError`` when the batch is read.
    """

    def join(t: tuple[tf.Tensor, tf.Tensor], s: tuple[tf.Tensor, tf.Tensor]) -> Any:
        (x_t, y_t), (x_s, y_s) = t, s
        check = tf.debugging.assert_equal(
            y_t,
            y_s,
            message="teacher and student batches hold different labels: build both "
            "streams from the same subset without shuffling (or with one seed)",
        )
        with tf.control_dependencies([check]):
            return (x_t, tf.identity(x_s)), tf.identity(y_t)

    return tf.data.Dataset.zip((teacher_data, student_data)).map(join)


def teacher_logit_table(teacher: keras.Model, patches: tf.data.Dataset) -> np.ndarray:
    """The teacher's logits (inference mode) for every batch of ``patches``, in order: the
    ``(K, C)`` table :class:`Distiller` takes as ``teacher_logits``."""
    forward = tf.function(lambda x: teacher(x, training=False), reduce_retracing=True)
    out = [np.asarray(forward(x)) for x in patches]
    if not out:
        raise ConfigError("no patches to compute the teacher's soft targets on.")
    return np.concatenate(out).astype(np.float32)
