"""Every model in tflite_models/ is what its card says, checked on the file itself.

One set of tests per released folder (a new release is covered by adding its folder): the
card's size, precision and operator counts come from the flatbuffer; a card that claims TFLite
Micro gets a real TFLM run from the ``.tflite`` alone at the card's arena; on the real scene the
card's OA / AA / Kappa are reproduced by the same evaluation as ``tfhsi evaluate``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfhsi.experiment import evaluate_path, load_run
from tfhsi.export.inspect import audit

RELEASES = sorted(
    p.parent for p in (Path(__file__).parents[1] / "tflite_models").glob("*/card.json")
)


def _card(folder: Path) -> dict:
    return json.loads((folder / "card.json").read_text())


def test_the_released_models_cover_the_mcu_and_phone_roles() -> None:
    roles = " ".join(_card(folder)["role"] for folder in RELEASES)
    assert RELEASES and "microcontrollers" in roles and "phones" in roles


@pytest.mark.parametrize("folder", RELEASES, ids=lambda p: p.name)
def test_card_matches_the_flatbuffer(folder: Path) -> None:
    card, data = _card(folder), (folder / "model.tflite").read_bytes()
    report = audit(data)
    assert card["measurement"]["size_bytes"] == len(data)
    assert card["measurement"]["full_int8"] == report.is_full_int8
    assert card["measurement"]["precision"] == report.precision
    assert card["ops"] == report.op_counts
    labels = (folder / "model.labels.txt").read_text().splitlines()
    assert labels == card["metrics"]["class_names"]


@pytest.mark.parametrize("folder", RELEASES, ids=lambda p: p.name)
def test_tflite_micro_runs_the_file_at_the_cards_arena(folder: Path) -> None:
    from tfhsi.profile.mcu import find_min_arena

    card = _card(folder)
    arena = card["measurement"]["arena_bytes"]
    if not arena:
        pytest.skip(f"{folder.name} is not released for microcontrollers")
    result = find_min_arena((folder / "model.tflite").read_bytes(), source=folder.name)
    assert result.min_bytes == arena


@pytest.mark.real_data
@pytest.mark.parametrize("folder", RELEASES, ids=lambda p: p.name)
def test_card_accuracy_is_reproduced_on_the_stated_split(folder: Path, real_data_dir: Path) -> None:
    card = _card(folder)
    metrics = evaluate_path(folder / "model.tflite", load_run(folder, data_dir=real_data_dir))
    assert metrics.oa == pytest.approx(card["metrics"]["oa"], abs=1e-12)
    assert metrics.aa == pytest.approx(card["metrics"]["aa"], abs=1e-12)
    assert metrics.kappa == pytest.approx(card["metrics"]["kappa"], abs=1e-12)
