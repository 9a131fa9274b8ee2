"""A student trained alone honours its training section's ``class_weights``."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.parametrize("weighted", [True, False])
def test_student_training_uses_balanced_class_weights_when_asked(
    weighted: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tfhsi.train.fit as fit
    from tfhsi.api import model_state
    from tfhsi.data.datasets import open_dataset
    from tfhsi.data.prepared import prepare
    from tfhsi.data.splits import make_split
    from tfhsi.models import build_model
    from tfhsi.recipes.schema import TrainSection
    from tfhsi.recipes.variants import train_student

    scene = open_dataset("synthetic:14x14x6x3")
    prepared = prepare(scene, make_split(scene.labels, "random:0.5", seed=0, patch_size=5))
    model = build_model("student2d", bands=6, n_classes=3, patch_size=5)
    seen: dict = {}
    monkeypatch.setattr(fit, "train_model", lambda *a, **kw: seen.update(kw))
    train_student(
        model_state(model, prepared),
        TrainSection(epochs=1, class_weights=weighted),
        tmp_path,
        seed=0,
        log=lambda _: None,
    )
    expected = fit.balanced_class_weights(prepared.targets("train"), 3) if weighted else None
    assert seen["class_weight"] == expected
    assert not weighted or len(set(expected.values())) > 1  # the classes are unbalanced
