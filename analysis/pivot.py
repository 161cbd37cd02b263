"""From tidy result rows to tables: statistics over seeds, and one pivot behind every format.

A `Table` holds unrounded statistics (`Stat`) per row x column; Markdown, LaTeX, CSV and HTML
are renderings of it (analysis/render.py), so every format shows the same numbers and the same
best cells. Rows that differ in any configuration column are never averaged together: a column
that varies within a method becomes part of the row label (`l2l (alpha=0.5) [retain=full]`).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

METHOD_ORDER = (
    "original", "retrain", "max_loss", "noisy_label", "retain_label", "random_encoder", "l2l",
    "finetune_retain", "gradient_ascent", "cascade", "cascade_no_fake_label",
    "cascade_no_substitution", "cascade_d_only", "cascade_g_only")
# references are shown but never ranked: the original trivially wins retain metrics, and
# retraining is the gold standard the unlearning methods are measured against
REFERENCE_METHODS = ("original", "retrain")
GENERATOR_ORDER = ("diffusion", "vqgan", "mae", "dcgan")  # the paper's column order
GENERATOR_NAMES = {"diffusion": "Diffusion", "vqgan": "VQ-GAN", "mae": "MAE", "dcgan": "DCGAN"}
SPLIT_ORDER = ("retain", "forget", "all")
METRIC_ORDER = (
    "fid", "kid", "is", "cosine", "psnr", "ssim", "mse_masked", "mia_auc", "retrain_distance",
    "forget_class_share", "nn_distance", "downstream_accuracy", "samples_seen",
    "unlearn_seconds", "speedup", "epochs", "retrain_epochs")
METRIC_NAMES = {
    "fid": "FID", "kid": "KID", "is": "IS", "cosine": "CLIP-cos", "psnr": "PSNR",
    "ssim": "SSIM", "mse_masked": "MSE(mask)", "mia_auc": "MIA AUC",
    "retrain_distance": "dist. to retrain", "forget_class_share": "forget-class share",
    "nn_distance": "NN dist.", "downstream_accuracy": "downstream acc.",
    "samples_seen": "samples seen", "unlearn_seconds": "unlearn s",
    "speedup": "speedup", "epochs": "epochs", "retrain_epochs": "retrain epochs"}
DECIMALS = {
    "fid": 2, "kid": 4, "is": 3, "cosine": 4, "psnr": 2, "ssim": 4, "mse_masked": 4,
    "mia_auc": 3, "retrain_distance": 4, "forget_class_share": 3, "nn_distance": 4,
    "downstream_accuracy": 3, "samples_seen": 0, "unlearn_seconds": 1, "speedup": 1,
    "epochs": 1, "retrain_epochs": 1}
DEFAULT_DECIMALS = 4
PAPER_METRICS = ("fid", "is", "cosine")  # Tables 1 and 2 of the image-to-image paper

# Configuration columns that identify a setting (everything but the seeds). `retain` is one
# label for retain_mode, retain_fraction, proxy_source and proxy_size.
KEYS = ("family", "dataset", "setting", "task", "mask_ratio", "generator", "generator_size",
        "method", "alpha", "noise", "retain", "forget_set", "forget_k", "params")
# Label of a key in a row label when it varies within a method, in display order.
SUFFIX_NAMES = {"retain": "retain", "noise": "noise", "generator_size": "size",
                "mask_ratio": "mask", "forget_set": "forget", "forget_k": "k",
                "setting": "setting", "params": "params", "dataset": "data", "task": "task",
                "generator": "generator", "family": "family"}
AXIS_NAMES = {"alpha": "alpha", "retain": "retain set", "forget_set": "forget set",
              "generator": "generator"}


@dataclass(frozen=True)
class Stat:
    """Statistics over replicates (distinct (pretrain_seed, seed) pairs), unrounded."""
    mean: float
    std: float  # sample standard deviation; NaN when n < 2
    n: int


@dataclass
class Column:
    key: tuple          # machine values, e.g. ("mae", "retain", "fid")
    levels: tuple       # header text per level, top first, e.g. ("MAE", "retain", "FID")
    hib: bool | None    # better direction; None: mixed/unknown or descriptive (never bold)
    decimals: int

    @property
    def arrow(self) -> str:
        return {True: "↑", False: "↓"}.get(self.hib, "")

    @property
    def header(self) -> str:
        """All levels and the direction in one line, e.g. `MAE retain FID ↓`."""
        return " ".join([*self.levels, self.arrow]).strip()


@dataclass
class Row:
    labels: tuple       # one text per row_header entry
    group: str = ""     # rows are ranked within their group only
    reference: bool = False


@dataclass
class Table:
    name: str           # file stem, e.g. "i2i_main"
    title: str
    row_header: tuple
    column_levels: tuple  # names of the header levels, e.g. ("generator", "split", "metric")
    rows: list[Row]
    columns: list[Column]
    cells: dict          # (row index, column index) -> Stat
    notes: list[str] = field(default_factory=list)

    def groups(self) -> list[tuple[str, list[int]]]:
        out: dict[str, list[int]] = {}
        for i, r in enumerate(self.rows):
            out.setdefault(r.group, []).append(i)
        return list(out.items())

    def best(self) -> set[tuple[int, int]]:
        """Cells holding the best mean of their column within their group, compared on
        unrounded means. Only non-reference rows compete, a column needs a direction and at
        least two competitors, and when all competitors are equal none is best."""
        out = set()
        for c, col in enumerate(self.columns):
            if col.hib is None:
                continue
            for _, idx in self.groups():
                vals = {r: self.cells[(r, c)].mean for r in idx
                        if not self.rows[r].reference and (r, c) in self.cells
                        and math.isfinite(self.cells[(r, c)].mean)}
                if len(vals) < 2 or len(set(vals.values())) < 2:
                    continue
                top = (max if col.hib else min)(vals.values())
                out |= {(r, c) for r, v in vals.items() if v == top}
        return out


# ---------------------------------------------------------------- formatting helpers

def fmt_value(v) -> str:
    """A configuration value as text: `0.5`, `none`, `[5, 7, 9]`."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "none"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def fmt_number(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}" if math.isfinite(x) else str(x)


