"""What defines a trained model (and so its cache key)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tfhsi.models import ModelSource, resolve_model
from tfhsi.train.config import TrainConfig

OPT_IN = ("pretrained", "unsafe", "test_pixels")
"""Fields recorded only when set, so records and cache keys of runs made before stay valid."""


@dataclass(frozen=True)
class ExperimentSpec:
    """Everything that defines a trained model (and so its cache key).

    ``model`` is a zoo name or a model reference (``file.py:function``,
    ``package.module:function``, a saved ``.keras``/``.h5``; file paths absolute).
    ``pretrained`` uses a saved model as given (no training); ``unsafe`` lets a saved model
    run code stored in it; ``test_pixels`` keeps that many test pixels (a quick run's
    :func:`tfhsi.data.splits.subsample_test`).
    """

    dataset: str
    model: str
    split: str = "random:0.1"
    seed: int = 0
    patch_size: int | None = None
    pca: int | None = None
    width: float = 1.0
    val_fraction: float = 0.05
    batch_size: int = 64
    augment: bool = False
    class_weights: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)
    pretrained: bool = False
    unsafe: bool = False
    test_pixels: int | None = None

    def source(self) -> ModelSource:
        """The resolved model reference (a bad one fails here, in one line)."""
        return resolve_model(self.model, unsafe=self.unsafe)

    def resolved(self, scene_bands: int) -> ExperimentSpec:
        """Fills the patch size and PCA bands by the model's input-size rule."""
        patch, pca = self.source().input_size(scene_bands, patch=self.patch_size, pca=self.pca)
        return replace(self, patch_size=patch, pca=pca, train=replace(self.train, seed=self.seed))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in OPT_IN:
            if not data[name]:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentSpec:
        return cls(**{**data, "train": TrainConfig(**data["train"])})
