"""Trade-off fronts: methods compared by the best trade-offs their settings reach between
forgetting and retain damage, not by one hand-picked point.

Each setting of a method (a record group of pivot.aggregate: everything but the seeds) is a
point (forgetting, damage) from its means over replicates; a method's front is its points that
no other of its points beats on both (contract/pareto.py). Which metrics: FRONT_AXES, per
family. A method gets a front when the sweep ran it at three or more settings (a grid over
alpha, a Pareto search over alpha and the learning rate, ...).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from analysis.pivot import (DECIMALS, GENERATOR_NAMES, KEYS, Column, Row, Stat, Table,
                            fmt_value, metric_label, params_of, resolve_direction,
                            settings_of)
from contract.pareto import front

# family -> ((split, metric) of forgetting, sign: +1 higher is more forgetting),
#           ((split, metric) of damage, sign: +1 higher is more damage)
FRONT_AXES = {"i2i": ((("forget", "fid"), 1.0), (("retain", "fid"), 1.0)),
              "gan": ((("all", "forget_class_share"), -1.0), (("all", "fid"), 1.0))}
MIN_SETTINGS = 3  # fewer points make no front worth a table
# What a setting's label shows: the method's own knobs
LABEL_FIELDS = ("alpha",)
# Columns that tell settings of one method apart but are not the method's knobs: the model, the
# data and the request, and what retain data the method was given (a condition, not a knob)
CONTEXT = ("family", "dataset", "setting", "task", "mask_ratio", "generator", "generator_size",
           "forget_set", "forget_k", "retain", "noise")
# The `settings` entries that are a method's knobs (how it unlearns); every other entry (the
# original's pretraining, the evaluation and its task, a relearning attack, earlier requests)
# is a condition: points under different conditions are not settings of one front.
KNOBS = ("unlearn.", "cascade.")


@dataclass(frozen=True)
class Point:
    context: tuple  # CONTEXT values
    method: str
    label: str  # the setting, e.g. "alpha=0.25, unlearn.lr=0.001"
    forget: Stat
    damage: Stat
    on_front: bool



def points(records: list[dict]) -> list[Point]:
    """Every setting's point, with whether it is on its method's front."""
    cells: dict[tuple, dict] = {}
    for r in records:
        axes = FRONT_AXES.get(r["family"])
        if axes is None:
            continue
        for i, ((split, metric), _) in enumerate(axes):
            if (r["split"], r["metric"]) == (split, metric):
                cells.setdefault(tuple(r[k] for k in KEYS), {})[i] = r
    groups: dict[tuple, list[tuple[tuple, dict, dict]]] = {}
    for key, pair in cells.items():
        if 0 in pair and 1 in pair:
            rec = pair[0]
            groups.setdefault((tuple(rec[k] for k in CONTEXT) + (_conditions(rec),),
                               rec["method"]), []).append((key, pair[0], pair[1]))
    out = []
    for (context, method), members in groups.items():
        if len(members) < MIN_SETTINGS:
            continue
        (_, fsign), (_, dsign) = FRONT_AXES[members[0][1]["family"]]
        # maximise forgetting, minimise damage: both as "higher is better"
        scores = [[fsign * f["stat"].mean, -dsign * d["stat"].mean] for _, f, d in members]
        best = set(front(scores))
        labels = _labels([f for _, f, _ in members])
        for i, (_, f, d) in enumerate(members):
            out.append(Point(context, method, labels[i], f["stat"], d["stat"], i in best))
    # None sorts before any value (contexts mix them: noise is None for methods without one);
    # within a method, most forgetting first (the forget axis's sign: the GAN's share falls)
    def forgetting(p: Point) -> float:
        v = FRONT_AXES[p.context[0]][0][1] * p.forget.mean
        return -v if math.isfinite(v) else math.inf

    return sorted(out, key=lambda p: ([(v is not None, str(v)) for v in p.context], p.method,
                                      forgetting(p)))


def _conditions(rec: dict) -> str:
    """The record's `settings` entries that are not knobs, as one comparable string."""
    return json.dumps({k: v for k, v in settings_of(rec).items() if not k.startswith(KNOBS)},
                      sort_keys=True)


