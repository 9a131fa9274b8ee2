"""Weight clustering with TF-MOT, and the collaborative (cluster/prune-preserving) QAT schemes.

Rhythm: :func:`prepare_clustering` wraps every kernel TF-MOT can cluster (Dense and
Conv1D/2D/3D kernels; depthwise kernels, biases and BatchNorm are left alone) → fine-tune
with an ordinary compile and fit → :func:`finalize_clustering` strips the wrappers, leaving
kernels with at most ``n_clusters`` distinct values (:func:`unique_weights_per_kernel`
measures it). With ``preserve_sparsity=True`` the zeros of a pruned kernel stay zero
(one centroid is pinned at 0).

Collaborative optimisation: a stripped clustered (or pruned) 2-D model goes through
:func:`prepare_cluster_preserving_qat` (or :func:`prepare_prune_preserving_qat`), is
fine-tuned, and converts to int8 TFLite with the clusters (sparsity) kept. TF-MOT's
default 8-bit QAT has no Conv3D support: 3-D models need tfhsi's Conv3D quantize configs
or the Conv3D lowering first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from tfhsi._keras import keras, tfmot
from tfhsi.errors import ConfigError, UnsupportedError
from tfhsi.keras_checks import require_functional, require_rebuildable

__all__ = [
    "CENTROID_INITS",
    "finalize_clustering",
    "prepare_cluster_preserving_qat",
    "prepare_clustering",
    "prepare_prune_preserving_qat",
    "unique_weights_per_kernel",
]

_Init = tfmot.clustering.keras.CentroidInitialization
CENTROID_INITS: dict[str, Any] = {
    "kmeans_plus_plus": _Init.KMEANS_PLUS_PLUS,
    "density_based": _Init.DENSITY_BASED,
    "linear": _Init.LINEAR,
    "random": _Init.RANDOM,
}

# Layers whose ``kernel`` TF-MOT clusters (transposed convs subclass these).
_CLUSTERABLE = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
)
_WRAPPER_NAMES = ("ClusterWeights", "PruneLowMagnitude", "QuantizeWrapper", "QuantizeWrapperV2")


def _check_stripped(model: keras.Model, what: str) -> None:
    wrapped = [layer.name for layer in model.layers if type(layer).__name__ in _WRAPPER_NAMES]
    if wrapped:
        raise ConfigError(
            f"{what} needs a stripped model, but {model.name!r} still has wrapped layers "
            f"({', '.join(wrapped)}); call finalize_clustering / the pruning finalize first."
        )


def _check_names(model: keras.Model, skip: Iterable[str]) -> frozenset[str]:
    skip = frozenset(skip)
    names = {layer.name for layer in model.layers}
    unknown = sorted(skip - names)
    if unknown:
        raise ConfigError(
            f"skip names layers {unknown} that {model.name!r} does not have; "
            f"its layers: {', '.join(sorted(names))}."
        )
    return skip


def _copy(model: keras.Model) -> keras.Model:
    """A clone with the same weights, so wrapping never touches the caller's layers."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def prepare_clustering(
    model: keras.Model,
    *,
    n_clusters: int,
    init: str = "kmeans_plus_plus",
    preserve_sparsity: bool = False,
    skip: Iterable[str] = (),
) -> keras.Model:
    """Wraps the clusterable kernels of a trained model for clustering fine-tuning.

    The input model is left untouched (it is cloned first). Compile and fit the result
    as usual, then :func:`finalize_clustering`.

    Args:
        model: Trained functional or Sequential model.
        n_clusters: Distinct values per kernel (≥ 2; ≥ 3 with ``preserve_sparsity``).
        init: Centroid initialisation: ``kmeans_plus_plus``, ``density_based``,
            ``linear`` or ``random``.
        preserve_sparsity: Keep the zeros of a pruned kernel at zero (one centroid is 0).
        skip: Names of layers to leave unclustered (e.g. ``("logits",)``).

    Returns:
        A new model with ``ClusterWeights`` wrappers around the clustered layers.

    Raises:
        ConfigError: Bad ``n_clusters``, ``init`` or ``skip``.
        UnsupportedError: A subclassed model.
    """
    require_functional(model, what="clustering")
    _check_stripped(model, "clustering")
    require_rebuildable(model, what="clustering")
    minimum = 3 if preserve_sparsity else 2
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, int | np.integer):
        raise ConfigError(f"n_clusters must be an integer, got {n_clusters!r}.")
    if n_clusters < minimum:
        raise ConfigError(
            f"n_clusters must be ≥ {minimum}"
            + (" with preserve_sparsity (one cluster is the zeros)" if preserve_sparsity else "")
            + f", got {n_clusters}."
        )
    if init not in CENTROID_INITS:
        raise ConfigError(
            f"unknown centroid init {init!r}; choose one of {', '.join(CENTROID_INITS)}."
        )
    skip = _check_names(model, skip)
    params = {
        "number_of_clusters": int(n_clusters),
        "cluster_centroids_init": CENTROID_INITS[init],
        # Forwarded by cluster_weights to the experimental sparsity-preserving path.
        "preserve_sparsity": bool(preserve_sparsity),
    }

    def wrap(layer: keras.layers.Layer) -> keras.layers.Layer:
        if layer.name in skip or not isinstance(layer, _CLUSTERABLE):
            return layer
        if int(np.prod(layer.kernel.shape)) <= n_clusters:  # already few enough values
            return layer
        return tfmot.clustering.keras.cluster_weights(layer, **params)

    base = _copy(model)
    return keras.models.clone_model(base, clone_function=wrap)


