"""The Pareto front of points scored on several objectives, all to be maximised (negate one to
minimise it). Pure Python: the sweep driver and the analysis both use it."""
from __future__ import annotations

import math
from typing import Sequence


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether `a` is at least as good as `b` on every objective and better on one."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated points, in input order; points with a NaN are left out
    (they cannot be compared). Equal points are all kept."""
    ok = [i for i, p in enumerate(points) if all(math.isfinite(v) for v in p)]
    return [i for i in ok if not any(dominates(points[j], points[i]) for j in ok if j != i)]
