"""The mask-transfer check (image-to-image): does forgetting hold under tasks and masks a model
was not unlearned with? Trials with `eval.task` set are evaluated under that task instead of
their own; this table sets them beside the trials evaluated under their own task.

Rows: generator, method and its other settings (those that differ name the row); columns:
each evaluation task ("own" first) x the forget and retain FID. A method whose forget FID
stays above the original's under every task forgets beyond the training mask.
"""
from __future__ import annotations

import json

from analysis.pivot import (DECIMALS, GENERATOR_NAMES, Column, Row, Table, fmt_value,
                            metric_label, resolve_direction, settings_of)

METRICS = (("forget", "fid"), ("retain", "fid"))
KIND = "eval.task.kind"
RATIO = "eval.task.mask_ratio"
TASK_NAMES = {"center_inpaint": "centre", "outpaint": "outpaint", "random": "random"}
# What must match between rows of one table row besides the evaluation task
ROW_KEYS = ("family", "dataset", "task", "mask_ratio", "generator", "generator_size", "method",
            "alpha", "noise", "retain", "forget_set", "params")



def _other(rec: dict) -> str:
    """The record's settings besides the evaluation task (how it was unlearned), as text."""
    return json.dumps({k: v for k, v in settings_of(rec).items()
                       if not k.startswith("eval.task.")}, sort_keys=True)


def _varying(recs: list[dict]) -> dict[str, list[str]]:
    """Per method, the settings besides the evaluation task that differ among its records:
    they go into its row labels."""
    per: dict[str, list[dict]] = {}
    for r in recs:
        per.setdefault(r["method"], []).append(json.loads(_other(r)))
    return {m: sorted(k for k in {k for d in ds for k in d}
                      if len({json.dumps(d.get(k)) for d in ds}) > 1) for m, ds in per.items()}


def _task(rec: dict) -> tuple[int, str]:
    """(order, label) of the task a record was evaluated under."""
    s = settings_of(rec)
    if KIND not in s:
        return 0, f"own ({TASK_NAMES.get(rec['task'], rec['task'])} {fmt_value(rec['mask_ratio'])})"
    return 1, f"{TASK_NAMES.get(s[KIND], s[KIND])} {fmt_value(s[RATIO])}"


def transfer_table(records: list[dict]) -> Table | None:
    """The table, or None when no trial of these records ran under another task."""
    if not any(KIND in settings_of(r) for r in records):
        return None
    recs = [r for r in records if r["family"] == "i2i" and (r["split"], r["metric"]) in METRICS]
    tasks = sorted({_task(r) for r in recs})
    columns, index = [], {}
    for _, label in tasks:
        for split, metric in METRICS:
            index[(label, split, metric)] = len(columns)
            columns.append(Column((label, split, metric), (label, split, metric_label(metric)),
                                  resolve_direction("i2i", split, metric),
                                  DECIMALS.get(metric, 4)))
    rows, cells, where = [], {}, {}
    vary = _varying(recs)
    for r in recs:
        key = (*(r[k] for k in ROW_KEYS), _other(r))
        if key not in where:
            where[key] = len(rows)
            gen = GENERATOR_NAMES.get(r["generator"], r["generator"])
            alpha = f" alpha={fmt_value(r['alpha'])}" if r["alpha"] is not None else ""
            other = settings_of(r)
            extra = "".join(f" {k}={fmt_value(other.get(k))}" for k in vary[r["method"]])
            rows.append(Row((f"{r['method']}{alpha}{extra}",), group=gen,
                            reference=r["method"] in ("original", "retrain")))
        cells[(where[key], index[(_task(r)[1], r["split"], r["metric"])])] = r["stat"]
    return Table("transfer", "Mask transfer: forgetting under tasks the model was not unlearned "
                             "with", ("method",), ("evaluation task", "split", "metric"), rows,
                 columns, cells, ["own: the trial's task (what it was unlearned with); the "
                                  "others: the same unlearned model evaluated under eval.task"])
