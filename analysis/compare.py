"""Paired comparisons: two sides of a sweep (a method, optionally narrowed to one setting) on
the same replicates, per context (data set, task, generator, forget set).

Each replicate (pretrain_seed, seed) is one original model, its unlearning runs and their
evaluation on the same images, so side B minus side A per replicate removes what the original
and the images contribute to both (analysis/stats.py `paired`). Every comparison returned by
one call is one family for Holm's correction.

    from analysis.compare import Side, compare
    compare(rows, Side.parse("original"), Side.parse("l2l,retain=full"))

A side is `METHOD` or `METHOD,KEY=VALUE,...` with KEY one of the setting keys of the tables
(`retain`, `alpha`, `noise`, `params`, ...) and VALUE as the tables print it (`retain=proxy
digits x1`, `alpha=0.25`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass

import pandas as pd

from analysis import stats
from analysis.load import AnalysisError, as_results, sql_text
from analysis.pivot import (DECIMALS, KEYS, KEYS_SELECT, OK_ROWS, PAPER_METRICS, fmt_number,
                            fmt_value, params_of, resolve_direction, settings_of)
from contract.metrics import Direction

ALPHA = 0.05  # family-wise error rate of the verdicts

# What must be equal for two sides to be compared: everything but the method's own settings.
CONTEXT = ("family", "dataset", "setting", "task", "mask_ratio", "generator", "generator_size",
           "forget_set", "forget_k")
# The settings a side may fix (the table's keys that are not context), and any field of the
# `settings` column by its dotted path (`unlearn.lr=0.0001`).
SIDE_KEYS = tuple(k for k in KEYS if k not in CONTEXT and k not in ("method", "settings"))
# Fields of `settings` that make the context too: what the original model and the evaluation
# are. Two sides are compared only on the same originals and the same test images.
CONTEXT_SETTINGS = ("pretrain.", "classifier.", "eval.", "generator.", "image_folder")


def _same_context(ka: dict, kb: dict) -> bool:
    if any(ka[c] != kb[c] for c in CONTEXT):
        return False
    sa, sb = settings_of(ka), settings_of(kb)
    if bool(sa) != bool(sb):  # one side's file did not record its settings (schema <= 4):
        return False          # nothing shows that both ran on the same originals
    return all(sa.get(k) == sb.get(k) for k in set(sa) | set(sb)
               if k.startswith(CONTEXT_SETTINGS))


# A field of the `settings` column: dotted (unlearn.lr), or one of the few top-level fields the
# column holds (a typo such as `alph=0.25` is refused instead of matching nothing)
DOTTED = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+")
TOP_LEVEL_SETTINGS = ("earlier_requests",)
# Method parameters a side may name: the `params` column's fields (the GAN cascade's options
# are also dotted, `cascade.fake_target`, and found there under their own names)
PARAMS = ("noise_target", "fake_target", "substitute", "d_steps", "g_steps", "rounds",
          "passes", "stop_every")


def _top_level_split(text: str) -> list[str]:
    """`text` split at the commas outside brackets, so a value may be a list
    (`earlier_requests=[[5], [7]]`)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return parts + [text[start:]]


@dataclass(frozen=True)
class Side:
    method: str
    where: tuple[tuple[str, str], ...] = ()  # (key, value as the tables print it)

    @classmethod
    def parse(cls, text: str) -> Side:
        """`l2l` or `l2l,retain=full,alpha=0.25`; raises AnalysisError naming what is wrong."""
        method, *parts = [p.strip() for p in _top_level_split(str(text))]
        if not method or "=" in method:
            raise AnalysisError(f"side {text!r}: start with a method name, e.g. l2l or "
                                "l2l,retain=full")
        where = []
        for p in parts:
            key, eq, value = p.partition("=")
            key = key.strip()
            if not eq or not (key in SIDE_KEYS or key in TOP_LEVEL_SETTINGS or key in PARAMS
                              or DOTTED.fullmatch(key)):
                raise AnalysisError(f"side {text!r}: {p!r} is not KEY=VALUE with KEY one of "
                                    f"{', '.join(SIDE_KEYS)}, a setting such as "
                                    "unlearn.lr or earlier_requests, or a method parameter "
                                    f"({', '.join(PARAMS)})")
            where.append((key, value.strip()))
        return cls(method, tuple(where))

    @property
    def label(self) -> str:
        return ",".join([self.method, *(f"{k}={v}" for k, v in self.where)])

    def matches(self, keys: dict) -> bool:
        settings, params = settings_of(keys), params_of(keys)
        return keys["method"] == self.method and all(
            fmt_value(keys[k] if k in SIDE_KEYS else
                      settings[k] if k in settings else params.get(k)) == v
            for k, v in self.where)



