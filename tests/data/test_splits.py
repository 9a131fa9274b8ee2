"""Splits: stratification, reproducibility, spatial disjointness, leakage, masks, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tfhsi.data.scenes import get_scene
from tfhsi.data.splits import Split, leakage, make_split, parse_split_spec
from tfhsi.errors import ConfigError, DataFormatError, SplitError

FAST = settings(max_examples=25, deadline=None)


def _blob_labels(h: int, w: int, n_classes: int, seed: int, *, block: int = 4) -> np.ndarray:
    """Piecewise-constant fields of classes 1..n (some unlabelled), like a real ground truth."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, n_classes + 1, size=(h // block + 1, w // block + 1))
    labels = np.kron(coarse, np.ones((block, block), np.int32))[:h, :w]
    return labels.astype(np.int32)


def _dense_labels(h: int, w: int, n_classes: int, seed: int) -> np.ndarray:
    """Every pixel labelled, every class with plenty of pixels."""
    rng = np.random.default_rng(seed)
    return rng.integers(1, n_classes + 1, size=(h, w)).astype(np.int32)


def _per_class(mask: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(labels[mask], minlength=n_classes + 1)[1:]


def _assert_valid(split: Split, labels: np.ndarray) -> None:
    labelled = labels > 0
    for m in (split.train, split.val, split.test):
        assert m.dtype == bool and m.shape == labels.shape
        assert not (m & ~labelled).any(), "a subset holds an unlabelled pixel"
    assert not (split.train & split.test).any()
    assert not (split.train & split.val).any()
    assert not (split.val & split.test).any()


def _naive_leakage(train: np.ndarray, test: np.ndarray, patch: int) -> float:
    r = patch // 2
    hits = total = 0
    for i, j in zip(*np.nonzero(test), strict=True):
        total += 1
        hits += any(
            abs(i - a) <= r and abs(j - b) <= r for a, b in zip(*np.nonzero(train), strict=True)
        )
    return hits / total if total else 0.0


# ---------------------------------------------------------------- random


@FAST
@given(
    h=st.integers(4, 20),
    w=st.integers(4, 20),
    n_classes=st.integers(1, 5),
    fraction=st.floats(0.01, 0.95),
    seed=st.integers(0, 2**31),
)
def test_random_fraction_takes_round_fn_per_class_clipped(h, w, n_classes, fraction, seed):
    labels = _dense_labels(h, w, n_classes, seed)
    n = np.bincount(labels.ravel(), minlength=n_classes + 1)[1:]
    if (n[n > 0] < 2).any():
        with pytest.raises(SplitError):
            make_split(labels, f"random:{fraction}", seed=seed)
        return
    split = make_split(labels, f"random:{fraction}", seed=seed)
    _assert_valid(split, labels)
    expected = np.where(n > 0, np.clip(np.round(fraction * n), 1, n - 1), 0)
    assert (_per_class(split.train, labels, n_classes) == expected).all()
    # without val, every labelled pixel is train or test
    assert ((split.train | split.test) == (labels > 0)).all()


@FAST
@given(count=st.integers(1, 6), val=st.sampled_from([0.0, 0.2]), seed=st.integers(0, 2**31))
def test_random_count_takes_n_per_class_and_val_from_the_rest(count, val, seed):
    labels = _blob_labels(24, 24, 4, seed)
    n = np.bincount(labels.ravel(), minlength=5)[1:]
    if (n[n > 0] < count + 1).any():
        return
    split = make_split(labels, f"random:{count}", seed=seed, val_fraction=val)
    _assert_valid(split, labels)
    assert (_per_class(split.train, labels, 4) == np.where(n > 0, count, 0)).all()
    expected_val = np.where(n > 0, np.minimum(np.round(val * n), n - count - 1), 0)
    assert (_per_class(split.val, labels, 4) == expected_val).all()
    assert (_per_class(split.test, labels, 4)[n > 0] >= 1).all()


@pytest.mark.parametrize("spec", ["random:0.3", "random:5", "disjoint:0.3:tile=4"])
def test_same_seed_gives_identical_masks_and_other_seed_differs(spec):
    labels = _blob_labels(40, 40, 4, 0, block=3)
    a = make_split(labels, spec, seed=7, patch_size=3)
    b = make_split(labels, spec, seed=7, patch_size=3)
    c = make_split(labels, spec, seed=8, patch_size=3)
    for s in ("train", "val", "test"):
        assert np.array_equal(a.mask(s), b.mask(s))
    assert not np.array_equal(a.train, c.train)


def test_random_split_leaks_on_a_dense_map():
    labels = _dense_labels(30, 30, 3, 0)
    split = make_split(labels, "random:0.1", seed=0, patch_size=5)
    assert split.leakage() > 0.5  # 10 % of pixels in train: most test pixels see one in 5x5


def test_too_small_class_error_names_class_label_and_count():
    labels = _dense_labels(10, 10, 2, 0)
    labels[0, 0] = 3  # a single pixel of class 3
    with pytest.raises(SplitError, match=r"'Oats' \(label 3, 1 labelled pixels\)") as err:
        make_split(labels, "random:0.1", seed=0, class_names=["a", "b", "Oats"])
    assert "drop the class" in str(err.value)
    labels[0, 1] = 3
    with pytest.raises(SplitError, match=r"random:5 needs at least 6.*label 3 \(2 labelled"):
        make_split(labels, "random:5", seed=0)


# ---------------------------------------------------------------- spec grammar


@pytest.mark.parametrize(
    "spec",
    [
        "random",
        "random:0",
        "random:1.0",
        "random:-3",
        "random:abc",
        "disjoint:1.5",
        "disjoint:0.1:tile=1",
        "disjoint:0.1:size=8",
        "disjoint:0.1:guard=both",
        "mask:",
        "mask:a.npy,b.npy,c.npy,d.npy",
        "mask:a.npy,,c.npy",
        "kfold:5",
        "",
    ],
)
def test_bad_spec_raises_config_error_listing_accepted_forms(spec):
    with pytest.raises(ConfigError, match="accepted forms: random:F"):
        parse_split_spec(spec)


def test_spec_parsing_reads_each_form():
    assert parse_split_spec("random:0.1").fraction == 0.1
    assert parse_split_spec("random:50").count == 50
    d = parse_split_spec("disjoint:0.2:tile=8:guard=train")
    assert (d.kind, d.fraction, d.tile, d.guard) == ("disjoint", 0.2, 8, "train")
    assert parse_split_spec("disjoint:0.2").guard == "test"
    m = parse_split_spec("mask:tr.npy, te.mat")
    assert (m.train_path, m.test_path) == (Path("tr.npy"), Path("te.mat"))
    assert parse_split_spec("mask:tr.npy").test_path is None


def test_fraction_plus_val_of_one_or_more_is_rejected():
    with pytest.raises(ConfigError, match="smaller than 1"):
        make_split(_dense_labels(8, 8, 2, 0), "random:0.6", seed=0, val_fraction=0.4)


# ---------------------------------------------------------------- leakage


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    patch=st.integers(1, 7),
    seed=st.integers(0, 2**31),
)
def test_leakage_matches_a_naive_double_loop(h, w, patch, seed):
    rng = np.random.default_rng(seed)
    state = rng.integers(0, 3, size=(h, w))
    train, test = state == 1, state == 2
    assert leakage(train, test, patch) == pytest.approx(_naive_leakage(train, test, patch))


