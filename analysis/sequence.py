"""Deletion requests in sequence: quality and cost after each request of a sequence, against
forgetting the same classes at once and against retraining without them.

A sequence is the trials of one method and setting whose `earlier_requests` (in `settings`)
chain: request k's trial has the forget set R1 + ... + Rk and earlier requests R1..R(k-1)
(request 1: forget set R1, none). Each is evaluated on every class forgotten so far, so its row
compares with the trial that forgets those classes at once (same method, no earlier requests)
and with `retrain` on them. Cost: the images request k's unlearning drew (`samples_seen`) and
the sum over the requests so far.
"""
from __future__ import annotations

import json
import math

from analysis.pivot import (DECIMALS, GENERATOR_NAMES, Column, Row, Stat, Table, fmt_value,
                            metric_label, resolve_direction, settings_of)

FIELD = "earlier_requests"
# Metrics of the table per family: quality and forgetting on the forget and retain sets
SHOWN = {"i2i": (("forget", "fid"), ("retain", "fid"), ("forget", "cosine"),
                 ("retain", "cosine")),
         "gan": (("all", "forget_class_share"), ("all", "fid"), ("all", "is"),
                 ("all", "mia_auc"))}
SEEN = ("all", "samples_seen")
MATCH = ("family", "dataset", "task", "mask_ratio", "generator", "generator_size", "retain",
         "noise")


def _requests(rec: dict) -> tuple[tuple[int, ...], ...]:
    """The requests a record's trial carried out, in order (its own last)."""
    earlier = tuple(tuple(r) for r in settings_of(rec).get(FIELD) or ())
    forget = json.loads(rec["forget_set"]) if rec.get("forget_set") else []
    done = {c for r in earlier for c in r}
    return (*earlier, tuple(c for c in forget if c not in done))


def _setting(rec: dict) -> tuple:
    """What the trials of one sequence share: data, model, method and its settings."""
    other = {k: v for k, v in settings_of(rec).items() if k != FIELD}
    return (*(rec[k] for k in MATCH), rec["method"], rec["alpha"], rec["params"],
            json.dumps(other, sort_keys=True))


def sequence_table(records: list[dict]) -> Table | None:
    """Rows per sequence: each request (the classes it adds), then `at once` and `retrain` on
    all of them; columns: the SHOWN metrics, the request's images seen and the running total.
    None when no trial of these records had earlier requests."""
    chained = [r for r in records if FIELD in settings_of(r)]
    if not chained:
        return None
    # the longest sequence of each setting: its requests in order
    longest: dict[tuple, tuple] = {}
    for r in chained:
        reqs = _requests(r)
        if len(reqs) > len(longest.get(_setting(r), ())):
            longest[_setting(r)] = reqs
    by: dict[tuple, dict] = {}  # (setting, requests) -> {(split, metric): Stat}
    for r in records:
        by.setdefault((_setting(r), _requests(r)), {})[(r["split"], r["metric"])] = r["stat"]
    retrain = {}
    for r in records:
        if r["method"] == "retrain":
            key = (tuple(r[k] for k in MATCH[:6]), tuple(sorted(json.loads(r["forget_set"]))))
            retrain.setdefault(key, {})[(r["split"], r["metric"])] = r["stat"]

    family = next(iter(longest))[0]
    shown = SHOWN.get(family, ())
    columns = [Column(("seen",), ("images seen", "this request"), None, 0),
                Column(("total",), ("images seen", "so far"), None, 0)]
    columns += [Column(m, (split, metric_label(metric)), resolve_direction(family, split, metric),
                       DECIMALS.get(metric, 4)) for m in shown for split, metric in [m]]
    rows, cells = [], {}

    def add(labels, group, values, seen, total, reference=False):
        i = len(rows)
        rows.append(Row(labels, group=group, reference=reference))
        for j, m in enumerate(shown):
            if m in values:
                cells[(i, j + 2)] = values[m]
        for j, v in ((0, seen), (1, total)):
            if v is not None:
                cells[(i, j)] = Stat(v.mean, math.nan, v.n) if isinstance(v, Stat) else v

    for setting, reqs in sorted(longest.items(), key=lambda kv: str(kv[0])):
        gen = GENERATOR_NAMES.get(setting[4], fmt_value(setting[4]))
        alpha = f" alpha={fmt_value(setting[9])}" if setting[9] is not None else ""
        group = f"{gen} {setting[8]}{alpha}"
        total = 0.0
        for k in range(1, len(reqs) + 1):
            values = by.get((setting, reqs[:k]))
            if values is None:
                continue
            seen = values.get(SEEN)
            total += seen.mean if seen else math.nan
            add((group, f"{k}: +{list(reqs[k - 1])}"), group, values, seen,
                Stat(total, math.nan, seen.n if seen else 0))
        every = tuple(sorted(c for r in reqs for c in r))
        once = by.get((setting, (every,)))
        if once is not None:
            seen = once.get(SEEN)
            add((group, f"at once {list(every)}"), group, once, seen, seen)
        ref = retrain.get((setting[:6], every))
        if ref is not None:
            add((group, f"retrain without {list(every)}"), group, ref, ref.get(SEEN),
                ref.get(SEEN), reference=True)
    notes = ["request k: the model after requests 1..k, unlearning only the classes request k "
             "adds, evaluated on every class forgotten so far; at once: the same method "
             "forgetting all of them in one request; images seen: what unlearning drew (retrain:"
             " its training), each value the mean over replicates with its 95% interval"]
    return Table("sequence", "Deletion requests in sequence: quality and cost after each "
                 "request", ("setting", "request"), ("split", "metric"), rows, columns, cells,
                 notes)
