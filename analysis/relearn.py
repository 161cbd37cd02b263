"""The relearning attack's table and figure: how far the forget metrics come back toward the
original model's when an attacker fine-tunes the unlearned (or the retrained) model on a few
forgotten images, against the attack's budget in steps.

For a method's rows at attack budget s (`relearn.steps` in the `settings` column; trials
without an attack count as s = 0), the **gap recovered** is

    (m(s) - m(0)) / (m(original) - m(0))

on means over replicates: 0 where the attack changed nothing, 1 where the forget metric is
back at the original model's (the original's own rows, no attack, same generator and data).
The **half-gap budget** is the smallest s in the sweep at which it reaches 0.5 (none: not
reached within the budgets run). A forget metric whose original equals the unlearned value
(no gap) gets no fraction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from analysis.pivot import (DECIMALS, GENERATOR_NAMES, Column, Row, Stat, Table, fmt_value,
                            metric_label, settings_of)

STEPS = "relearn.steps"
# Forget metrics followed per family, as (split, metric): the papers' forgetting measures. A
# GAN is judged on its samples as a whole (split `all`); its FID measures the retained
# classes' quality, not forgetting, so it stays in the `gan` table rather than here.
FORGET_METRICS = {"i2i": (("forget", "fid"), ("forget", "cosine")),
                  "gan": (("all", "forget_class_share"),)}
# The attack's other settings: a row of the table per value of these
ATTACK_FIELDS = ("relearn.images", "relearn.lr", "relearn.batch_size", "relearn.seed")
# What must match between a method's rows and the original's (the same model family and data)
MATCH = ("family", "dataset", "task", "mask_ratio", "generator", "generator_size", "setting",
         "forget_set")


@dataclass(frozen=True)
class Curve:
    """One method's forget metric against the attack's steps."""
    key: tuple  # MATCH values, method, alpha, attack settings, metric
    name: str  # generator and method, e.g. "MAE l2l alpha=0.25"
    images: str  # the attacker's images
    metric: str
    steps: tuple[int, ...]
    stats: tuple[Stat, ...]
    original: float  # the original model's mean (nan: no original rows)

    def recovered(self) -> list[float]:
        base = self.stats[0].mean if self.steps[0] == 0 else math.nan
        gap = self.original - base
        if not math.isfinite(gap) or gap == 0:
            return [math.nan] * len(self.steps)
        return [(s.mean - base) / gap + 0.0 for s in self.stats]  # + 0.0: no "-0.00"

    def half_budget(self) -> int | None:
        for steps, frac in zip(self.steps, self.recovered()):
            if math.isfinite(frac) and frac >= 0.5:
                return steps
        return None



def curves(records: list[dict]) -> list[Curve]:
    """Every method's curve in sweeps that ran the attack (`records`: pivot.aggregate)."""
    attacked = [r for r in records if STEPS in settings_of(r)]
    if not attacked:
        return []
    originals = {}
    for r in records:
        if r["method"] == "original" and STEPS not in settings_of(r) \
                and (r["split"], r["metric"]) in FORGET_METRICS.get(r["family"], ()):
            originals[(*(r[k] for k in MATCH), r["metric"])] = r["stat"].mean
    points: dict[tuple, dict[int, Stat]] = {}
    labels = {}
    for r in records:
        followed = FORGET_METRICS.get(r["family"], ())
        if (r["split"], r["metric"]) not in followed or r["method"] == "original":
            continue
        s = settings_of(r)
        if STEPS not in s and not any(
                _same_setting(r, a) for a in attacked if a["method"] == r["method"]):
            continue  # a method never attacked in this sweep
        attack = tuple(s.get(f) for f in ATTACK_FIELDS)
        key = (*(r[k] for k in MATCH), r["method"], r["alpha"], attack, r["metric"])
        if STEPS not in s:  # no attack: the starting point of every attack setting
            for a in attacked:
                if _same_setting(r, a) and a["method"] == r["method"]:
                    akey = (*key[:-3], tuple(settings_of(a).get(f) for f in ATTACK_FIELDS),
                            r["metric"])
                    points.setdefault(akey, {}).setdefault(0, r["stat"])
            continue
        points.setdefault(key, {})[int(s[STEPS])] = r["stat"]
        gen = GENERATOR_NAMES.get(r["generator"], r["generator"])
        alpha = f" alpha={fmt_value(r['alpha'])}" if r["alpha"] is not None else ""
        labels[key] = (f"{gen} {r['method']}{alpha}", fmt_value(s.get("relearn.images")))
    out = []
    for key, by_steps in points.items():
        if key not in labels:
            continue
        steps = tuple(sorted(by_steps))
        metric = key[-1]
        orig = originals.get((*key[:len(MATCH)], metric), math.nan)
        out.append(Curve(key, *labels[key], metric, steps, tuple(by_steps[s] for s in steps),
                         orig))
    return sorted(out, key=lambda c: (c.key[4], c.name, c.images, c.metric))