def test_leakage_is_zero_without_test_pixels_and_one_when_all_adjacent():
    train = np.zeros((5, 5), bool)
    train[2, 2] = True
    assert leakage(train, np.zeros_like(train), 3) == 0.0
    test = np.zeros_like(train)
    test[1:4, 1:4] = True
    test[2, 2] = False
    assert leakage(train, test, 3) == 1.0
    assert leakage(train, test, 1) == 0.0


# ---------------------------------------------------------------- disjoint


@FAST
@given(
    seed=st.integers(0, 2**31),
    patch=st.sampled_from([1, 3, 5, 7, 11]),
    guard=st.sampled_from(["test", "train"]),
    val=st.sampled_from([0.0, 0.1]),
    tile=st.sampled_from([4, 6, 8]),
)
def test_disjoint_split_has_zero_leakage(seed, patch, guard, val, tile):
    labels = _blob_labels(40, 36, 5, seed, block=3)
    spec = f"disjoint:0.2:tile={tile}:guard={guard}"
    try:
        split = make_split(labels, spec, seed=seed, patch_size=patch, val_fraction=val)
    except SplitError as e:  # guard=train with small tiles and big patches can empty train
        assert guard == "train" and "leaves no training pixel" in str(e)
        assume(False)
    _assert_valid(split, labels)
    assert split.leakage() == 0.0
    assert leakage(split.train, split.test, patch) == 0.0
    if guard == "train":
        assert leakage(split.val, split.test, patch) == 0.0
    else:
        assert leakage(split.train | split.val, split.test, patch) == 0.0


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31), tile=st.sampled_from([3, 5, 8]))
def test_disjoint_without_guard_assigns_whole_tiles(seed, tile):
    labels = _blob_labels(30, 27, 4, seed, block=2)
    split = make_split(labels, f"disjoint:0.3:tile={tile}", seed=seed, patch_size=1)
    state = np.select([split.train, split.val, split.test], [1, 2, 3], 0)
    labelled = labels > 0

    def whole_tiles(oy: int, ox: int) -> bool:
        rows = (np.arange(30)[:, None] + oy) // tile
        cols = (np.arange(27)[None, :] + ox) // tile
        tid = (rows * 100 + cols)[labelled]
        kinds = {}
        for t, s in zip(tid.tolist(), state[labelled].tolist(), strict=True):
            if kinds.setdefault(t, s) != s:
                return False
        return True

    assert any(whole_tiles(oy, ox) for oy in range(tile) for ox in range(tile))


