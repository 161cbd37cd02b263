"""Intervals and tests over independent replicates: what every table cell, comparison and claim
reports. docs/statistics.md says why each method was chosen, with the coverage measured.

Two sources of noise make a value uncertain:
- the **seeds**: each replicate (pretrain_seed, seed) is an independently trained original and
  unlearning run; their spread is the spread of the values themselves;
- the **images**: a metric computed on 1,000 test images would move had other images been drawn
  (`value_se`, results schema v5). Replicates evaluated on the same images (one `seed`) share
  that error, so averaging over their pretraining seeds does not shrink it.

A cell's variance is therefore s^2 / n + v_img / k (s: the std over its n replicates, v_img: the
mean squared `value_se`, k: the number of distinct evaluation draws among the replicates), its
95% interval Student-t with Welch-Satterthwaite's degrees of freedom. A percentile bootstrap over
the seeds would be the obvious alternative; at 3 to 5 seeds it covers the mean in only 75-83% of
repetitions (measured, docs/statistics.md), so it is not used. Differences between two methods
are paired by replicate (same original, same images): the image error is largely common to both
and cancels, and a paired t-test on the differences gives the p-value, Holm-corrected over the
comparisons made together.

Pure functions on floats; scipy's t distribution (imported when first needed, so that loading
the analysis package stays light).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

CONFIDENCE = 0.95
METHOD = ("95% interval: Student-t over independent replicates (seeds), the images' standard "
          "error (value_se) added to the seeds' spread")
PAIRED_METHOD = ("paired by replicate (same original and images); 95% interval and p-value of "
                 "a paired t-test on the differences, Holm-corrected")


def _t_quantile(df: float, confidence: float = CONFIDENCE) -> float:
    from scipy.stats import t  # noqa: PLC0415 (lazy: scipy is slow to import)
    return float(t.ppf(0.5 + confidence / 2, df))


def _t_sf(x: float, df: float) -> float:
    from scipy.stats import t  # noqa: PLC0415
    return float(t.sf(x, df))


class Symmetric:
    """The ends of a symmetric interval `mean ± half` (fields of the dataclasses below and of
    analysis.pivot.Stat)."""
    mean: float
    half: float

    @property
    def lo(self) -> float:
        return self.mean - self.half

    @property
    def hi(self) -> float:
        return self.mean + self.half


@dataclass(frozen=True)
class Interval(Symmetric):
    """A symmetric interval mean ± half; half is NaN when nothing measures the spread (one
    replicate and no image standard error)."""
    mean: float
    half: float
    n: int
    df: float = math.nan

    def covers(self, x: float) -> bool:
        return math.isfinite(self.half) and self.lo <= x <= self.hi


def interval(mean: float, std: float, n: int, image_var: float = math.nan, draws: int = 1,
             confidence: float = CONFIDENCE) -> Interval:
    """The interval of a cell: `mean`, `std` (sample std over its n replicates, NaN for n < 2),
    `image_var` (mean squared image standard error of its values, NaN when unknown), `draws`
    (distinct evaluation draws among the replicates, >= 1)."""
    seed_var = std * std / n if n >= 2 and math.isfinite(std) else math.nan
    img_var = image_var / max(draws, 1) if math.isfinite(image_var) else math.nan
    if not math.isfinite(seed_var) and not math.isfinite(img_var):
        return Interval(mean, math.nan, n)
    if not math.isfinite(img_var) or img_var == 0:
        if seed_var == 0:
            return Interval(mean, 0.0, n, n - 1)
        df = n - 1.0
    elif not math.isfinite(seed_var) or seed_var == 0:
        df = math.inf  # the image bootstrap alone (one replicate): a normal quantile
    else:  # Welch-Satterthwaite: the image term has (in effect) infinite df
        df = (seed_var + img_var) ** 2 / (seed_var ** 2 / (n - 1))
    var = (0.0 if not math.isfinite(seed_var) else seed_var) + \
        (0.0 if not math.isfinite(img_var) else img_var)
    return Interval(mean, _t_quantile(df, confidence) * math.sqrt(var), n, df)


@dataclass(frozen=True)
class Difference(Symmetric):
    """B - A over the replicates both have: the mean difference, its interval, the p-value of
    a paired t-test (two-sided, H0: no difference), and the p-value corrected for the
    comparisons made together (Holm)."""
    mean: float
    half: float
    n: int
    p: float
    p_adjusted: float = math.nan
    sd: float = math.nan  # standard deviation of the paired differences

    @property
    def effect_size(self) -> float:
        """Cohen's d_z: the mean difference over the differences' standard deviation."""
        return self.mean / self.sd if self.n >= 2 and self.sd > 0 else math.nan


def paired(a: Mapping, b: Mapping, confidence: float = CONFIDENCE) -> Difference:
    """`a`, `b`: replicate key -> value (e.g. (pretrain_seed, seed) -> FID); only keys in both
    count. Fewer than two pairs give NaN interval and p-value."""
    keys = sorted(set(a) & set(b), key=repr)
    d = [float(b[k]) - float(a[k]) for k in keys]
    n = len(d)
    if n == 0:
        return Difference(math.nan, math.nan, 0, math.nan)
    mean = math.fsum(d) / n
    if n < 2:
        return Difference(mean, math.nan, n, math.nan)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in d) / (n - 1))
    se = sd / math.sqrt(n)
    if se == 0:
        return Difference(mean, 0.0, n, 1.0 if mean == 0 else 0.0, sd=0.0)
    p = 2 * _t_sf(abs(mean) / se, n - 1)
    return Difference(mean, _t_quantile(n - 1, confidence) * se, n, p, sd=sd)


def holm(pvalues: Iterable[float]) -> list[float]:
    """Holm's step-down adjustment (controls the family-wise error rate, any dependence);
    NaN p-values are left out of the family and stay NaN."""
    ps = list(pvalues)
    order = sorted((i for i, p in enumerate(ps) if math.isfinite(p)), key=lambda i: ps[i])
    m = len(order)
    out = [math.nan] * len(ps)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        out[i] = running
    return out


__all__ = ["CONFIDENCE", "Difference", "Interval", "METHOD", "PAIRED_METHOD", "Symmetric", "holm",
           "interval", "paired"]