@dataclass(frozen=True)
class Comparison:
    context: dict  # CONTEXT -> value
    a: str  # label of side A's setting (method and the settings that tell it apart)
    b: str
    split: str
    metric: str
    extractor: str | None
    a_values: dict  # (pretrain_seed, seed) -> value
    b_values: dict
    direction: Direction | None
    diff: stats.Difference  # B - A over the common replicates

    @property
    def a_mean(self) -> float:
        return _mean(self.a_values)

    @property
    def b_mean(self) -> float:
        return _mean(self.b_values)

    @property
    def effect_size(self) -> float:
        """Standardised mean difference of the pairs (Cohen's d_z: mean / std of B - A)."""
        return self.diff.effect_size

    @property
    def verdict(self) -> str:
        """`B better`, `A better` (the Holm-adjusted p-value below 5%; which is better is read
        in the metric's direction for this split, on the common replicates), `no difference
        found`, or `not comparable` (fewer than two pairs, or a metric without a direction).
        Before the correction (`p_adjusted` NaN) the unadjusted p-value decides."""
        d = self.diff
        p = d.p_adjusted if math.isfinite(d.p_adjusted) else d.p
        if not math.isfinite(p) or self.direction is None:
            return "not comparable"
        if p < ALPHA and d.mean != 0:
            common = [self.a_values[k] for k in self.a_values if k in self.b_values]
            a = math.fsum(common) / len(common)
            return "B better" if self.direction.score(a + d.mean) > self.direction.score(a) \
                else "A better"
        return "no difference found"


def _mean(values: dict) -> float:
    return math.fsum(values.values()) / len(values) if values else math.nan


def replicate_values(rows, metrics=None, splits=None) -> list[tuple[dict, str, str, str | None,
                                                                    dict]]:
    """(setting keys, split, metric, extractor, {(pretrain_seed, seed): value}) per cell, each
    replicate's duplicate rows averaged; only `status == 'ok'` rows with a value."""
    where = [OK_ROWS]
    if metrics:
        where.append(f"metric IN ({', '.join(sql_text(m) for m in metrics)})")
    if splits:
        where.append(f"split IN ({', '.join(sql_text(s) for s in splits)})")
    found = as_results(rows).sql(
        f"SELECT {', '.join(KEYS)}, split, metric, extractor, pretrain_seed, seed, "
        f"avg(value) FROM (SELECT {KEYS_SELECT}, split, metric, extractor, pretrain_seed, seed, "
        f"value FROM rows WHERE {' AND '.join(where)}) GROUP BY ALL ORDER BY ALL")
    cells: dict[tuple, dict] = {}
    for r in found:
        cells.setdefault(tuple(r[:len(KEYS) + 3]), {})[(r[-3], r[-2])] = float(r[-1])
    nk = len(KEYS)
    return [(dict(zip(KEYS, k[:nk])), k[nk], k[nk + 1], k[nk + 2], v) for k, v in cells.items()]


def _label(keys: dict, varying: tuple[str, ...]) -> str:
    """The method and the settings that tell it apart from the other settings compared
    (`varying`: SIDE_KEYS and dotted `settings` fields)."""
    settings = settings_of(keys)
    return ",".join([keys["method"], *(
        f"{k}={fmt_value(keys[k])}" if k in SIDE_KEYS else f"{k}={fmt_value(settings[k])}"
        for k in varying if k in SIDE_KEYS or k in settings)])


def _varying(settings: list[dict]) -> tuple[str, ...]:
    """The side keys and settings fields that take several values among these settings (a
    field some rows did not record, schema 4 and older, counts only where recorded)."""
    keys = [k for k in SIDE_KEYS if len({fmt_value(s[k]) for s in settings}) > 1]
    recorded = [settings_of(s) for s in settings]
    fields = sorted({f for r in recorded for f in r})
    return tuple(keys + [f for f in fields if not f.startswith(CONTEXT_SETTINGS) and len(
        {json.dumps(r[f], sort_keys=True) for r in recorded if f in r}) > 1])


def _pairs(cells, a: Side, b: Side, metrics) -> list[Comparison]:
    sides = {"A": [c for c in cells if a.matches(c[0])], "B": [c for c in cells if b.matches(c[0])]}
    for name, side in (("A", a), ("B", b)):
        if not sides[name]:
            raise AnalysisError(f"side {name} ({side.label}) has no successful rows for "
                                f"{', '.join(metrics or ['any metric'])}")
    varying = _varying([c[0] for c in sides["A"] + sides["B"]])
    out = []
    for ka, split, metric, ext, av in sides["A"]:
        for kb, split_b, metric_b, ext_b, bv in sides["B"]:
            if (split, metric, ext) != (split_b, metric_b, ext_b) or ka == kb or \
                    not _same_context(ka, kb):
                continue
            out.append(Comparison(
                {c: ka[c] for c in CONTEXT}, _label(ka, varying), _label(kb, varying), split,
                metric, ext, av, bv, resolve_direction(ka["family"], split, metric),
                stats.paired(av, bv)))
    return out