def test_disjoint_stratifies_each_class_near_the_target_fraction():
    labels = _blob_labels(96, 96, 4, 3, block=4)
    split = make_split(labels, "disjoint:0.25:tile=4", seed=0, patch_size=3)
    fractions = [row["train_fraction"] for row in split.summary(labels)]
    assert fractions == pytest.approx([0.25] * 4, abs=0.03)
    assert split.notes == ()


def test_disjoint_notes_a_class_that_fits_in_one_tile():
    labels = np.ones((48, 48), np.int32)
    labels[20:22, 20:22] = 2
    split = make_split(labels, "disjoint:0.2:tile=16", seed=0, class_names=["big", "tiny"])
    assert any("'tiny'" in n and "one 16x16 tile" in n for n in split.notes)


# ---------------------------------------------------------------- mask files


def _mask_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels = _dense_labels(6, 7, 2, 0)
    labels[0, :] = 0
    train = np.zeros((6, 7), np.uint8)
    train[1:3, :3] = 1
    train[0, 0] = 1  # unlabelled in the ground truth: ignored with a note
    test = np.zeros((6, 7), np.uint8)
    test[4:, 4:] = 2
    return labels, train, test


def test_mask_split_from_npy_makes_every_other_labelled_pixel_test(tmp_path):
    labels, train, _ = _mask_scene()
    np.save(tmp_path / "train.npy", train)
    split = make_split(labels, f"mask:{tmp_path / 'train.npy'}", seed=0)
    _assert_valid(split, labels)
    assert np.array_equal(split.train, (train > 0) & (labels > 0))
    assert np.array_equal(split.test, (labels > 0) & ~split.train)
    assert any("1 pixels" in n and "ignored" in n for n in split.notes)


