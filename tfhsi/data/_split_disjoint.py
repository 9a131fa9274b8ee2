"""Spatially disjoint splits: whole square tiles go to train, val or test, then a guard band.

Used by :func:`tfhsi.data.splits.make_split` for ``disjoint:F[:tile=T][:guard=G]``; not public.

Algorithm (deterministic from the ``numpy.random.Generator`` passed in):

1. Cut the scene into ``T x T`` tiles (default 12) on a grid shifted by a random offset.
2. Train tiles: a randomised local search (add / drop / swap one tile) minimises
   ``sum_c |F * n_c - train_c| / n_c`` (relative per-class deficit) plus 1 for each class that
   spans two or more tiles yet gets none or all of its pixels: "stratified as well as whole
   tiles allow". A class inside a single tile cannot be split; a note says so.
3. Val tiles: the same search over the remaining tiles, targets ``val_fraction * n_c``.
4. All other tiles are test.
5. Guard band of radius ``r = patch_size // 2`` (Chebyshev), so no training patch covers a test
   pixel and leakage is exactly 0. Guarded pixels belong to no subset.

   * ``guard=test`` (default): test pixels within ``r`` of a train or val pixel are dropped.
     Train keeps its target size; the test set shrinks (Indian Pines, ``disjoint:0.1``,
     patch 11: train ~10.6 %, test ~65 % of the labelled pixels).
   * ``guard=train``: train and val pixels within ``r`` of a test pixel are dropped. Same case:
     train ~0.6 % and ~8 of 16 classes without any training pixel, hence not the default.

6. Steps 1-5 are repeated for a few grid offsets (fewer on large scenes); the attempt with the
   lowest cost, counting classes left without training or test pixels, wins.

The achieved per-class counts and fractions are in :meth:`tfhsi.data.splits.Split.summary`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Tile side when the spec gives none: ~170 tiles on Indian Pines (145x145), ~1,500 on Pavia
#: University (610x340). Smaller tiles stratify better and split small classes more often, but
#: lose more test pixels to the guard band and put train and test closer together. On Indian
#: Pines at patch 11, 12 leaves 0.7 of 16 classes without training pixels on average (16: 1.0)
#: with a median per-class fraction error of 0.009 (16: 0.024).
DEFAULT_TILE = 12
GUARDS = ("test", "train")
_RESTARTS = 8
_MAX_MOVES = 100_000
_TILE_BUDGET = 8_000  # fewer restarts on large scenes: restarts * tiles <= budget


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within Chebyshev distance ``radius`` of a True pixel of ``mask``."""
    if radius <= 0:
        return np.array(mask, dtype=bool)
    out = ndimage.maximum_filter(
        mask.astype(np.uint8), size=2 * radius + 1, mode="constant", cval=0
    )
    return out.astype(bool)


def _tile_ids(shape: tuple[int, int], tile: int, rng: np.random.Generator) -> np.ndarray:
    h, w = shape
    oy, ox = (int(v) for v in rng.integers(0, tile, size=2))
    rows = (np.arange(h) + oy) // tile
    cols = (np.arange(w) + ox) // tile
    return rows[:, None] * (int(cols[-1]) + 1) + cols[None, :]


def _search(
    counts: np.ndarray,
    eligible: np.ndarray,
    target: np.ndarray,
    guarded: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, float]:
    """Randomised local search over tile sets; returns (chosen tiles, cost).

    Cost: ``sum_c |target_c - assigned_c| / n_c`` plus 1 per ``guarded`` class with no or all
    of its pixels assigned. Moves: a random improving add or drop while there is one, else the
    first improving swap of a chosen tile (random order) for a free one; stops at a local optimum.
    """
    n = counts.sum(axis=0)
    weight = np.where(n > 0, 1.0 / np.maximum(n, 1), 0.0)

    def cost_of(assigned: np.ndarray) -> np.ndarray:  # (..., C) -> (...)
        penalty = guarded & ((assigned == 0) | (assigned == n))
        return (weight * np.abs(target - assigned)).sum(axis=-1) + penalty.sum(axis=-1)

    tiles = np.flatnonzero(eligible)
    chosen = np.zeros(len(counts), bool)
    assigned = np.zeros(counts.shape[1], np.int64)
    cost = float(cost_of(assigned))
    for _ in range(_MAX_MOVES):
        sel = chosen[tiles]
        delta = np.where(sel[:, None], -counts[tiles], counts[tiles])  # drop chosen, add free
        costs = cost_of(assigned + delta)
        better = np.flatnonzero(costs < cost - 1e-12)
        if better.size:
            k = int(rng.choice(better))
            t = tiles[k]
            chosen[t] = not chosen[t]
            assigned, cost = assigned + delta[k], float(costs[k])
            continue
        free = tiles[~sel]
        for t in rng.permutation(tiles[sel]):  # swap t for one free tile
            trial = assigned - counts[t] + counts[free]
            swap_costs = cost_of(trial)
            k = int(np.argmin(swap_costs)) if free.size else -1
            if k >= 0 and swap_costs[k] < cost - 1e-12:
                chosen[t], chosen[free[k]] = False, True
                assigned, cost = trial[k], float(swap_costs[k])
                break
        else:
            break
    return chosen, cost