def _labels(recs: list[dict]) -> list[str]:
    """Each setting as the fields that vary among a method's settings (alpha, then the
    `settings` entries, then the method parameters of `params`)."""
    settings = [settings_of(r) for r in recs]
    params = [params_of(r) for r in recs]

    def varying(dicts: list[dict]) -> list[str]:
        return [k for k in sorted({k for d in dicts for k in d})
                if len({json.dumps(d.get(k)) for d in dicts}) > 1]

    def short(v) -> str:  # sampled values: four significant digits are enough to tell apart
        return f"{v:.4g}" if isinstance(v, float) else fmt_value(v)

    vs, vp = varying(settings), varying(params)
    out = []
    for r, s, p in zip(recs, settings, params):
        parts = [f"{k}={short(r[k])}" for k in LABEL_FIELDS if len({x[k] for x in recs}) > 1]
        parts += [f"{k}={short(s.get(k))}" for k in vs]
        parts += [f"{k}={short(p.get(k))}" for k in vp]
        out.append(", ".join(parts) or "(one setting)")
    return out


def front_table(records: list[dict]) -> Table | None:
    """Every method's front points, most forgetting first, with their two metrics; notes count
    the settings behind each front."""
    pts = points(records)
    on = [p for p in pts if p.on_front]
    if not on:
        return None
    family = on[0].context[0]
    (fk, _), (dk, _) = FRONT_AXES[family]
    columns = [Column(fk, (fk[0], metric_label(fk[1])), resolve_direction(family, *fk),
                      DECIMALS.get(fk[1], 4)),
               Column(dk, (dk[0], metric_label(dk[1])), resolve_direction(family, *dk),
                      DECIMALS.get(dk[1], 4))]
    rows, cells, notes = [], {}, []
    for p in on:
        group = f"{GENERATOR_NAMES.get(p.context[5], p.context[5])} {p.method}"
        rows.append(Row((p.method, p.label), group=group))
        cells[(len(rows) - 1, 0)] = p.forget
        cells[(len(rows) - 1, 1)] = p.damage
    for (context, method) in dict.fromkeys((p.context, p.method) for p in pts):
        mine = [p for p in pts if (p.context, p.method) == (context, method)]
        notes.append(f"{GENERATOR_NAMES.get(context[5], context[5])} {method}: "
                     f"{sum(p.on_front for p in mine)} of {len(mine)} settings on the front")
    notes.append("front: the settings no other setting of the same method beats on both "
                 "(more forgetting and less damage), on means over replicates")
    return Table("front", f"Trade-off fronts: {fk[0]} {metric_label(fk[1])} against "
                          f"{dk[0]} {metric_label(dk[1])}",
                 ("method", "setting"), ("split", "metric"), rows, columns, cells, notes)


def front_figure(records: list[dict]):
    """Every setting as a dot and each method's front as a line (analysis.figures.Figure),
    or None."""
    pts = points(records)
    if not any(p.on_front for p in pts):
        return None
    from analysis.figures import _new, _render

    (fk, _), (dk, _) = FRONT_AXES[pts[0].context[0]]
    fig = _new(6, 4.2)
    ax = fig.subplots()
    for (context, method) in dict.fromkeys((p.context, p.method) for p in pts):
        mine = [p for p in pts if (p.context, p.method) == (context, method)]
        name = f"{GENERATOR_NAMES.get(context[5], context[5])} {method}"
        dots = ax.scatter([p.forget.mean for p in mine], [p.damage.mean for p in mine], s=14,
                          alpha=0.35)
        best = sorted((p for p in mine if p.on_front), key=lambda p: p.forget.mean)
        ax.plot([p.forget.mean for p in best], [p.damage.mean for p in best], marker="o",
                color=dots.get_facecolor()[0][:3], label=f"{name} (front)")
    ax.set_xlabel(f"{fk[0]} {metric_label(fk[1])}")
    ax.set_ylabel(f"{dk[0]} {metric_label(dk[1])}")
    ax.legend(fontsize=7)
    return _render(fig, "front", "Trade-off fronts",
                   "Every setting a sweep ran (dots) and each method's Pareto front (line): "
                   "the settings no other of the method's settings beats on both axes.")