def fmt_stat(s: Stat, decimals: int) -> tuple[str, str]:
    """(`mean ± std`, `(n=K)`): the std is left out when there is one replicate."""
    main = fmt_number(s.mean, decimals)
    if s.n >= 2 and math.isfinite(s.std):
        main += f" ± {fmt_number(s.std, decimals)}"
    return main, f"(n={s.n})"


def _rank(value, order) -> tuple:
    # known names first in the given order, then the rest alphabetically
    return (order.index(value), "") if value in order else (len(order), fmt_value(value))


def _sort_value(v) -> tuple:
    # None first, then numbers numerically, then text
    if v is None:
        return (0, 0.0, "")
    if isinstance(v, (int, float)):
        return (1, float(v), "")
    return (2, 0.0, str(v))


def _norm(v):
    """NaN/NA -> None, numpy scalars -> Python, so that keys hash and compare predictably."""
    if v is None:
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v.item() if hasattr(v, "item") else v


def retain_label(mode, fraction, source, size) -> str | None:
    """`full`, `fraction 0.1`, `proxy digits x1`, `none`: what the retain term could use."""
    mode = _norm(mode)
    if mode == "fraction":
        return f"fraction {fmt_value(_norm(fraction))}"
    if mode == "proxy":
        source, size = _norm(source), _norm(size)
        return "proxy" + (f" {source}" if source else "") + \
            (f" x{fmt_value(size)}" if size is not None else "")
    return mode


def _mean_std(values: list[float]) -> Stat:
    n = len(values)
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if n >= 2 else math.nan
    return Stat(mean, std, n)


def _direction(values: set):
    return next(iter(values)) if len(values) == 1 and None not in values else None


# ---------------------------------------------------------------- aggregation

def _with_keys(rows: pd.DataFrame) -> pd.DataFrame:
    """Successful rows with a value, plus the `retain` label (one key for four columns)."""
    ok = rows[(rows["status"] == "ok") & rows["value"].notna()].copy()
    ok["retain"] = [retain_label(*t) for t in zip(
        ok["retain_mode"], ok["retain_fraction"], ok["proxy_source"], ok["proxy_size"])]
    return ok