def _same_setting(r: dict, attacked: dict) -> bool:
    """Whether an unattacked record is the same trial setting as an attacked one."""
    s, a = settings_of(r), settings_of(attacked)
    a = {k: v for k, v in a.items() if not k.startswith("relearn.")}
    return all(r[k] == attacked[k] for k in MATCH) and s == a \
        and r["alpha"] == attacked["alpha"]


def relearn_table(records: list[dict]) -> Table | None:
    """Rows: generator, method, attacker's images, steps; columns: each forget metric and the
    share of its gap to the original recovered. Notes: the half-gap budget of each curve."""
    found = curves(records)
    if not found:
        return None
    metrics = sorted({c.metric for c in found}, key=lambda m: (m != "fid", m))
    split = {m: sp for c in found for sp, m in FORGET_METRICS[c.key[0]]}  # key[0]: family
    columns, index = [], {}
    for m in metrics:
        for what in ("value", "recovered"):
            index[(m, what)] = len(columns)
            levels = (metric_label(m), split[m] if what == "value" else "gap recovered")
            columns.append(Column((m, what), levels, None,
                                  DECIMALS.get(m, 4) if what == "value" else 2))
    rows, cells, rowkey = [], {}, {}
    notes = []
    for c in found:
        method = c.key[len(MATCH)]
        for steps, stat, frac in zip(c.steps, c.stats, c.recovered()):
            k = (c.key[:-1], steps)
            if k not in rowkey:
                rowkey[k] = len(rows)
                rows.append(Row((c.name, c.images, str(steps)), group=c.name,
                                reference=method == "retrain"))
            i = rowkey[k]
            cells[(i, index[(c.metric, "value")])] = stat
            if math.isfinite(frac):
                cells[(i, index[(c.metric, "recovered")])] = Stat(frac, math.nan, stat.n)
        half = c.half_budget()
        notes.append(f"{c.name}, {c.images} images, {metric_label(c.metric)}: "
                     + (f"half of the gap to the original recovered by {half} steps"
                        if half is not None else
                        f"half of the gap not recovered within {max(c.steps)} steps"
                        if any(math.isfinite(f) for f in c.recovered())
                        else "no gap to the original (nothing to recover)"))
    notes.append("gap recovered: (value after the attack - value without it) / (original's "
                 "value - value without it), on means over replicates; 1: back at the original")
    return Table("relearn", "Relearning attack: forget metrics after fine-tuning on forgotten "
                 "images", ("method", "images", "steps"), ("metric", "what"), rows, columns,
                 cells, notes)


def relearn_figure(records: list[dict]):
    """Gap recovered against the attack's steps, one line per method and attack setting, a
    panel per forget metric (analysis.figures.Figure), or None."""
    found = [c for c in curves(records) if any(math.isfinite(f) for f in c.recovered())]
    if not found:
        return None
    from analysis.figures import _new, _render

    metrics = sorted({c.metric for c in found}, key=lambda m: (m != "fid", m))
    fig = _new(5 * len(metrics), 3.6)
    for ax, m in zip(fig.subplots(1, len(metrics), squeeze=False)[0], metrics):
        for c in (c for c in found if c.metric == m):
            ax.plot(c.steps, c.recovered(), marker="o", label=f"{c.name}, {c.images} images")
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("attack steps")
        ax.set_ylabel(f"{metric_label(m)}: gap to the original recovered")
        ax.legend(fontsize=7)
    return _render(fig, "relearn", "Relearning attack",
                   "Share of the forgetting gap to the original recovered against the "
                   "attacker's fine-tuning steps (dashed: back at the original; dotted: half). "
                   "retrain: the same attack on a model that never saw the forgotten images.")