def test_mask_split_from_mat_uses_both_maps(tmp_path):
    labels, train, test = _mask_scene()
    scipy.io.savemat(tmp_path / "train.mat", {"train_map": train})
    scipy.io.savemat(tmp_path / "test.mat", {"gt": test})
    spec = f"mask:{tmp_path / 'train.mat'},{tmp_path / 'test.mat'}"
    split = make_split(labels, spec, seed=0)
    assert np.array_equal(split.train, (train > 0) & (labels > 0))
    assert np.array_equal(split.test, (test > 0) & (labels > 0))


def test_mask_with_wrong_shape_names_file_and_both_shapes(tmp_path):
    labels, _, _ = _mask_scene()
    np.save(tmp_path / "small.npy", np.ones((5, 7), np.uint8))
    with pytest.raises(DataFormatError, match=r"small\.npy has shape \(5, 7\).*\(6, 7\)"):
        make_split(labels, f"mask:{tmp_path / 'small.npy'}", seed=0)


def test_overlapping_masks_and_ambiguous_mat_are_rejected(tmp_path):
    labels, train, _ = _mask_scene()
    np.save(tmp_path / "a.npy", train)
    with pytest.raises(SplitError, match="overlap on"):
        make_split(labels, f"mask:{tmp_path / 'a.npy'},{tmp_path / 'a.npy'}", seed=0)
    scipy.io.savemat(tmp_path / "two.mat", {"x": train, "y": train})
    with pytest.raises(DataFormatError, match="several 2-D variables"):
        make_split(labels, f"mask:{tmp_path / 'two.mat'}", seed=0)
    with pytest.raises(ConfigError, match="does not exist"):
        make_split(labels, f"mask:{tmp_path / 'missing.npy'}", seed=0)


# ---------------------------------------------------------------- validation never from test


def _fixed_sets(tmp_path: Path, *, seed: int = 0) -> tuple[np.ndarray, Path, Path]:
    """A published-style fixed split: TRAIN and TEST maps that cover every labelled pixel."""
    labels = _dense_labels(24, 20, 3, seed)
    labels[:2] = 0
    rng = np.random.default_rng(seed + 1)
    train = (rng.random(labels.shape) < 0.4) & (labels > 0)
    np.save(tmp_path / "train.npy", np.where(train, labels, 0))
    np.save(tmp_path / "test.npy", np.where(~train & (labels > 0), labels, 0))
    return labels, tmp_path / "train.npy", tmp_path / "test.npy"


def test_mask_train_test_carves_a_stratified_val_share_from_training_pixels_only(tmp_path):
    labels, tr, te = _fixed_sets(tmp_path)
    given_train, given_test = np.load(tr) > 0, np.load(te) > 0
    split = make_split(labels, f"mask:{tr},{te}", seed=3, val_fraction=0.1)
    _assert_valid(split, labels)
    assert not (split.val & ~given_train).any(), "a validation pixel is not a training pixel"
    assert np.array_equal(split.train | split.val, given_train)
    assert np.array_equal(split.test, given_test)
    n_train = _per_class(given_train, labels, 3)
    assert (_per_class(split.val, labels, 3) == np.round(0.1 * n_train)).all()
    n_val = int(split.val.sum())
    assert any(
        f"validation: 10 % of the training pixels of each class ({n_val} pixels" in note
        and "seed 3" in note
        for note in split.notes
    ), split.notes
    assert split.selection_subset() == "val"
    assert {row["val_from"] for row in split.summary(labels)} == {"train"}


def test_mask_val_carving_is_seeded(tmp_path):
    labels, tr, te = _fixed_sets(tmp_path)
    a, b, c = (make_split(labels, f"mask:{tr},{te}", seed=s, val_fraction=0.2) for s in (5, 5, 6))
    for subset in ("train", "val", "test"):
        assert np.array_equal(a.mask(subset), b.mask(subset))
    assert not np.array_equal(a.val, c.val)
    assert np.array_equal(a.test, c.test)