def _holm(found: list[Comparison]) -> list[Comparison]:
    adjusted = stats.holm(c.diff.p for c in found)
    return [_with_p(c, p) for c, p in zip(found, adjusted)]


def compare(rows, a: Side, b: Side, metrics=PAPER_METRICS, splits=None) -> list[Comparison]:
    """Every comparison of a setting of side A with one of side B in the same context, split,
    metric and extractor, on their common replicates; p-values Holm-corrected over all of them.
    Raises AnalysisError when either side has no rows."""
    return _holm(_pairs(replicate_values(rows, metrics, splits), a, b, metrics))


# The method each paper proposes: the report compares it with every other method of a sweep.
PAPER_METHODS = {"i2i": "l2l", "gan": "cascade"}


def against_paper_method(rows, metrics=PAPER_METRICS) -> list[Comparison]:
    """Each other method of the rows (A) against the paper's method of its family (B), per
    context, split and metric; one Holm family for all. Empty when the rows lack the paper's
    method or any other."""
    cells = replicate_values(rows, metrics)
    found = []
    for family, ours in PAPER_METHODS.items():
        mine = [c for c in cells if c[0]["family"] == family]
        others = sorted({c[0]["method"] for c in mine} - {ours})
        if not others or not any(c[0]["method"] == ours for c in mine):
            continue
        for other in others:
            found += _pairs(mine, Side(other), Side(ours), metrics)
    return _holm(found)


def _with_p(c: Comparison, p: float) -> Comparison:
    d = c.diff
    return Comparison(c.context, c.a, c.b, c.split, c.metric, c.extractor, c.a_values,
                      c.b_values, c.direction, dataclasses.replace(d, p_adjusted=p))


COLUMNS = ("generator", "A", "B", "split", "metric", "extractor", "n", "A mean", "B mean",
           "B - A", "lo", "hi", "effect size (d_z)", "p", "p (Holm)", "verdict")


def to_frame(comparisons: list[Comparison]) -> pd.DataFrame:
    """One row per comparison, unrounded."""
    return pd.DataFrame([
        (f"{c.context['generator']}/{c.context['generator_size'] or ''}".rstrip("/"), c.a, c.b,
         c.split, c.metric, c.extractor, c.diff.n, c.a_mean, c.b_mean, c.diff.mean, c.diff.lo,
         c.diff.hi, c.effect_size, c.diff.p, c.diff.p_adjusted, c.verdict)
        for c in comparisons], columns=list(COLUMNS))


def _p(p: float) -> str:
    return "–" if not math.isfinite(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def to_markdown(comparisons: list[Comparison], decimals: int = 3) -> str:
    """A table with the context columns that vary, then the footer naming the method."""
    contexts = [c.context for c in comparisons]
    shown = [k for k in CONTEXT if len({fmt_value(x[k]) for x in contexts}) > 1 or k == "generator"]
    head = [*shown, "A", "B", "split", "metric", "n", "A mean", "B mean", "B − A [95% interval]",
            "d_z", "p (Holm)", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in comparisons:
        d = c.diff
        arrow = f" {c.direction.arrow}" if c.direction else ""
        metric = c.metric + (f" ({c.extractor})" if c.extractor else "") + arrow
        places = max(decimals, DECIMALS.get(c.metric, 0))  # 4 for a masked MSE of 0.04
        num = lambda x: fmt_number(x, places)  # noqa: E731
        interval = f"{num(d.mean)} [{num(d.lo)}, {num(d.hi)}]" if math.isfinite(d.half) \
            else num(d.mean)
        lines.append("| " + " | ".join([
            *(fmt_value(c.context[k]) for k in shown), c.a, c.b, c.split, metric, str(d.n),
            num(c.a_mean), num(c.b_mean), interval, fmt_number(c.effect_size, 2),
            _p(d.p_adjusted), c.verdict]) + " |")
    lines += ["", f"B − A {stats.PAIRED_METHOD} over the {len(comparisons)} comparison(s) of "
              "this table (the intervals are each at 95%, uncorrected); a side is better when the "
              "Holm-adjusted p is below 0.05, read in the metric's direction (↑ higher is "
              "better, ↓ lower is better)."]
    return "\n".join(lines) + "\n"


__all__ = ["CONTEXT", "Comparison", "PAPER_METHODS", "SIDE_KEYS", "Side", "against_paper_method",
           "compare", "replicate_values",
           "to_frame", "to_markdown"]
