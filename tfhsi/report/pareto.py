"""Pareto fronts: the results no other result beats on both cost (size, latency) and accuracy."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["pareto_front"]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points not dominated when lower ``x`` (cost) and higher ``y`` are better.

    A point is dominated when another has ``x <=`` and ``y >=`` with at least one strict.
    Identical points are all kept; points with a NaN coordinate are never on the front.

    Returns:
        The indices of the front, ordered by increasing ``x`` (then decreasing ``y``).
    """
    valid = [i for i, (x, y) in enumerate(points) if not (math.isnan(x) or math.isnan(y))]
    order = sorted(valid, key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best_y = -math.inf
    best_at: tuple[float, float] | None = None
    for i in order:
        x, y = points[i]
        if y > best_y or (x, y) == best_at:
            front.append(i)
            if y > best_y:
                best_y, best_at = y, (x, y)
    return front