def finalize_clustering(model: keras.Model) -> keras.Model:
    """Strips the clustering wrappers; the kernels keep their clustered values."""
    require_functional(model, what="finalize_clustering")
    return tfmot.clustering.keras.strip_clustering(model)


def unique_weights_per_kernel(model: keras.Model, *, skip: Iterable[str] = ()) -> dict[str, int]:
    """Distinct values of every Dense/Conv ``kernel`` of a stripped model, by layer name.

    Depthwise kernels are not listed: TF-MOT does not cluster them. Pass the ``skip`` given
    to :func:`prepare_clustering` to list only the kernels that were clustered.

    Raises:
        ConfigError: The model still has clustering (or other) wrappers, or ``skip`` names
            a layer the model does not have.
    """
    _check_stripped(model, "unique_weights_per_kernel")
    skip = _check_names(model, skip)
    # By class name: layers rebuilt by TF-MOT's strip may come from another import path of tf_keras.
    clusterable = {cls.__name__ for cls in _CLUSTERABLE}
    return {
        layer.name: int(np.unique(layer.kernel.numpy()).size)
        for layer in model.layers
        if type(layer).__name__ in clusterable and layer.name not in skip
    }


def _check_qat_layers(model: keras.Model, what: str) -> None:
    conv3d = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv3D)]
    if conv3d:
        raise UnsupportedError(
            f"{what}: TF-MOT's 8-bit QAT schemes do not support Conv3D (layers "
            f"{', '.join(conv3d)} of {model.name!r}). Use tfhsi's Conv3D QAT (its own quantize "
            "configs) or lower the Conv3D layers to Conv2D first; the collaborative schemes "
            "work on 2-D/1-D models."
        )


def _collaborative_qat(model: keras.Model, scheme: Any, what: str) -> keras.Model:
    require_functional(model, what=what)
    _check_stripped(model, what)
    _check_qat_layers(model, what)
    quant = tfmot.quantization.keras
    try:
        annotated = quant.quantize_annotate_model(_copy(model))
        with quant.quantize_scope():
            return quant.quantize_apply(annotated, scheme=scheme)
    except (ValueError, RuntimeError) as exc:
        raise UnsupportedError(f"{what} cannot quantise {model.name!r}: {exc}") from exc


def prepare_cluster_preserving_qat(
    model: keras.Model, *, preserve_sparsity: bool = True
) -> keras.Model:
    """Quantisation-aware training that keeps a clustered model's clusters (CQAT).

    Args:
        model: A clustered model after :func:`finalize_clustering` (not 3-D).
        preserve_sparsity: Also keep its zeros (prune-cluster-preserving QAT, PCQAT).

    Returns:
        The QAT model; compile, fine-tune and convert it to int8 TFLite.

    Raises:
        UnsupportedError: Conv3D or other layers TF-MOT's 8-bit scheme cannot quantise.
        ConfigError: The model still has wrappers.
    """
    scheme = tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(
        preserve_sparsity=preserve_sparsity
    )
    return _collaborative_qat(model, scheme, "cluster-preserving QAT")


def prepare_prune_preserving_qat(model: keras.Model) -> keras.Model:
    """Quantisation-aware training that keeps a pruned model's zeros (PQAT).

    Args:
        model: A pruned model after the pruning finalize (strip), not 3-D.

    Returns:
        The QAT model; compile, fine-tune and convert it to int8 TFLite.

    Raises:
        UnsupportedError: Conv3D or other layers TF-MOT's 8-bit scheme cannot quantise.
        ConfigError: The model still has wrappers.
    """
    scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    return _collaborative_qat(model, scheme, "prune-preserving QAT")