def _key_of(r) -> dict:
    return {k: _norm(getattr(r, k)) for k in KEYS}


def _codes(column: pd.Series) -> tuple[np.ndarray, list]:
    """Integer codes of a column's values after `_norm`, which runs once per distinct value
    instead of once per row (the row loop was most of a large table's time)."""
    raw, uniques = pd.factorize(column, use_na_sentinel=True)  # missing -> -1
    values: list = []
    index: dict = {}
    remap = np.empty(len(uniques) + 1, dtype=np.int64)
    for i, u in enumerate([*uniques, None]):  # the last slot is where -1 points
        v = _norm(u)
        if v not in index:  # 1 and 1.0, None and NaN: one key, as in a dict of raw values
            index[v] = len(values)
            values.append(v)
        remap[i] = index[v]
    return remap[raw], values


def aggregate(rows: pd.DataFrame) -> list[dict]:
    """One record per setting x split x metric: the KEYS, `split`, `metric`, `stat` (over
    replicates, each replicate's duplicates averaged first) and `hib` (None when the rows
    disagree). Only `status == 'ok'` rows with a value count. Records come in the order in
    which their cells first appear in `rows`."""
    ok = _with_keys(rows)
    if ok.empty:
        return []
    cell_cols = [*KEYS, "split", "metric"]
    coded, values = {}, {}
    for c in [*cell_cols, "pretrain_seed", "seed", "higher_is_better"]:
        coded[c], values[c] = _codes(ok[c])
    frame = pd.DataFrame(coded)
    frame["value"] = ok["value"].astype(float).to_numpy()
    # Each replicate's duplicates averaged first, then statistics over the replicates.
    per_rep = frame.groupby([*cell_cols, "pretrain_seed", "seed"], sort=False)["value"]
    reps = per_rep.mean().reset_index() if per_rep.ngroups < len(frame) else frame
    hibs = frame.groupby(cell_cols, sort=False)["higher_is_better"].unique().to_dict()
    out = []
    for cell, group in reps.groupby(cell_cols, sort=False)["value"]:
        named = {c: values[c][code] for c, code in zip(cell_cols, cell)}
        out.append({**named, "stat": _mean_std(group.tolist()),
                    "hib": _direction({values["higher_is_better"][h] for h in hibs[cell]})})
    return out


