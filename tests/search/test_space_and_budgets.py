"""The search space and the budgets: strict, one-line errors, sizes as people write them."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from tfhsi.errors import ConfigError, TfhsiError
from tfhsi.search.constraints import Figures, broken, make_budget, parse_size, violations
from tfhsi.search.space import DEFAULT_SPACE, load_space, propose, variant_data


@pytest.mark.parametrize(
    ("text", "size"),
    [("64KiB", 65536), ("64 KiB", 65536), ("1MiB", 1048576), ("1MB", 1_000_000),
     ("32kb", 32_000), ("65536", 65536), (4096, 4096)],
)  # fmt: skip
def test_sizes_parse_with_binary_and_si_units(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["64KB/s", "lots", "-1KiB", "0", ""])
def test_a_malformed_size_is_one_line_naming_the_option(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^--max-arena: .* is not a size; .*64KiB") as exc:
        parse_size(text, option="--max-arena")
    assert "\n" not in str(exc.value)


def test_cortex_m4_budget_is_its_ram_and_flash_minus_what_the_firmware_needs() -> None:
    budget = make_budget("cortex-m4")
    assert budget.arena_bytes == 256 * 1024 - 16 * 1024
    assert budget.flash_bytes == 1024 * 1024 - 80 * 1024
    assert budget.int8 and budget.latency_ms is None
    tighter = make_budget("cortex-m4", max_arena="32KiB", max_flash="4MiB", max_latency_ms=5)
    assert (tighter.arena_bytes, tighter.flash_bytes, tighter.latency_ms) == (
        32768,
        budget.flash_bytes,
        5,
    )


def test_unknown_target_names_the_valid_ones() -> None:
    with pytest.raises(TfhsiError, match=r"Valid targets: .*cortex-m4"):
        make_budget("cortex-m9")


def test_constraints_are_kept_at_the_limit_and_broken_above_it() -> None:
    budget = make_budget("cortex-m4", max_arena="32KiB", max_latency_ms=5)
    at_limit = Figures(arena_bytes=32768, size_bytes=1000, macs=1, latency_ms=5.0,
                       full_int8=True, fits=True)  # fmt: skip
    assert all(v <= 0 for v in violations(at_limit, budget)) and broken(at_limit, budget) == []
    over = Figures(arena_bytes=40000, size_bytes=1000, macs=1, latency_ms=6.0, full_int8=True,
                   fits=True)  # fmt: skip
    values = violations(over, budget)
    assert values[0] > 0 and values[2] > 0 and values[1] <= 0
    assert [b.split()[0] for b in broken(over, budget)] == ["arena", "latency"]


def _space_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("widht: [1.0]", "unknown field 'widht' (allowed: model, width"),
        ("width: [0.5, -1]", "field 'width': [-1] out of range: a width is a number > 0"),
        ("distill: {alpha: {low: 0.9, high: 0.1}}", "field 'distill.alpha': a range low 0.9 is above high 0.1"),
        ("quantize: [int4]", "field 'quantize': ['int4'] not allowed; choose from ['ptq', 'qat']"),
        ("model: [nosuch]", "field 'model': unknown model 'nosuch'"),
        ("cluster: [1]", "field 'cluster': [1] out of range"),
        ("[1, 2]", "must be a mapping of dimensions"),
        ("width: [", "is not valid YAML at line"),
    ],
)  # fmt: skip
def test_a_bad_space_file_is_one_line_naming_the_file_and_field(
    tmp_path: Path, text: str, says: str
) -> None:
    path = _space_file(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_space(path)
    message = str(exc.value)
    assert says in message and str(path) in message and "\n" not in message


def test_a_space_file_replaces_only_the_dimensions_it_names(tmp_path: Path) -> None:
    space = load_space(_space_file(tmp_path, "width: {low: 0.5, high: 2.0}\nprune: 0.5\n"))
    assert space.width.low == 0.5 and space.prune == 0.5
    assert space.model == DEFAULT_SPACE.model and space.distill == DEFAULT_SPACE.distill


def _proposals(seed: int, n: int) -> list[dict]:
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.TPESampler(seed=seed)
    )
    return [propose(study.ask(), DEFAULT_SPACE) for _ in range(n)]


def test_the_same_seed_proposes_the_same_trials() -> None:
    assert _proposals(3, 5) == _proposals(3, 5)
    assert _proposals(3, 5) != _proposals(4, 5)


def test_a_proposal_is_a_valid_recipe_variant_with_steps_in_chain_order() -> None:
    from tfhsi.recipes.schema import Variant

    params = {
        "model": "student2d", "width": 0.5, "patch": 7, "pca": None, "augment": True,
        "distill": True, "distill_alpha": 0.3, "distill_temperature": 2.0,
        "distill_unlabelled": 4.0, "distill_augment": True, "prune": 0.5, "cluster": 16,
        "quantize": "qat", "precision": "int8",
    }  # fmt: skip
    variant = Variant.model_validate(variant_data("trial_0001", params, DEFAULT_SPACE))
    assert [s.method for s in variant.steps] == ["distill", "prune", "cluster", "qat"]
    assert variant.steps[2].preserve_sparsity and variant.export == ["int8"]
    assert variant.student is not None and variant.student.width == 0.5


def test_quick_caps_every_training_length() -> None:
    capped = DEFAULT_SPACE.capped(2)
    assert set(capped.epochs.model_dump().values()) == {2}


def _fit(number: int, oa: float, aa: float, arena: int) -> dict:
    return {"number": number, "state": "complete", "constraints": [0.0], "val_oa": oa,
            "val_aa": aa, "arena_bytes": arena}  # fmt: skip


def test_the_chosen_trial_breaks_accuracy_ties_by_the_other_metric_then_cost() -> None:
    from tfhsi.search.report import choose, pareto_front

    fits = [_fit(0, 0.98, 0.90, 20_000), _fit(1, 0.98, 0.95, 30_000), _fit(2, 0.97, 0.99, 10_000),
            _fit(3, 0.98, 0.95, 25_000)]  # fmt: skip
    assert choose(fits, "val_oa", "arena_bytes")["number"] == 3  # best AA among the OA ties
    assert choose(fits, "val_aa", "arena_bytes")["number"] == 2
    assert [r["number"] for r in pareto_front(fits, "val_oa", "arena_bytes")] == [2, 0]
    assert choose([], "val_oa", "arena_bytes") is None