@FAST
@given(seed=st.integers(0, 2**31), val=st.floats(0.01, 0.9), with_test=st.booleans())
def test_mask_carving_takes_val_only_from_train_for_any_maps(
    tmp_path_factory, seed, val, with_test
):
    folder = tmp_path_factory.mktemp("maps")
    labels = _blob_labels(16, 18, 4, seed, block=2)
    assume((labels > 0).sum() >= 2)
    rng = np.random.default_rng(seed)
    state = rng.integers(0, 3, size=labels.shape)  # 1 = train map, 2 = test map, 0 = neither
    state[np.unravel_index(np.flatnonzero(labels > 0)[:2], labels.shape)] = [1, 2]
    np.save(folder / "tr.npy", (state == 1).astype(np.uint8))
    np.save(folder / "te.npy", (state == 2).astype(np.uint8))
    spec = f"mask:{folder / 'tr.npy'}" + (f",{folder / 'te.npy'}" if with_test else "")
    split = make_split(labels, spec, seed=seed, val_fraction=val)
    _assert_valid(split, labels)
    given_train = (state == 1) & (labels > 0)
    assert np.array_equal(split.train | split.val, given_train)
    expected_test = (state == 2) if with_test else ~given_train
    assert np.array_equal(split.test, expected_test & (labels > 0))
    n_train = _per_class(given_train, labels, 4)
    expected = np.minimum(np.round(val * n_train), np.maximum(n_train - 1, 0))
    assert (_per_class(split.val, labels, 4) == expected).all()


def test_mask_train_alone_keeps_every_other_labelled_pixel_as_test(tmp_path):
    labels, tr, _ = _fixed_sets(tmp_path)
    given_train = np.load(tr) > 0
    split = make_split(labels, f"mask:{tr}", seed=0, val_fraction=0.1)
    assert split.val.any() and not (split.val & ~given_train).any()
    assert np.array_equal(split.test, (labels > 0) & ~given_train)


def test_class_with_too_few_training_pixels_keeps_them_all_with_a_note(tmp_path):
    labels, _, _ = _fixed_sets(tmp_path)
    train = np.zeros(labels.shape, np.uint8)
    for c, k in ((1, 40), (2, 3), (3, 1)):  # 5 % of 3 and of 1 round to 0
        rows, cols = np.nonzero(labels == c)
        train[rows[:k], cols[:k]] = 1
    np.save(tmp_path / "few.npy", train)
    np.save(tmp_path / "rest.npy", (labels > 0) & (train == 0))
    split = make_split(
        labels, f"mask:{tmp_path / 'few.npy'},{tmp_path / 'rest.npy'}", seed=0,
        val_fraction=0.05, class_names=["a", "b", "c"],
    )  # fmt: skip
    assert list(_per_class(split.val, labels, 3)) == [2, 0, 0]
    assert list(_per_class(split.train, labels, 3)) == [38, 3, 1]
    note = next(n for n in split.notes if "too few training pixels" in n)
    assert "'b' (label 2, 3 training pixels)" in note and "'c' (label 3, 1 training" in note
    assert "'a'" not in note


def test_mask_without_val_fraction_has_no_selection_subset(tmp_path):
    labels, tr, te = _fixed_sets(tmp_path)
    split = make_split(labels, f"mask:{tr},{te}", seed=0, val_fraction=0.0)
    assert not split.val.any() and split.selection_subset() is None
    assert any(n.startswith("validation: none") for n in split.notes)
    assert {row["val_from"] for row in split.summary(labels)} == {"none"}


def test_explicit_val_mask_is_used_as_given_and_nothing_is_carved(tmp_path):
    labels, tr, te = _fixed_sets(tmp_path)
    given_test = np.load(te) > 0
    val_map = given_test & (np.arange(labels.shape[1])[None, :] < 5)
    np.save(tmp_path / "test_only.npy", given_test & ~val_map)
    np.save(tmp_path / "val.npy", val_map.astype(np.uint8))
    spec = f"mask:{tr},{tmp_path / 'test_only.npy'},{tmp_path / 'val.npy'}"
    split = make_split(labels, spec, seed=0, val_fraction=0.3)
    assert np.array_equal(split.val, val_map)
    assert np.array_equal(split.train, np.load(tr) > 0)
    assert np.array_equal(split.test, given_test & ~val_map)
    assert split.selection_subset() == "val"
    assert {row["val_from"] for row in split.summary(labels)} == {"mask"}
    assert any("validation: the pixels of" in n for n in split.notes)
    parsed = parse_split_spec("mask:a.npy,b.npy, c.mat")
    assert parsed.val_path == Path("c.mat")


