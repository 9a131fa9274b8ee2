"""Property-based tests: any input gives a valid result or a tfhsi error, never a crash.

Recipes (arbitrary text, arbitrary YAML documents, mutated valid recipes, ``--set``
overrides), split specs and splits of random label maps, and patch extraction at random
sizes, centres and patch sizes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from tfhsi.data.patches import extract_patches, to_layout
from tfhsi.data.splits import GRAMMAR, Split, make_split, parse_split_spec
from tfhsi.errors import ConfigError, DataFormatError, RecipeError, SplitError, TfhsiError
from tfhsi.recipes.loading import load_recipe
from tfhsi.recipes.schema import Recipe

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
GOOD: dict[str, Any] = {
    "name": "tiny",
    "dataset": "synthetic:12x12x6x3",
    "split": "random:0.2",
    "seeds": [0, 1],
    "teacher": {"model": "student2d", "patch": 5, "train": {"epochs": 1, "lr": 0.01}},
    "variants": [{"name": "pruned", "steps": [{"method": "prune", "target": 0.5}]}],
    "targets": ["cortex-m4"],
}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
yaml_like = st.text(
    alphabet=st.sampled_from(list("abc:-[]{},&*!|>'\"#?\n \t0123456789.%@")), max_size=200
)


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "recipe.yaml"


def _load(path: Path, text: str, overrides: tuple[str, ...] = ()) -> Recipe | None:
    """``load_recipe`` of ``text``: the Recipe, or None after a one-line RecipeError."""
    path.write_text(text, encoding="utf-8")
    try:
        recipe, _ = load_recipe(str(path), overrides=overrides)
    except RecipeError as exc:
        message = str(exc)
        assert message.startswith(str(path)) or message.startswith("--set"), message
        assert "\n" not in message
        return None
    assert isinstance(recipe, Recipe)
    return recipe


@FUZZ
@given(text=st.text(max_size=300) | yaml_like)
def test_any_text_is_a_recipe_or_a_recipe_error(recipe_file: Path, text: str) -> None:
    _load(recipe_file, text)


@FUZZ
@given(document=documents)
def test_any_yaml_document_is_a_recipe_or_a_recipe_error(recipe_file: Path, document: Any) -> None:
    _load(recipe_file, yaml.safe_dump(document, allow_unicode=True))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in items:
        found += _paths(child, (*prefix, key))
    return found


@FUZZ
@given(data=st.data(), value=documents)
def test_a_valid_recipe_with_one_field_replaced_validates_or_names_the_field(
    recipe_file: Path, data: st.DataObject, value: Any
) -> None:
    import copy

    recipe = copy.deepcopy(GOOD)
    path = data.draw(st.sampled_from(_paths(recipe)))
    node = recipe
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    _load(recipe_file, yaml.safe_dump(recipe, allow_unicode=True))


@FUZZ
@given(
    assignments=st.lists(
        st.text(max_size=40) | st.from_regex(r"[a-z_.0-9]{1,30}=[^\n]{0,20}", fullmatch=True),
        max_size=3,
    )
)
@example(assignments=["variants.²=1"])  # str.isdigit() accepts it, int() does not
@example(assignments=["variants.x\ny=1"])  # a line break in the key path
def test_any_override_gives_a_recipe_or_a_recipe_error(
    recipe_file: Path, assignments: list[str]
) -> None:
    _load(recipe_file, yaml.safe_dump(GOOD), tuple(assignments))


def test_the_fuzzed_base_recipe_is_valid(recipe_file: Path) -> None:
    """The mutations above start from a recipe that validates (so they can fail for real)."""
    assert _load(recipe_file, yaml.safe_dump(GOOD)) is not None


# ------------------------------------------------------------------------------ splits

numbers = st.text(
    alphabet=st.characters(categories=["Nd", "No"]) | st.sampled_from(list("0123456789.:=-e")),
    max_size=12,
)
spec_text = st.text(max_size=40) | st.builds(
    lambda kind, args: f"{kind}:{args}",
    st.sampled_from(["random", "disjoint", "RANDOM", " random", "mask", "grid"]),
    st.text(max_size=20)
    | numbers
    | st.builds(lambda f, t: f"{f}:tile={t}", numbers, numbers)
    | st.from_regex(
        r"-?[0-9]{0,4}(\.[0-9]{0,4})?(:tile=-?[0-9]{0,3})?(:guard=[a-z]{0,6})?", fullmatch=True
    ),
)


@settings(max_examples=300, deadline=None)
@given(spec=spec_text)
@example(spec="random:²")  # str.isdigit() accepts it, int() does not
@example(spec="disjoint:0.1:tile=²")
def test_any_split_spec_parses_or_lists_the_accepted_forms(spec: str) -> None:
    try:
        parsed = parse_split_spec(spec)
    except ConfigError as exc:
        assert GRAMMAR in str(exc)
        return
    assert parsed.kind in ("random", "disjoint", "mask")
    if parsed.fraction is not None:
        assert 0 < parsed.fraction < 1
    if parsed.count is not None:
        assert parsed.count >= 1


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 16),
    w=st.integers(1, 16),
    n_classes=st.integers(1, 4),
    unlabelled=st.floats(0, 0.9),
    spec=st.sampled_from(
        [
            "random:0.3",
            "random:0.05",
            "random:2",
            "random:40",
            "disjoint:0.3",
            "disjoint:0.5:tile=4",
            "disjoint:0.2:tile=2:guard=train",
        ]
    ),
    patch=st.sampled_from([1, 3, 5, 7]),
    val=st.sampled_from([0.0, 0.1, 0.3]),
    seed=st.integers(0, 2**16),
)
def test_split_of_any_label_map_is_valid_or_a_split_error(
    h: int, w: int, n_classes: int, unlabelled: float, spec: str, patch: int, val: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(1, n_classes + 1, size=(h, w)).astype(np.int32)
    labels[rng.random((h, w)) < unlabelled] = 0
    try:
        split = make_split(labels, spec, seed=seed, patch_size=patch, val_fraction=val)
    except (SplitError, ConfigError) as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(split, Split)
    labelled = labels > 0
    masks = (split.train, split.val, split.test)
    for mask in masks:
        assert mask.shape == labels.shape and mask.dtype == bool
        assert not (mask & ~labelled).any()
    assert not (split.train & split.test).any() and not (split.val & split.test).any()
    assert not (split.train & split.val).any()
    assert split.train.any() and split.test.any()
    again = make_split(labels, spec, seed=seed, patch_size=patch, val_fraction=val)
    for a, b in zip(masks, (again.train, again.val, again.test), strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------ patches


@settings(max_examples=80, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    b=st.integers(1, 4),
    k=st.integers(-2, 15),
    mode=st.sampled_from(["reflect", "constant"]),
    n=st.integers(0, 6),
    seed=st.integers(0, 2**16),
)
def test_patches_at_random_centres_match_the_cube_or_the_size_is_refused(
    h: int, w: int, b: int, k: int, mode: str, n: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    cube = rng.normal(size=(h, w, b)).astype(np.float32)
    centers = np.stack([rng.integers(0, h, n), rng.integers(0, w, n)], axis=1)
    try:
        patches = extract_patches(cube, centers, k, mode=mode)
    except ConfigError as exc:
        assert k < 1 or k % 2 == 0 or k > min(h, w) or "reflect" in str(exc), str(exc)
        return
    assert k % 2 == 1 and 1 <= k <= min(h, w)
    r = k // 2
    assert patches.shape == (n, k, k, b)
    np.testing.assert_array_equal(patches[:, r, r], cube[centers[:, 0], centers[:, 1]])
    for (row, col), patch in zip(centers, patches, strict=True):
        for i in range(k):
            for j in range(k):
                y, x = row + i - r, col + j - r
                if 0 <= y < h and 0 <= x < w:  # inside the scene: the pixel itself
                    np.testing.assert_array_equal(patch[i, j], cube[y, x])
                elif mode == "constant":
                    assert not patch[i, j].any()
    assert to_layout(patches, "1d").shape == (n, b, 1)
    np.testing.assert_array_equal(to_layout(patches, "1d")[:, :, 0], patches[:, r, r])


@settings(max_examples=40, deadline=None)
@given(
    centers=st.lists(st.tuples(st.integers(-3, 14), st.integers(-3, 14)), max_size=5),
    dtype=st.sampled_from([np.int64, np.int32, np.float64]),
)
def test_centres_outside_the_scene_or_not_integers_are_refused(
    centers: list[tuple[int, int]], dtype: type
) -> None:
    cube = np.zeros((10, 11, 2), np.float32)
    array = np.array(centers, dtype=dtype).reshape(-1, 2)
    inside = all(0 <= r < 10 and 0 <= c < 11 for r, c in centers)
    assume(centers or dtype is not np.float64)
    try:
        extract_patches(cube, array, 3)
    except DataFormatError as exc:
        assert not inside or dtype is np.float64, str(exc)
        return
    assert inside and (dtype is not np.float64 or not centers)


def test_tfhsi_errors_are_the_only_escape() -> None:
    """The properties above catch TfhsiError subclasses only; anything else fails them."""
    assert issubclass(RecipeError, TfhsiError) and issubclass(SplitError, TfhsiError)
