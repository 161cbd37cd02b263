"""Forgetting over time: forget and retain metrics against the images unlearning has drawn,
from the trials that measured their forgetting curve (`eval.every`: rows with a `step`), with
the retrained model's level as a line.

A curve is one setting's points (the pivot KEYS: generator, method, alpha, settings, ...):
step 0 (the original model, before unlearning), every `eval.every` steps, and the final
evaluation (the rows with a null `step`) as its last point. Each point is the mean over
replicates with its 95% interval (analysis/stats.py, as every table cell), placed at the mean
images seen (`samples_seen`) there. Retrain's level is the `retrain` method's final mean for
the same data, task, generator and forget set, from the same rows.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

from analysis.load import as_results
from analysis.pivot import (CELL, CELL_LIST, DECIMALS, GENERATOR_NAMES, KEYS, KEYS_SELECT,
                            OK_ROWS, Column, Row, Stat, Table, _stats_sql, cell_stat, fmt_value,
                            metric_label, resolve_direction, settings_of)

SEEN = ("all", "samples_seen")  # (split, metric) of a point's images seen
# The metrics drawn per family, in panel order, where the rows have them
FOLLOWED = {"i2i": (("forget", "fid"), ("retain", "fid"), ("forget", "cosine"),
                    ("retain", "cosine")),
            "gan": (("all", "forget_class_share"), ("all", "fid"), ("all", "mia_auc"))}
# What a curve and its retrain line share (the same model family, data and request)
MATCH = ("family", "dataset", "task", "mask_ratio", "generator", "generator_size", "setting",
         "forget_set")
FINAL = -1  # the step of the final point in SQL (its rows have a null `step`)


@dataclass(frozen=True)
class Curve:
    key: tuple  # the KEYS values of the setting
    name: str  # e.g. "MAE l2l alpha=0.25"
    split: str
    metric: str
    extractor: str | None
    steps: tuple  # int per measured point, then None for the final one
    seen: tuple[float, ...]  # mean images seen at each point
    stats: tuple[Stat, ...]
    retrain: float  # retrain's final mean (nan: no retrain rows)

    @property
    def record(self) -> dict:
        return dict(zip(KEYS, self.key))


def _sql() -> str:
    key = (*CELL, "step")
    return f"""
    WITH curved AS (SELECT DISTINCT sweep_id, trial_id FROM curve_rows WHERE {OK_ROWS}),
    src AS (
        SELECT hash({", ".join(key)}) AS h, * FROM (
            SELECT {KEYS_SELECT}, split, metric, extractor, coalesce(step, {FINAL}) AS step,
                   pretrain_seed, seed, value, nullif(value_se, 'nan'::DOUBLE) AS value_se
            FROM all_rows JOIN curved USING (sweep_id, trial_id) WHERE {OK_ROWS})),
    cells AS (SELECT DISTINCT h, {", ".join(key)} FROM src),
    stats AS ({_stats_sql("h", "src")})
    SELECT cells.* EXCLUDE (h), mean, std, n, v_img, draws FROM cells JOIN stats USING (h)
    ORDER BY {CELL_LIST}, step"""


def _retrain_levels(res) -> dict:
    found = res.sql(
        f"SELECT {', '.join(MATCH)}, split, metric, extractor, avg(value) FROM "
        f"(SELECT {KEYS_SELECT}, split, metric, extractor, pretrain_seed, seed, avg(value) "
        f"AS value FROM rows WHERE {OK_ROWS} AND method = 'retrain' GROUP BY ALL) GROUP BY ALL")
    return {r[:-1]: float(r[-1]) for r in found}


def curve_records(rows) -> list[Curve]:
    """Every followed metric's curve in these rows (a Results or a DataFrame); [] when no
    trial measured one."""
    res = as_results(rows)
    if not res.sql(f"SELECT 1 FROM curve_rows WHERE {OK_ROWS} LIMIT 1"):
        return []
    points: dict[tuple, dict[int, tuple]] = {}
    for r in res.sql(_sql()):
        cell, step, values = r[:len(CELL)], r[len(CELL)], r[len(CELL) + 1:]
        points.setdefault(cell, {})[step] = values
    retrain = _retrain_levels(res)
    nk = len(KEYS)
    out = []
    for cell, by_step in points.items():
        keys, (split, metric, extractor) = cell[:nk], cell[nk:]
        rec = dict(zip(KEYS, keys))
        if (split, metric) not in FOLLOWED.get(rec["family"], ()):
            continue
        seen_cell = (*keys, *SEEN, None)
        seen = points.get(seen_cell, {})
        order = sorted(s for s in by_step if s != FINAL) + ([FINAL] if FINAL in by_step else [])
        order = [s for s in order if s in seen]
        if len(order) < 2:
            continue
        match = (*(rec[k] for k in MATCH), split, metric, extractor)
        out.append(Curve(
            tuple(keys), _name(rec), split, metric, extractor,
            tuple(None if s == FINAL else s for s in order),
            tuple(float(seen[s][0]) for s in order),
            tuple(cell_stat(*by_step[s]) for s in order), retrain.get(match, math.nan)))
    # settings in a curve's name: only those that differ between the curves
    sets = [settings_of(c.record) for c in out]
    vary = {k for k in set().union(*sets) if len({json.dumps(d.get(k), sort_keys=True)
                                                    for d in sets}) > 1} if sets else set()
    out = [replace(c, name=_name(c.record, vary)) for c in out]
    return sorted(out, key=lambda c: (c.record["generator"], c.name, _panel(c)))


def _name(rec: dict, vary=frozenset()) -> str:
    gen = GENERATOR_NAMES.get(rec["generator"], fmt_value(rec["generator"]))
    alpha = f" alpha={fmt_value(rec['alpha'])}" if rec["alpha"] is not None else ""
    other = {k: v for k, v in settings_of(rec).items() if k in vary}
    extra = "".join(f" {k}={fmt_value(v)}" for k, v in sorted(other.items()))
    retain = f" retain={rec['retain']}" if rec["family"] == "i2i" and rec["retain"] != "full" \
        else ""
    return f"{gen} {rec['method']}{alpha}{retain}{extra}"


def _panel(c: Curve) -> int:
    followed = FOLLOWED.get(c.record["family"], ())
    return followed.index((c.split, c.metric)) if (c.split, c.metric) in followed else 99


def curve_table(found: list[Curve]) -> Table | None:
    """Rows: setting and step (`final`: the final evaluation); columns: images seen, then each
    followed metric. Notes: retrain's level of each metric."""
    if not found:
        return None
    panels = sorted({(c.split, c.metric, c.extractor, c.record["family"]) for c in found},
                    key=lambda p: (p[3], FOLLOWED[p[3]].index(p[:2])))
    columns = [Column(("seen",), ("images seen",), None, 0)]
    index = {}
    for split, metric, extractor, family in panels:
        index[(split, metric, extractor)] = len(columns)
        columns.append(Column((split, metric, extractor), (split, metric_label(metric,
                                                                            extractor)),
                              resolve_direction(family, split, metric),
                              DECIMALS.get(metric, 4)))
    rows, cells, where = [], {}, {}
    for c in found:
        for step, seen, stat in zip(c.steps, c.seen, c.stats):
            k = (c.key, step)
            if k not in where:
                where[k] = len(rows)
                rows.append(Row((c.name, "final" if step is None else str(step)),
                                group=c.name))
                cells[(where[k], 0)] = Stat(seen, math.nan, stat.n)
            cells[(where[k], index[(c.split, c.metric, c.extractor)])] = stat
    # retrain's levels, one note per model, data and request that the curves share
    levels: dict[tuple, dict[str, list]] = {}
    for c in found:
        if math.isfinite(c.retrain):
            level = levels.setdefault(tuple(c.record[k] for k in MATCH), {"names": [],
                                                                          "values": {}})
            if c.name not in level["names"]:
                level["names"].append(c.name)
            level["values"][f"{c.split} {metric_label(c.metric, c.extractor)}"] = \
                fmt_value(round(c.retrain, DECIMALS.get(c.metric, 4)))
    notes = [f"retrain's level ({', '.join(lv['names'])}): "
             + ", ".join(f"{k} {v}" for k, v in lv["values"].items()) for lv in levels.values()]
    notes.append("step 0: the original model before unlearning; final: the final evaluation "
                 "(the trial's final metrics); each value the mean over replicates with its "
                 "95% interval")
    return Table("curves", "Forgetting over time: metrics during unlearning",
                 ("setting", "step"), ("split", "metric"), rows, columns, cells, notes)