@pytest.mark.parametrize(
    ("maps", "error", "match"),
    [
        (("train", "test", "train"), SplitError, r"train\.npy and .*train\.npy overlap on \d+"),
        (("train", "test", "test"), SplitError, r"test\.npy and .*test\.npy overlap on \d+"),
        (("train", "test", "small"), DataFormatError, r"small\.npy has shape \(5, 20\)"),
        (("train", "test", "empty"), SplitError, r"empty\.npy \(VAL\) selects no labelled"),
    ],
)
def test_bad_val_mask_combinations_give_a_one_line_error(tmp_path, maps, error, match):
    labels, _, _ = _fixed_sets(tmp_path)
    np.save(tmp_path / "small.npy", np.ones((5, 20), np.uint8))
    np.save(tmp_path / "empty.npy", np.zeros(labels.shape, np.uint8))
    spec = "mask:" + ",".join(str(tmp_path / f"{m}.npy") for m in maps)
    with pytest.raises(error, match=match) as err:
        make_split(labels, spec, seed=0, val_fraction=0.1)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("spec", "source"), [("random:0.3", "rest"), ("disjoint:0.3:tile=4", "tiles")]
)
def test_random_and_disjoint_take_val_outside_test_and_none_without_val_fraction(spec, source):
    labels = _blob_labels(40, 40, 4, 0, block=3)
    with_val = make_split(labels, spec, seed=1, patch_size=3, val_fraction=0.1)
    _assert_valid(with_val, labels)
    assert with_val.selection_subset() == "val"
    assert with_val.summary(labels)[0]["val_from"] == source
    without = make_split(labels, spec, seed=1, patch_size=3)
    assert without.selection_subset() is None


# ---------------------------------------------------------------- Split object


def test_save_load_round_trip_keeps_masks_and_provenance(tmp_path):
    labels = _blob_labels(20, 20, 3, 1, block=2)
    split = make_split(labels, "disjoint:0.3:tile=5", seed=4, patch_size=3, val_fraction=0.1)
    path = split.save(tmp_path / "runs" / "split.npz")
    loaded = Split.load(path)
    for s in ("train", "val", "test"):
        assert np.array_equal(loaded.mask(s), split.mask(s))
    assert (loaded.spec, loaded.seed, loaded.patch_size) == ("disjoint:0.3:tile=5", 4, 3)
    assert loaded.notes == split.notes
    assert list(tmp_path.joinpath("runs").iterdir()) == [path]  # no temp file left