def _attempt(
    labels: np.ndarray,
    n: np.ndarray,
    *,
    fraction: float,
    val_fraction: float,
    tile: int,
    radius: int,
    guard: str,
    rng: np.random.Generator,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One grid offset: tile search, masks and guard band; (score, train, val, test, splittable).

    The score is the train search cost plus 1 per present class that ends with no training or
    no test pixel, so restarts are compared on what the user gets.
    """
    n_classes = len(n)
    labelled = labels > 0
    grid = _tile_ids(labels.shape, tile, rng)
    n_tiles = int(grid.max()) + 1
    flat = grid[labelled].astype(np.int64) * n_classes + labels[labelled] - 1
    counts = np.bincount(flat, minlength=n_tiles * n_classes).reshape(n_tiles, n_classes)
    splittable = (counts > 0).sum(axis=0) >= 2
    has_pixels = counts.sum(axis=1) > 0
    train_t, cost = _search(counts, has_pixels, fraction * n, splittable, rng)
    val_t = np.zeros(n_tiles, bool)
    if val_fraction > 0:
        no_penalty = np.zeros(n_classes, bool)
        val_t, _ = _search(counts, has_pixels & ~train_t, val_fraction * n, no_penalty, rng)

    train = train_t[grid] & labelled
    val = val_t[grid] & labelled
    test = labelled & ~train & ~val
    if radius > 0 and guard == "train":
        near_test = dilate(test, radius)
        train &= ~near_test
        val &= ~near_test
    elif radius > 0:
        test &= ~dilate(train | val, radius)
    present = n > 0
    for mask in (train, test):
        got = np.bincount(labels[mask].astype(np.int64) - 1, minlength=n_classes) > 0
        cost += float((present & ~got).sum())
    return cost, train, val, test, splittable


def disjoint_masks(
    labels: np.ndarray,
    n_classes: int,
    *,
    fraction: float,
    val_fraction: float,
    tile: int,
    patch_size: int,
    guard: str,
    rng: np.random.Generator,
    names: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Returns ``(train, val, test, notes)`` boolean masks: best of a few grid offsets."""
    n = np.bincount(labels[labels > 0].astype(np.int64) - 1, minlength=n_classes)
    h, w = labels.shape
    restarts = int(np.clip(_TILE_BUDGET // ((h // tile + 1) * (w // tile + 1)), 2, _RESTARTS))
    attempts = [
        _attempt(
            labels,
            n,
            fraction=fraction,
            val_fraction=val_fraction,
            tile=tile,
            radius=patch_size // 2,
            guard=guard,
            rng=rng,
        )
        for _ in range(restarts)
    ]
    _, train, val, test, splittable = min(attempts, key=lambda a: a[0])

    notes = []
    for c in np.flatnonzero(n):
        in_class = labels == c + 1
        if not splittable[c]:
            notes.append(
                f"class {names[c]} lies within one {tile}x{tile} tile, so it cannot have both "
                f"training and test pixels; use a smaller tile="
            )
            continue
        for subset, mask in (("training", train), ("test", test)):
            if not (mask & in_class).any():
                notes.append(
                    f"class {names[c]} gets no {subset} pixels (tile {tile}, guard band of "
                    f"patch {patch_size} on {guard}); try another seed or a smaller tile="
                )
    return train, val, test, notes