def curve_figure(found: list[Curve]):
    """A panel per followed metric (per family), forget and retain metrics against the images
    seen, a line per setting with its 95% band, retrain's level dashed; or None."""
    if not found:
        return None
    from analysis.figures import _new, _render

    panels = sorted({(c.record["family"], c.split, c.metric, c.extractor) for c in found},
                    key=lambda p: (p[0], FOLLOWED[p[0]].index(p[1:3])))
    fig = _new(4.2 * min(4, len(panels)), 3.4 * math.ceil(len(panels) / 4))
    axes = fig.subplots(math.ceil(len(panels) / 4), min(4, len(panels)), squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    for ax, (family, split, metric, extractor) in zip(axes.ravel(), panels):
        mine = [c for c in found if (c.record["family"], c.split, c.metric, c.extractor)
                == (family, split, metric, extractor)]
        levels = {}
        for i, c in enumerate(mine):
            colour = f"C{i % 10}"
            means = [s.mean for s in c.stats]
            half = [0.0 if math.isnan(s.half) else s.half for s in c.stats]
            ax.plot(c.seen, means, marker="o", ms=3, color=colour, label=c.name)
            ax.fill_between(c.seen, [m - h for m, h in zip(means, half)],
                            [m + h for m, h in zip(means, half)], color=colour, alpha=0.15)
            if math.isfinite(c.retrain):
                levels.setdefault(round(c.retrain, 6), colour)
        for level, colour in levels.items():
            ax.axhline(level, color=colour, lw=0.9, ls="--")
        ax.set_xlabel("images seen")
        ax.set_ylabel(f"{split} {metric_label(metric, extractor)}")
        ax.legend(fontsize=6)
    return _render(fig, "curves", "Forgetting over time",
                   "Forget and retain metrics against the images unlearning has drawn: step 0 "
                   "is the original model, the last point the final evaluation; bands: 95% "
                   "intervals over replicates; dashed: the retrained model's final level.")