def test_load_rejects_files_that_are_not_splits(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(DataFormatError, match="not a tfhsi split"):
        Split.load(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataFormatError):
        Split.load(tmp_path / "junk.npz")
    with pytest.raises(ConfigError, match="does not exist"):
        Split.load(tmp_path / "nope.npz")


def test_centers_are_row_major_int32_and_summary_counts_add_up():
    labels = _dense_labels(6, 5, 2, 0)
    split = make_split(labels, "random:0.5", seed=0, val_fraction=0.2)
    centers = split.centers("train")
    assert centers.dtype == np.int32 and centers.shape == (int(split.train.sum()), 2)
    assert np.array_equal(centers, np.argwhere(split.train))
    assert (np.diff(centers[:, 0] * 5 + centers[:, 1]) > 0).all()
    rows = split.summary(labels, ["x", "y"])
    assert [r["name"] for r in rows] == ["x", "y"]
    for r in rows:
        assert r["train"] + r["val"] + r["test"] + r["unused"] == r["labelled"]
    with pytest.raises(ConfigError, match="unknown split subset"):
        split.centers("training")


# ---------------------------------------------------------------- real data


@pytest.mark.real_data
def test_indian_pines_random_and_disjoint_splits(real_data_dir: Path, capsys):
    gt_path = real_data_dir / "indian_pines" / "Indian_pines_gt.mat"
    if not gt_path.is_file():
        pytest.skip(f"{gt_path} not found")
    labels = scipy.io.loadmat(gt_path)["indian_pines_gt"].astype(np.int32)
    names = get_scene("indian_pines").class_names
    n = np.bincount(labels.ravel(), minlength=17)[1:]

    rnd = make_split(labels, "random:0.1", seed=0, patch_size=11)
    assert (_per_class(rnd.train, labels, 16) == np.clip(np.round(0.1 * n), 1, n - 1)).all()
    assert rnd.leakage() > 0.5

    dis = make_split(labels, "disjoint:0.1", seed=0, patch_size=11, class_names=names)
    _assert_valid(dis, labels)
    assert dis.leakage() == 0.0
    rows = dis.summary(labels, names)
    trained = [r for r in rows if r["train"] > 0]
    assert len(trained) >= 14
    assert 0.08 <= dis.train.sum() / n.sum() <= 0.14
    for r in rows:  # a class left without training or test pixels is always explained
        if r["train"] == 0 or r["test"] == 0:
            assert any(f"'{r['name']}' (label {r['label']}," in note for note in dis.notes), r
    with capsys.disabled():
        print(f"\nrandom:0.1 leakage(patch 11)={rnd.leakage():.3f}")
        print(f"disjoint:0.1 patch 11: leakage={dis.leakage()}, notes={list(dis.notes)}")
        for r in rows:
            print(
                f"  {r['label']:2d} {r['name']:28s} n={r['labelled']:5d} train={r['train']:4d} "
                f"test={r['test']:5d} unused={r['unused']:4d} frac={r['train_fraction']:.3f}"
            )


# ---------------------------------------------------------------- test_pixels


@FAST
@given(
    n=st.integers(1, 400),
    seed=st.integers(0, 2**31),
    spec=st.sampled_from(["random:0.1", "disjoint:0.2:tile=6"]),
)
def test_test_pixels_keeps_n_test_pixels_per_class_in_proportion_and_the_rest_unchanged(
    n, spec, seed
):
    labels = _blob_labels(40, 40, 5, seed=3)
    full = make_split(labels, spec, seed=seed, patch_size=3, val_fraction=0.05)
    cut = make_split(labels, spec, seed=seed, patch_size=3, val_fraction=0.05, test_pixels=n)
    _assert_valid(cut, labels)
    total = int(full.test.sum())
    assert int(cut.test.sum()) == min(n, total)
    assert not (cut.test & ~full.test).any(), "a kept test pixel was not a test pixel"
    assert (cut.train == full.train).all() and (cut.val == full.val).all()
    if n >= total:
        assert cut.notes == full.notes
        return
    kept, before = _per_class(cut.test, labels, 5), _per_class(full.test, labels, 5)
    present = before > 0
    if n >= present.sum():
        assert (kept[present] >= 1).all(), "a class lost every test pixel"
    # proportional: within one pixel of the share, beyond the one-per-class minimum
    share = before * n / total
    assert (kept <= np.maximum(np.ceil(share), 1) + 1e-9).all()
    assert "test_pixels" in cut.notes[-1] and f"{total:,}" in cut.notes[-1]
    again = make_split(labels, spec, seed=seed, patch_size=3, val_fraction=0.05, test_pixels=n)
    assert (again.test == cut.test).all()


def test_test_pixels_below_one_is_a_config_error():
    with pytest.raises(ConfigError, match="test_pixels"):
        make_split(_dense_labels(10, 10, 2, 0), "random:0.1", seed=0, test_pixels=0)