def failed_trials(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per failed trial: sweep_id, trial_id, method, generator, error."""
    bad = rows[rows["status"] != "ok"]
    cols = ["sweep_id", "trial_id", "method", "generator", "error"]
    return bad[cols].drop_duplicates(["sweep_id", "trial_id"]).sort_values("trial_id")


# ---------------------------------------------------------------- the generic pivot

def _varying(records: list[dict], fixed: tuple) -> dict[str, list[str]]:
    """Per method, the key columns (not in `fixed`) that take several values within a block of
    records sharing the `fixed` columns (method among them): these go into the row label."""
    values: dict = defaultdict(set)
    for rec in records:
        block = tuple(rec[c] for c in fixed)
        for c in SUFFIX_NAMES:
            if c not in fixed:
                values[(block, c)].add(fmt_value(rec[c]))
    out: dict = defaultdict(set)
    for (block, c), vals in values.items():
        if len(vals) > 1:
            out[block[fixed.index("method")]].add(c)
    return {m: [c for c in SUFFIX_NAMES if c in cols] for m, cols in out.items()}


def _method_label(rec: dict, alpha_varies: bool, suffix: list[str]) -> str:
    s = rec["method"] + (f" (alpha={fmt_value(rec['alpha'])})" if alpha_varies else "")
    if "forget_set" in suffix and "forget_k" in suffix:
        suffix = [c for c in suffix if c != "forget_k"]  # k follows from the forget set
    return s + "".join(f" [{SUFFIX_NAMES[c]}={_label_value(c, rec[c])}]" for c in suffix)


def _label_value(column: str, value) -> str:
    return params_text(value) if column == "params" else fmt_value(value)


def _column(key: tuple, dims: tuple, hibs: set) -> Column:
    text = {"generator": lambda v: GENERATOR_NAMES.get(v, fmt_value(v)),
            "metric": lambda v: METRIC_NAMES.get(v, fmt_value(v))}
    levels = tuple(text.get(d, fmt_value)(v) for d, v in zip(dims, key))
    metric = key[dims.index("metric")]
    return Column(key, levels, _direction(hibs), DECIMALS.get(metric, DEFAULT_DECIMALS))


def _column_sort(key: tuple, dims: tuple) -> tuple:
    order = {"generator": GENERATOR_ORDER, "split": SPLIT_ORDER, "metric": METRIC_ORDER}
    return tuple(_rank(v, order.get(d, ())) for d, v in zip(dims, key))


def _retain_rank(label) -> tuple:
    # real retain data first, then less of it, then proxies, then none
    mode = str(label).split(" ")[0] if label is not None else ""
    return (("full", "fraction", "proxy", "none").index(mode)
            if mode in ("full", "fraction", "proxy", "none") else 4, fmt_value(label))


def pivot(records: list[dict], *, name: str, title: str, columns: tuple = ("split", "metric"),
          axes: tuple = (), groups: tuple = (), group_label=None, group_order=None,
          notes=()) -> Table | None:
    """Rows: method (+ the `axes` columns as extra row-header columns), ranked within
    `groups` (ordered by `group_order(record)`, default: by value); columns: one per distinct
    value of the `columns` fields. None if no records."""
    if not records:
        return None
    fixed = ("method", *[c for c in columns if c in KEYS], *groups, *axes)
    varying = _varying(records, fixed)
    alpha_blocks: dict = defaultdict(set)
    for rec in records:
        alpha_blocks[tuple(rec[c] for c in fixed if c != "alpha")].add(fmt_value(rec["alpha"]))
    alpha_varies = {rec["method"] for rec in records if "alpha" not in fixed and len(
        alpha_blocks[tuple(rec[c] for c in fixed if c != "alpha")]) > 1}

    row_of: dict = {}
    col_hibs: dict = defaultdict(set)
    placed: dict = {}
    for rec in records:
        method = rec["method"]
        label = _method_label(rec, method in alpha_varies, varying.get(method, []))
        gkey = tuple(rec[g] for g in groups)
        akey = tuple(rec[a] for a in axes)
        rid = (gkey, label, akey)
        gsort = group_order(rec) if group_order else tuple(_sort_value(v) for v in gkey)
        row_of[rid] = (gsort, _rank(method, METHOD_ORDER), _sort_value(rec["alpha"]),
                       tuple(_sort_value(v) for v in akey), _retain_rank(rec["retain"]),
                       label, rec)
        ckey = tuple(rec[c] for c in columns)
        col_hibs[ckey].add(rec["hib"])
        if (rid, ckey) in placed:  # would mean two settings averaged into one cell
            raise AssertionError(f"two settings for one cell: {rid} {ckey}")
        placed[(rid, ckey)] = rec["stat"]

    rids = sorted(row_of, key=lambda rid: row_of[rid][:6])
    ckeys = sorted(col_hibs, key=lambda k: _column_sort(k, columns))
    rows = []
    for rid in rids:
        gkey, label, akey = rid
        rec = row_of[rid][6]
        glabel = group_label(rec) if group_label else " ".join(map(fmt_value, gkey))
        rows.append(Row((label, *(fmt_value(v) if v is not None else "–" for v in akey)),
                        glabel if groups else "", rec["method"] in REFERENCE_METHODS))
    cols = [_column(k, columns, col_hibs[k]) for k in ckeys]
    r_index = {rid: i for i, rid in enumerate(rids)}
    c_index = {k: i for i, k in enumerate(ckeys)}
    cells = {(r_index[rid], c_index[ck]): st for (rid, ck), st in placed.items()}
    return Table(name, title, ("method", *(AXIS_NAMES.get(a, a) for a in axes)), columns,
                 rows, cols, cells, list(notes))


# ---------------------------------------------------------------- the paper tables

LEGEND = ("↑ higher is better, ↓ lower is better; mean ± std over seeds, n = seeds; bold: best "
          "unlearning method of the column (original and retrain are references, not ranked), "
          "chosen on unrounded means; – no value")


def _slices(records: list[dict], cols: tuple) -> list[tuple[str, list[dict]]]:
    """Records split by `cols` (e.g. task and mask ratio); the suffix names only what varies."""
    parts: dict = defaultdict(list)
    for rec in records:
        parts[tuple(rec[c] for c in cols)].append(rec)
    varies = [i for i, _ in enumerate(cols) if len({k[i] for k in parts}) > 1]
    out = []
    for key in sorted(parts, key=lambda k: tuple(_sort_value(v) for v in k)):
        suffix = "_".join(fmt_value(key[i]).replace(" ", "") for i in varies)
        out.append((suffix, parts[key]))
    return out


def _ablation_methods(records: list[dict], axis: str) -> set[str]:
    """Methods for which `axis` takes several values with every other key held fixed."""
    others = [k for k in KEYS if k not in (axis, "forget_k" if axis == "forget_set" else axis)]
    seen: dict = defaultdict(set)
    for rec in records:
        seen[tuple(rec[k] for k in others)].add(fmt_value(rec[axis]))
    return {dict(zip(others, k))["method"] for k, v in seen.items() if len(v) > 1}


def _where(rec: dict) -> str:
    return (f"{rec['dataset']}, {fmt_value(rec['task'])}, mask ratio "
            f"{fmt_value(rec['mask_ratio'])}")


def i2i_tables(records: list[dict], metrics=PAPER_METRICS) -> list[Table]:
    """Tables 1/2 layout, every metric per generator, and the alpha, retain-availability and
    forget-set ablations, per (dataset, task, mask ratio)."""
    out = []
    i2i = [r for r in records if r["family"] == "i2i"]
    for suffix, recs in _slices(i2i, ("dataset", "task", "mask_ratio")):
        tag = f"_{suffix}" if suffix else ""
        where = _where(recs[0])
        head = [r for r in recs if r["metric"] in metrics and r["split"] in ("retain", "forget")]
        names = ", ".join(METRIC_NAMES.get(m, m) for m in metrics)
        dims = ("generator", "split", "metric")
        out.append(pivot(head, name=f"i2i_main{tag}", columns=dims,
                         title=f"Image-to-image unlearning ({names}), {where}"))
        out.append(pivot(recs, name=f"i2i_metrics{tag}", groups=("generator",),
                         group_label=lambda r: GENERATOR_NAMES.get(r["generator"],
                                                                   r["generator"]),
                         group_order=lambda r: _rank(r["generator"], GENERATOR_ORDER),
                         title=f"Image-to-image unlearning, every metric per generator, "
                               f"{where}"))
        for axis, name, what in (("alpha", "alpha", "alpha ablation (weight of the forget "
                                                    "term)"),
                                 ("retain", "retain", "retain-availability ablation")):
            methods = _ablation_methods(recs, axis)
            if methods:
                rows = [r for r in head if r["method"] in methods | set(REFERENCE_METHODS)]
                out.append(pivot(rows, name=f"i2i_{name}{tag}", columns=dims, axes=(axis,),
                                 title=f"Image-to-image unlearning: {what}, {where}"))
        if _ablation_methods(recs, "forget_set"):
            out.append(pivot(
                head, name=f"i2i_forget{tag}", columns=dims, groups=("forget_set", "forget_k"),
                group_label=lambda r: f"forget set {fmt_value(r['forget_set'])}" + (
                    f" (k={fmt_value(r['forget_k'])})" if r["forget_k"] is not None else ""),
                group_order=lambda r: (_sort_value(r["forget_k"]), _sort_value(r["forget_set"])),
                title=f"Image-to-image unlearning: forget-set ablation, {where}"))
    return [t for t in out if t is not None]


SPEEDUP_MATCH = ("generator", "generator_size", "dataset", "setting", "forget_set", "forget_k")


def speedup_records(rows: pd.DataFrame) -> list[dict]:
    """Per GAN setting: unlearn seconds, speedup (retrain's unlearn seconds / the method's,
    matched on dataset, setting, forget set, k and seed, and the generator) and retrain's
    epochs, as records like aggregate()'s. The ratio is taken per seed, then averaged."""
    ok = _with_keys(rows[rows["family"] == "gan"])
    if ok.empty:
        return []
    trials: dict = {}
    for r in ok.itertuples(index=False):
        t = trials.setdefault((r.sweep_id, r.trial_id), {
            "key": _key_of(r), "rep": (_norm(r.pretrain_seed), _norm(r.seed)),
            "seconds": _norm(r.unlearn_seconds), "epochs": None, "split": r.split})
        if r.metric == "epochs":
            t["epochs"] = float(r.value)

    def match(t):
        return (*(t["key"][k] for k in SPEEDUP_MATCH), t["rep"][1])

    ref: dict = defaultdict(lambda: {"seconds": [], "epochs": []})
    for t in trials.values():
        if t["key"]["method"] == "retrain":
            if t["seconds"] is not None:
                ref[match(t)]["seconds"].append(t["seconds"])
            if t["epochs"] is not None:
                ref[match(t)]["epochs"].append(t["epochs"])
    per_rep: dict = defaultdict(list)
    for t in trials.values():
        key, split = tuple(t["key"].values()), t["split"]
        secs = t["seconds"]
        if secs is not None:
            per_rep[(key, split, "unlearn_seconds", t["rep"])].append(secs)
        base = ref.get(match(t))
        if base and base["seconds"] and secs and secs > 0:
            per_rep[(key, split, "speedup", t["rep"])].append(
                statistics.fmean(base["seconds"]) / secs)
        if base and base["epochs"]:
            per_rep[(key, split, "retrain_epochs", t["rep"])].append(
                statistics.fmean(base["epochs"]))
    values: dict = defaultdict(list)
    for (key, split, metric, _), vals in per_rep.items():
        values[(key, split, metric)].append(statistics.fmean(vals))
    hib = {"unlearn_seconds": False, "speedup": True, "retrain_epochs": None}
    return [{**dict(zip(KEYS, key)), "split": split, "metric": metric,
             "stat": _mean_std(vals), "hib": hib[metric]}
            for (key, split, metric), vals in values.items()]


def _gan_group(rec: dict) -> str:
    what = {"class": "class unlearning", "item": "item unlearning"}.get(
        rec["setting"], fmt_value(rec["setting"]))
    k = f", k={fmt_value(rec['forget_k'])}" if rec["forget_k"] is not None else ""
    return f"{what}{k}, forget set {fmt_value(rec['forget_set'])}"


def gan_tables(records: list[dict], speed: list[dict]) -> list[Table]:
    """The GAN item/class table with speedup, one per data set: rows grouped by setting and
    forget set (methods ranked within a group), whole-model metrics as columns."""
    out = []
    gan = [r for r in records if r["family"] == "gan"] + speed
    for suffix, recs in _slices(gan, ("dataset",)):
        splits = {r["split"] for r in recs}
        columns = ("metric",) if len(splits) == 1 else ("split", "metric")
        out.append(pivot(
            recs, name=f"gan{'_' + suffix if suffix else ''}", columns=columns,
            groups=("setting", "forget_k", "forget_set"), group_label=_gan_group,
            title=f"GAN unlearning, item and class, {recs[0]['dataset']}",
            notes=["speedup = unlearn seconds of `retrain` / unlearn seconds of the method, "
                   "per seed matched on data set, setting, forget set, k and seed, then "
                   "averaged; `epochs` and `retrain epochs` are the epochs behind both times"]))
    return [t for t in out if t is not None]


def tables_from(records: list[dict], speed: list[dict], metrics=PAPER_METRICS) -> list[Table]:
    """Every table that applies, from `aggregate(rows)` and `speedup_records(rows)` of the
    same rows (for callers that also use them elsewhere, e.g. for figures)."""
    return i2i_tables(records, metrics) + gan_tables(records, speed)


def all_tables(rows: pd.DataFrame, metrics=PAPER_METRICS) -> list[Table]:
    """Every table that applies to these rows (ok rows only; failures are not averaged)."""
    return tables_from(aggregate(rows), speedup_records(rows), metrics)


def params_text(params) -> str:
    """A params JSON object as compact `k=v` pairs for labels (the raw JSON if unparsable)."""
    try:
        obj = json.loads(params)
    except (TypeError, ValueError):
        return fmt_value(params)
    if not isinstance(obj, dict):
        return fmt_value(params)
    return ", ".join(f"{k}={v}" for k, v in sorted(obj.items())) or "{}"
