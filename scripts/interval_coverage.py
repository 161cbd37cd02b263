"""Why the tables' intervals are Student-t over seeds and not a percentile bootstrap: the
coverage of the true mean by each 95% interval at the replicate counts sweeps have (3 to 10),
on normal and on skewed (log-normal) replicate values.

    python scripts/interval_coverage.py [--repetitions 2000] [--draws 2000]

Prints, per distribution and n, the share of repetitions whose interval covers the mean and the
mean width. The result is in docs/statistics.md.
"""
from __future__ import annotations

import argparse

import numpy as np
from scipy import stats


def intervals(x: np.ndarray, draws: int, rng) -> dict[str, tuple[float, float]]:
    n, m, s = len(x), x.mean(), x.std(ddof=1)
    boot = x[rng.integers(0, n, (draws, n))]
    means, sds = boot.mean(1), boot.std(1, ddof=1)
    t = stats.t.ppf(0.975, n - 1)
    ok = sds > 0
    studentized = (means[ok] - m) / (sds[ok] / np.sqrt(n))
    lo, hi = np.quantile(studentized, [0.025, 0.975])
    return {"percentile bootstrap": tuple(np.quantile(means, [0.025, 0.975])),
            "bootstrap-t": (m - hi * s / np.sqrt(n), m - lo * s / np.sqrt(n)),
            "Student-t": (m - t * s / np.sqrt(n), m + t * s / np.sqrt(n))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repetitions", type=int, default=2000)
    p.add_argument("--draws", type=int, default=2000, help="bootstrap draws per interval")
    a = p.parse_args()
    rng = np.random.default_rng(0)
    dists = {"normal": (lambda n: rng.normal(0, 1, n), 0.0),
             "log-normal (sigma 0.5)": (lambda n: rng.lognormal(0, 0.5, n), np.exp(0.125))}
    print("| replicate values | n | interval | coverage | mean width |")
    print("|---|---|---|---|---|")
    for name, (draw, truth) in dists.items():
        for n in (3, 5, 10):
            cover: dict[str, int] = {}
            width: dict[str, float] = {}
            for _ in range(a.repetitions):
                for k, (lo, hi) in intervals(draw(n), a.draws, rng).items():
                    cover[k] = cover.get(k, 0) + (lo <= truth <= hi)
                    width[k] = width.get(k, 0.0) + (hi - lo)
            for k in cover:
                w = width[k] / a.repetitions
                print(f"| {name} | {n} | {k} | {cover[k] / a.repetitions:.3f} | "
                      f"{w:.3g} |" if np.isfinite(w) and w < 1e6 else
                      f"| {name} | {n} | {k} | {cover[k] / a.repetitions:.3f} | unbounded |")


if __name__ == "__main__":
    main()
