"""From result rows to tables: statistics over seeds (DuckDB SQL), and one pivot behind every
format.

`aggregate` and `speedup_records` are SQL over the view `rows` of a `Results` (analysis/load.py;
a DataFrame from `load()` is put into DuckDB first), so only their few hundred records reach
Python. A `Table` holds unrounded statistics (`Stat`) per row x column; Markdown, LaTeX, CSV and
HTML are renderings of it (analysis/render.py), so every format shows the same numbers and the
same best cells. Rows that differ in any configuration column are never averaged together: a
column that varies within a method becomes part of the row label
(`l2l (alpha=0.5) [retain=full]`). Nor are values of one metric computed on different feature
extractors (the rows' `extractor`): the column header names it (`FID (classifier)`,
`cos (CLIP ViT-H-14)`). Directions come from the metric registry
(contract/metrics.py): higher, lower, or best at a target value (MIA AUC: 0.5).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from analysis import stats
from analysis.load import as_results, sql_text
from contract.metrics import Direction
from contract.metrics import direction as registry_direction

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
    "fid", "kid", "is", "cosine", "psnr", "ssim", "mse_masked", "mia_auc", "mia_auc_retrain",
    "mia_gap_retrain", "retrain_distance", "forget_class_share", "nn_distance",
    "downstream_accuracy", "samples_seen", "unlearn_seconds", "speedup", "images_ratio",
    "fid_vs_retrain", "rounds_run", "reached_retrain", "epochs", "retrain_epochs")
METRIC_NAMES = {
    "fid": "FID", "kid": "KID", "is": "IS", "cosine": "cos", "psnr": "PSNR",
    "ssim": "SSIM", "mse_masked": "MSE(mask)", "mia_auc": "MIA AUC",
    "mia_auc_retrain": "MIA AUC of retrain", "mia_gap_retrain": "MIA gap to retrain",
    "retrain_distance": "dist. to retrain", "forget_class_share": "forget-class share",
    "nn_distance": "NN dist.", "downstream_accuracy": "downstream acc.",
    "samples_seen": "samples seen", "unlearn_seconds": "unlearn s",
    "speedup": "speedup", "images_ratio": "images ratio", "fid_vs_retrain": "FID / retrain",
    "rounds_run": "rounds run", "reached_retrain": "reached retrain",
    "epochs": "epochs", "retrain_epochs": "retrain epochs"}
# Display names of feature extractors (the rows' `extractor`, l2l/features.py): a metric computed
# on one is labelled with it, e.g. `cos (classifier)`, `FID (Inception)`; an architecture after a
# colon follows the name (`clip:ViT-H-14` -> `CLIP ViT-H-14`).
EXTRACTOR_NAMES = {"classifier": "classifier", "inception": "Inception", "clip": "CLIP"}
DECIMALS = {
    "fid": 2, "kid": 4, "is": 3, "cosine": 4, "psnr": 2, "ssim": 4, "mse_masked": 4,
    "mia_auc": 3, "mia_auc_retrain": 3, "mia_gap_retrain": 3, "retrain_distance": 4, "forget_class_share": 3, "nn_distance": 4,
    "downstream_accuracy": 3, "samples_seen": 0, "unlearn_seconds": 1, "speedup": 1,
    "images_ratio": 1, "fid_vs_retrain": 3, "rounds_run": 0, "reached_retrain": 2,
    "epochs": 1, "retrain_epochs": 1}
DEFAULT_DECIMALS = 4
PAPER_METRICS = ("fid", "is", "cosine")  # Tables 1 and 2 of the image-to-image paper

# Configuration columns that identify a setting (everything but the seeds). `retain` is one
# label for retain_mode, retain_fraction, proxy_source and proxy_size.
KEYS = ("family", "dataset", "setting", "task", "mask_ratio", "generator", "generator_size",
        "method", "alpha", "noise", "retain", "forget_set", "forget_k", "params", "settings")
# Label of a key in a row label when it varies within a method, in display order.
SUFFIX_NAMES = {"retain": "retain", "noise": "noise", "generator_size": "size",
                "mask_ratio": "mask", "forget_set": "forget", "forget_k": "k",
                "setting": "setting", "params": "params", "settings": "settings", "dataset": "data", "task": "task",
                "generator": "generator", "family": "family"}
AXIS_NAMES = {"alpha": "alpha", "retain": "retain set", "forget_set": "forget set",
              "generator": "generator"}


@dataclass(frozen=True)
class Stat(stats.Symmetric):
    """Statistics over replicates (distinct (pretrain_seed, seed) pairs), unrounded; `lo`,
    `hi` the ends of the 95% interval."""
    mean: float
    std: float  # sample standard deviation; NaN when n < 2
    n: int
    # half-width of the 95% interval (analysis/stats.py: the seeds' spread and the images'
    # standard error); NaN when nothing measures the spread
    half: float = math.nan


@dataclass
class Column:
    key: tuple          # machine values, e.g. ("mae", "retain", "fid")
    levels: tuple       # header text per level, top first, e.g. ("MAE", "retain", "FID")
    direction: Direction | None  # None: mixed/unknown or descriptive (never bold)
    decimals: int

    @property
    def arrow(self) -> str:
        return self.direction.arrow if self.direction else ""

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
        unrounded means by `Direction.score` (a target metric: the mean nearest the target).
        Only non-reference rows compete, a column needs a direction and at least two
        competitors, and when all competitors score the same none is best."""
        out = set()
        for c, col in enumerate(self.columns):
            if col.direction is None:
                continue
            for _, idx in self.groups():
                scores = {r: col.direction.score(self.cells[(r, c)].mean) for r in idx
                          if not self.rows[r].reference and (r, c) in self.cells
                          and math.isfinite(self.cells[(r, c)].mean)}
                if len(scores) < 2 or len(set(scores.values())) < 2:
                    continue
                top = max(scores.values())
                out |= {(r, c) for r, v in scores.items() if v == top}
        return out

    @property
    def legend(self) -> str:
        return legend(c.direction for c in self.columns)


def legend(directions) -> str:
    """What the arrows of these directions mean, and how cells are read."""
    seen = {d.arrow: d.words for d in sorted({d for d in directions if d is not None},
                                             key=lambda d: (d.kind, d.target or 0.0))}
    order = sorted(seen, key=lambda a: ("↑", "↓").index(a) if a in ("↑", "↓") else 2)
    arrows = ", ".join(f"{a} {seen[a]}" for a in order)
    return "; ".join(([arrows] if arrows else []) + [
        f"mean ± half-width of the {stats.METHOD}; n = replicates; bold: best unlearning "
        "method of the column (original and retrain are references, not ranked), chosen on "
        "unrounded means",
        "– no value"])


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
    """(`mean ± half`, `(n=K)`), half the 95% interval's width; left out when nothing measured
    the spread (one replicate without an image standard error)."""
    main = fmt_number(s.mean, decimals)
    if math.isfinite(s.half):
        main += f" ± {fmt_number(s.half, decimals)}"
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


def resolve_direction(family, split, metric, stored: str | None = None) -> Direction | None:
    """The registry's direction of a metric; for a metric the registry does not know, the
    rows' own `direction` text (None if absent, mixed or unreadable)."""
    found = registry_direction(family or "", split or "", metric or "")
    if found is not None:
        return found
    try:
        return Direction.parse(stored)
    except ValueError:
        return None


# ---------------------------------------------------------------- aggregation (SQL)

# The setting keys as SQL over `rows`: NaN counts as missing, and `retain` is one label for four
# columns (`full`, `fraction 0.1`, `proxy digits x1`, `none`; DuckDB's {:g} formats numbers as
# fmt_value does).
RETAIN_SQL = (
    "CASE retain_mode "
    "WHEN 'fraction' THEN 'fraction ' || coalesce(format('{:g}', "
    "nullif(retain_fraction, 'nan'::DOUBLE)), 'none') "
    "WHEN 'proxy' THEN 'proxy' || coalesce(' ' || nullif(proxy_source, ''), '') "
    "|| coalesce(' x' || format('{:g}', nullif(proxy_size, 'nan'::DOUBLE)), '') "
    "ELSE retain_mode END")
KEY_SQL = {k: {"mask_ratio": "nullif(mask_ratio, 'nan'::DOUBLE)",
               "alpha": "nullif(alpha, 'nan'::DOUBLE)", "retain": RETAIN_SQL}.get(k, k)
           for k in KEYS}
KEY_SQL["settings"] = "coalesce(settings, '{}')"  # null (hand-made rows): nothing recorded
KEYS_SELECT = ", ".join(f"{sql} AS {k}" for k, sql in KEY_SQL.items())
KEY_LIST = ", ".join(KEYS)
OK_ROWS = "status = 'ok' AND value IS NOT NULL AND NOT isnan(value)"


def _stats_sql(group: str, source: str) -> str:
    """Mean, sample std and n per `group` over the replicates of `source` (columns `group`,
    pretrain_seed, seed, value, value_se), each replicate's rows averaged first; with the mean
    squared image standard error (`v_img`, NULL when no row has one) and the number of
    distinct evaluation draws (`seed`s) for the interval. The replicate values of a group are
    sorted before they are summed (compensated, favg), so the same rows give the same
    unrounded numbers in every run, whatever order DuckDB's threads combine them in."""
    return f"""
        SELECT {group}, list_aggregate(vs, 'favg') AS mean,
               list_aggregate(vs, 'stddev_samp') AS std, len(vs) AS n,
               list_aggregate(list_sort(vi), 'favg') AS v_img, draws
        FROM (SELECT {group}, list_sort(list(value)) AS vs, list(v_img) AS vi,
                     count(DISTINCT seed) AS draws
              FROM (SELECT {group}, seed, avg(value) AS value,
                           avg(value_se * value_se) AS v_img FROM {source}
                    GROUP BY {group}, pretrain_seed, seed)
              GROUP BY {group})"""


def _same(a: str, b: str, columns) -> str:
    return " AND ".join(f"{a}.{c} IS NOT DISTINCT FROM {b}.{c}" for c in columns)


# What a cell of a table is, before its replicates: a setting, a split, a metric and the
# feature extractor the metric was computed on (values of different extractors never average).
CELL = (*KEYS, "split", "metric", "extractor")
CELL_LIST = ", ".join(CELL)


def _aggregate_sql(exact: bool) -> str:
    """Per setting x split x metric x extractor (a cell): mean, std and n over replicates
    (pretrain_seed, seed), each replicate's duplicate rows averaged first. Replicates are
    grouped by a 64-bit hash `h` of the cell's keys: grouping a million rows by integers only is
    much cheaper than by seventeen columns. The caller checks that no two cells share a hash,
    and otherwise asks for `exact`, which groups by the keys themselves."""
    group = CELL_LIST if exact else "h"
    return f"""
    WITH src AS NOT MATERIALIZED (  -- read twice: cheaper than keeping a million rows
        SELECT hash({CELL_LIST}) AS h, * FROM (
            SELECT {KEYS_SELECT}, split, metric, extractor, pretrain_seed, seed, value,
                   nullif(value_se, 'nan'::DOUBLE) AS value_se
            FROM rows WHERE {OK_ROWS})),
    cells AS (SELECT DISTINCT h, {CELL_LIST} FROM src),
    stats AS ({_stats_sql(group, "src")})
    SELECT cells.*, mean, std, n, v_img, draws FROM cells
    JOIN stats ON {_same("cells", "stats", CELL if exact else ["h"])}
    ORDER BY {CELL_LIST}"""


def _stored_directions(res, metrics: set) -> dict:
    """(keys..., split, metric, extractor) -> the rows' own direction text, for the cells of
    these metrics: the text when every row of the cell has the same one, else None."""
    names = ", ".join(sql_text(m) for m in sorted(metrics))
    found = res.sql(
        f"SELECT {CELL_LIST}, CASE WHEN min(direction) = max(direction) AND "
        f"count(direction) = count(*) THEN min(direction) END FROM (SELECT {KEYS_SELECT}, "
        f"split, metric, extractor, direction FROM rows WHERE {OK_ROWS} AND metric IN "
        f"({names})) GROUP BY ALL")
    return {r[:-1]: r[-1] for r in found}


def cell_stat(mean, std, n, v_img=None, draws=1) -> Stat:
    """A cell's Stat from its SQL aggregates (`_stats_sql`), with the 95% interval."""
    std = math.nan if std is None else float(std)
    ci = stats.interval(float(mean), std, int(n), math.nan if v_img is None else float(v_img),
                        int(draws or 1))
    return Stat(float(mean), std, int(n), ci.half)


def _record(keys: dict, split, metric, mean, std, n, v_img=None, draws=1, stored=None,
            extractor=None) -> dict:
    return {**keys, "split": split, "metric": metric, "extractor": extractor,
            "stat": cell_stat(mean, std, n, v_img, draws),
            "direction": resolve_direction(keys["family"], split, metric, stored)}


def aggregate(rows) -> list[dict]:
    """One record per setting x split x metric x extractor: the KEYS, `split`, `metric`,
    `extractor` (the feature extractor the metric was computed on, None for metrics that use
    none), `stat` (over replicates, each replicate's duplicates averaged first) and `direction`
    (the registry's; for a metric it does not know, the rows' when they agree). Only
    `status == 'ok'` rows with a value count. `rows`: a Results or a DataFrame of result rows."""
    res = as_results(rows)
    out = res.sql(_aggregate_sql(exact=False))
    if len({r[0] for r in out}) < len(out):  # two cells, one hash: group by the keys
        out = res.sql(_aggregate_sql(exact=True))
    nk = len(KEYS)
    # ((keys..., split, metric, extractor), (mean, std, n, v_img, draws))
    cells = [(r[1:1 + len(CELL)], r[-5:]) for r in out]
    unknown = {c[nk + 1] for c, _ in cells
               if registry_direction(c[0] or "", c[nk] or "", c[nk + 1] or "") is None}
    stored = _stored_directions(res, unknown) if unknown else {}
    return [_record(dict(zip(KEYS, c[:nk])), c[nk], c[nk + 1], *values, stored.get(c),
                    extractor=c[nk + 2]) for c, values in cells]


def failed_trials(rows) -> pd.DataFrame:
    """One row per failed trial: sweep_id, trial_id, method, generator, error."""
    cols = ["sweep_id", "trial_id", "method", "generator", "error"]
    found = as_results(rows).sql(
        "SELECT sweep_id, trial_id, first(method), first(generator), first(error) FROM rows "
        "WHERE status IS DISTINCT FROM 'ok' GROUP BY sweep_id, trial_id "
        "ORDER BY trial_id, sweep_id")
    return pd.DataFrame(found, columns=cols)


def trials(rows) -> list[dict]:
    """One dict per successful trial (one with a row that has a value): the KEYS, sweep_id,
    trial_id, pretrain_seed, seed and artifact_dir, by sweep and trial id."""
    cols = [*KEYS, "pretrain_seed", "seed", "artifact_dir"]
    found = as_results(rows).sql(
        f"SELECT sweep_id, trial_id, {', '.join(f'first({c})' for c in cols)} FROM ("
        f"SELECT {KEYS_SELECT}, sweep_id, trial_id, pretrain_seed, seed, artifact_dir "
        f"FROM rows WHERE {OK_ROWS}) GROUP BY sweep_id, trial_id ORDER BY sweep_id, trial_id")
    return [dict(zip(["sweep_id", "trial_id", *cols], r)) for r in found]


def overview(rows) -> dict:
    """Counts of the rows: rows, trials, ok rows (with or without a value)."""
    res = as_results(rows)
    trial = "trial_id" if len(res.sweep_ids) == 1 else "(sweep_id, trial_id)"
    n, trials_, ok = res.sql(f"SELECT count(*), count(DISTINCT {trial}), "
                             "count(*) FILTER (WHERE status = 'ok') FROM rows")[0]
    return {"rows": n, "trials": trials_, "ok_rows": ok}


# ---------------------------------------------------------------- the generic pivot

def _single(values: set):
    return next(iter(values)) if len(values) == 1 and None not in values else None


def settings_of(rec: dict) -> dict:
    """The `settings` JSON of a record (or of a row's keys) as a dict; {} when not recorded."""
    return _json_object(rec.get("settings"))


def params_of(rec: dict) -> dict:
    """The method parameters of a record (its `params` JSON) as a dict; {} when unreadable."""
    return _json_object(rec.get("params"))


def _json_object(text) -> dict:
    try:
        obj = json.loads(text or "{}")
    except (TypeError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _varying(records: list[dict], fixed: tuple) -> dict[str, list[str]]:
    """Per method, the key columns (not in `fixed`) that take several values within a block of
    records sharing the `fixed` columns (method among them): these go into the row label. Of
    `settings`, only the fields that vary go in, as `settings:<field>`."""
    values: dict = defaultdict(set)
    for rec in records:
        block = tuple(rec[c] for c in fixed)
        for c in SUFFIX_NAMES:
            if c not in fixed:
                values[(block, c)].add(fmt_value(rec[c]))
    out: dict = defaultdict(set)
    for (block, c), vals in values.items():
        if len(vals) <= 1:
            continue
        method = block[fixed.index("method")]
        if c != "settings":
            out[method].add(c)
            continue
        dicts = [settings_of(r) for r in records if tuple(r[k] for k in fixed) == block]
        # A recorded object without the field: the field unset (one added later, left out at
        # its default); an empty one (schema <= 4, nothing recorded): no vote.
        for k in sorted({k for d in dicts for k in d}):
            if len({json.dumps(d.get(k, "<unset>"), sort_keys=True) for d in dicts if d}) > 1:
                out[method].add(f"settings:{k}")
    order = [c for c in SUFFIX_NAMES if c != "settings"]
    return {m: [c for c in order if c in cols]
            + sorted(c for c in cols if c.startswith("settings:")) for m, cols in out.items()}


def _method_label(rec: dict, alpha_varies: bool, suffix: list[str]) -> str:
    s = rec["method"] + (f" (alpha={fmt_value(rec['alpha'])})" if alpha_varies else "")
    if "forget_set" in suffix and "forget_k" in suffix:
        suffix = [c for c in suffix if c != "forget_k"]  # k follows from the forget set
    for c in suffix:
        if c.startswith("settings:"):
            field = c.split(":", 1)[1]
            if field in settings_of(rec):
                s += f" [{field}={fmt_value(settings_of(rec)[field])}]"
        else:
            s += f" [{SUFFIX_NAMES[c]}={_label_value(c, rec[c])}]"
    return s


def _label_value(column: str, value) -> str:
    return params_text(value) if column == "params" else fmt_value(value)


def extractor_label(extractor: str) -> str:
    """`classifier`, `Inception`, `CLIP ViT-H-14`: an extractor's display name
    (EXTRACTOR_NAMES), an architecture after the colon kept as it is."""
    name, _, arch = str(extractor).partition(":")
    return " ".join(p for p in (EXTRACTOR_NAMES.get(name, name), arch) if p)


def metric_label(metric, extractor=None) -> str:
    """A metric's display name, with the feature extractor it was computed on when it used
    one: `FID (classifier)`, `cos (CLIP ViT-H-14)`, `PSNR`."""
    name = METRIC_NAMES.get(metric, fmt_value(metric))
    return f"{name} ({extractor_label(extractor)})" if extractor else name


def _column(key: tuple, dims: tuple, directions: set) -> Column:
    """`key`: the values of `dims`, then the metric's extractor (part of the metric's label)."""
    text = {"generator": lambda v: GENERATOR_NAMES.get(v, fmt_value(v)),
            "metric": lambda v: metric_label(v, key[-1])}
    levels = tuple(text.get(d, fmt_value)(v) for d, v in zip(dims, key))
    metric = key[dims.index("metric")]
    return Column(key, levels, _single(directions), DECIMALS.get(metric, DEFAULT_DECIMALS))


def _column_sort(key: tuple, dims: tuple) -> tuple:
    order = {"generator": GENERATOR_ORDER, "split": SPLIT_ORDER, "metric": METRIC_ORDER}
    return (*(_rank(v, order.get(d, ())) for d, v in zip(dims, key)), _sort_value(key[-1]))


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
    value of the `columns` fields and the metric's extractor. None if no records."""
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
    col_dirs: dict = defaultdict(set)
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
        ckey = (*(rec[c] for c in columns), rec.get("extractor"))
        col_dirs[ckey].add(rec["direction"])
        if (rid, ckey) in placed:  # would mean two settings averaged into one cell
            raise AssertionError(f"two settings for one cell: {rid} {ckey}")
        placed[(rid, ckey)] = rec["stat"]

    rids = sorted(row_of, key=lambda rid: row_of[rid][:6])
    ckeys = sorted(col_dirs, key=lambda k: _column_sort(k, columns))
    rows = []
    for rid in rids:
        gkey, label, akey = rid
        rec = row_of[rid][6]
        glabel = group_label(rec) if group_label else " ".join(map(fmt_value, gkey))
        rows.append(Row((label, *(fmt_value(v) if v is not None else "–" for v in akey)),
                        glabel if groups else "", rec["method"] in REFERENCE_METHODS))
    cols = [_column(k, columns, col_dirs[k]) for k in ckeys]
    r_index = {rid: i for i, rid in enumerate(rids)}
    c_index = {k: i for i, k in enumerate(ckeys)}
    cells = {(r_index[rid], c_index[ck]): st for (rid, ck), st in placed.items()}
    return Table(name, title, ("method", *(AXIS_NAMES.get(a, a) for a in axes)), columns,
                 rows, cols, cells, list(notes))


# ---------------------------------------------------------------- the paper tables

I2I_TABLES = ("main", "metrics", "alpha", "retain", "forget")


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


# Values the Parquet keeps that would read as something they are not in a table: the share of
# retain outputs put in a forgotten class is not forgetting, and the retrained model's membership
# AUC is the same on every row of a setting (the retrain row's own mia_auc shows it; the
# method rows have mia_gap_retrain, their distance to it).
NOT_SHOWN = {("retain", "forget_class_share"), ("*", "mia_auc_retrain")}


def i2i_tables(records: list[dict], metrics=PAPER_METRICS, which=I2I_TABLES) -> list[Table]:
    """Per (dataset, task, mask ratio), those of these tables that apply: `main` (Tables 1/2
    layout, `metrics` only), `metrics` (every metric, a group per generator), and the `alpha`,
    `retain` (retain availability) and `forget` (forget set) ablations."""
    out = []
    records = [r for r in records if (r["split"], r["metric"]) not in NOT_SHOWN
               and ("*", r["metric"]) not in NOT_SHOWN]
    for suffix, recs in _slices(records, LAYOUTS["i2i"].slices):
        tag = f"_{suffix}" if suffix else ""
        where = _where(recs[0])
        head = [r for r in recs if r["metric"] in metrics and r["split"] in ("retain", "forget")]
        names = ", ".join(METRIC_NAMES.get(m, m) for m in metrics)
        dims = ("generator", "split", "metric")
        if "main" in which:
            out.append(pivot(head, name=f"i2i_main{tag}", columns=dims,
                             title=f"Image-to-image unlearning ({names}), {where}"))
        if "metrics" in which:
            out.append(pivot(recs, name=f"i2i_metrics{tag}", groups=("generator",),
                             group_label=lambda r: GENERATOR_NAMES.get(r["generator"],
                                                                       r["generator"]),
                             group_order=lambda r: _rank(r["generator"], GENERATOR_ORDER),
                             title=f"Image-to-image unlearning, every metric per generator, "
                                   f"{where}"))
        for axis, name, what in (("alpha", "alpha", "alpha ablation (weight of the forget "
                                                    "term)"),
                                 ("retain", "retain", "retain-availability ablation")):
            methods = _ablation_methods(recs, axis) if name in which else set()
            if methods:
                rows = [r for r in head if r["method"] in methods | set(REFERENCE_METHODS)]
                out.append(pivot(rows, name=f"i2i_{name}{tag}", columns=dims, axes=(axis,),
                                 title=f"Image-to-image unlearning: {what}, {where}"))
        if "forget" in which and _ablation_methods(recs, "forget_set"):
            out.append(pivot(
                head, name=f"i2i_forget{tag}", columns=dims, groups=("forget_set", "forget_k"),
                group_label=lambda r: f"forget set {fmt_value(r['forget_set'])}" + (
                    f" (k={fmt_value(r['forget_k'])})" if r["forget_k"] is not None else ""),
                group_order=lambda r: (_sort_value(r["forget_k"]), _sort_value(r["forget_set"])),
                title=f"Image-to-image unlearning: forget-set ablation, {where}"))
    return [t for t in out if t is not None]


# A method row meets the retrain rows of the same request and original (pretrain_seed) and the
# same evaluation draw (seed): the ratios are taken per replicate, then averaged.
SPEEDUP_MATCH = ("generator", "generator_size", "dataset", "setting", "forget_set", "forget_k",
                 "pretrain_seed", "seed")
# Metrics derived against retrain (name -> SQL over the method `t` and retrain `r` columns):
#   unlearn_seconds  the method's seconds (the row's timing column)
#   speedup          retrain's seconds / the method's
#   images_ratio     images retrain trained on / images the method trained on
#   fid_vs_retrain   the method's FID / retrain's: 1.1 is 10% worse than retraining
#   retrain_epochs   the epochs behind retrain's time
DERIVED = {
    "unlearn_seconds": "t.secs",
    "speedup": "CASE WHEN t.secs > 0 THEN r.secs / t.secs END",
    "images_ratio": "CASE WHEN t.seen > 0 THEN r.seen / t.seen END",
    "fid_vs_retrain": "CASE WHEN r.fid > 0 THEN t.fid / r.fid END",
    "retrain_epochs": "r.epochs",
}
_FIRSTS = ", ".join(f"first({c}) AS {c}"
                    for c in (*KEYS, "split", "pretrain_seed", "seed", "secs"))
_SPEEDUP_SQL = f"""
    WITH g AS (
        SELECT {KEYS_SELECT}, sweep_id, trial_id, split, pretrain_seed, seed,
               nullif(unlearn_seconds, 'nan'::DOUBLE) AS secs, metric, value
        FROM rows WHERE family = 'gan' AND {OK_ROWS}),
    t AS (
        SELECT {_FIRSTS},
               favg(value) FILTER (WHERE metric = 'epochs') AS epochs,
               favg(value) FILTER (WHERE metric = 'samples_seen') AS seen,
               favg(value) FILTER (WHERE metric = 'fid') AS fid
        FROM g GROUP BY sweep_id, trial_id),
    r AS (
        SELECT {", ".join(SPEEDUP_MATCH)}, favg(secs) AS secs, favg(epochs) AS epochs,
               favg(seen) AS seen, favg(fid) AS fid
        FROM t WHERE method = 'retrain' GROUP BY ALL),
    v AS (
        SELECT t.*, {", ".join(f"{sql} AS d_{name}" for name, sql in DERIVED.items())}
        FROM t LEFT JOIN r ON {_same("t", "r", SPEEDUP_MATCH)}),
    per AS (  -- timings and ratios have no image standard error
        SELECT *, NULL::DOUBLE AS value_se FROM (
            SELECT {KEY_LIST}, split, pretrain_seed, seed,
                   unnest([{", ".join(repr(n) for n in DERIVED)}]) AS metric,
                   unnest([{", ".join(f"d_{n}" for n in DERIVED)}]) AS value
            FROM v)
        WHERE value IS NOT NULL)
    {_stats_sql(f"{KEY_LIST}, split, metric", "per")} ORDER BY {KEY_LIST}, split, metric"""


def speedup_records(rows, records: list[dict] | None = None) -> list[dict]:
    """Per GAN setting: the metrics derived against retrain (DERIVED: seconds, speedup, images
    ratio, FID ratio, retrain's epochs), matched on the request, the original
    (pretrain_seed) and the seed, as records like aggregate()'s. The ratios are taken per
    replicate, then averaged; a method that took 0 s, or has no matching retrain, has no
    speedup. `records`: aggregate(rows), when known: without a GAN record there is nothing to
    query."""
    if records is not None and "gan" not in by_family(records):
        return []
    nk = len(KEYS)
    return [_record(dict(zip(KEYS, r[:nk])), *r[nk:])
            for r in as_results(rows).sql(_SPEEDUP_SQL)]


_COST_SQL = f"""
    WITH g AS (
        SELECT {KEYS_SELECT}, sweep_id, trial_id, pretrain_seed, seed,
               nullif(unlearn_seconds, 'nan'::DOUBLE) AS secs
        FROM rows WHERE family = 'i2i' AND {OK_ROWS}),
    t AS (SELECT {", ".join(f"first({c}) AS {c}" for c in KEYS)},
                 first(pretrain_seed) AS pretrain_seed, first(seed) AS seed,
                 first(secs) AS value
          FROM g GROUP BY sweep_id, trial_id),
    per AS (SELECT {KEY_LIST}, 'all' AS split, 'unlearn_seconds' AS metric, pretrain_seed,
                   seed, value, NULL::DOUBLE AS value_se FROM t WHERE value IS NOT NULL)
    {_stats_sql(f"{KEY_LIST}, split, metric", "per")} ORDER BY {KEY_LIST}"""


def cost_records(rows) -> list[dict]:
    """Per image-to-image setting: the unlearning seconds of a trial (the timing column;
    retrain: its training), as records like aggregate()'s (split `all`). GAN settings get
    theirs, with the speedup, from speedup_records."""
    nk = len(KEYS)
    return [_record(dict(zip(KEYS, r[:nk])), *r[nk:]) for r in as_results(rows).sql(_COST_SQL)]


# The headline of a sweep (`l2l-analysis table`): what a reader looks at first, narrow enough
# for a 100-column terminal.
HEADLINE = {"i2i": (("forget", "fid"), ("forget", "cosine"), ("retain", "fid"),
                    ("retain", "cosine"), ("all", "unlearn_seconds")),
            "gan": (("all", "fid"), ("all", "forget_class_share"), ("all", "mia_auc"),
                    ("all", "speedup"))}


def headline_tables(records: list[dict]) -> list[Table]:
    """Per family and slice: forget and retain FID and cosine and the cost (image-to-image, a
    group per generator) or FID, forgetting and speedup (GAN, a group per request)."""
    out = []
    fams = by_family(records)
    for suffix, recs in _slices(fams.get("i2i", []), LAYOUTS["i2i"].slices):
        keep = [r for r in recs if (r["split"], r["metric"]) in HEADLINE["i2i"]]
        out.append(pivot(keep, name=f"headline{'_' + suffix if suffix else ''}",
                         groups=("generator",), columns=("split", "metric"),
                         group_label=lambda r: GENERATOR_NAMES.get(r["generator"],
                                                                   r["generator"]),
                         group_order=lambda r: _rank(r["generator"], GENERATOR_ORDER),
                         title=f"Image-to-image unlearning, {_where(recs[0])}"))
    for suffix, recs in _slices(fams.get("gan", []), LAYOUTS["gan"].slices):
        keep = [r for r in recs if (r["split"], r["metric"]) in HEADLINE["gan"]]
        out.append(pivot(keep, name=f"headline_gan{'_' + suffix if suffix else ''}",
                         groups=("setting", "forget_k", "forget_set"), columns=("metric",),
                         group_label=_gan_group, group_order=_request_order,
                         title=f"GAN unlearning, {recs[0]['dataset']}"))
    return [t for t in out if t is not None]


def _gan_group(rec: dict) -> str:
    what = {"class": "class unlearning", "item": "item unlearning"}.get(
        rec["setting"], fmt_value(rec["setting"]))
    k = f", k={fmt_value(rec['forget_k'])}" if rec["forget_k"] is not None else ""
    return f"{what}{k}, forget set {fmt_value(rec['forget_set'])}"


def gan_tables(records: list[dict], metrics=PAPER_METRICS) -> list[Table]:
    """The GAN item/class table with speedup (its records include speedup_records'), one per
    data set: rows grouped by setting and forget set (methods ranked within a group),
    whole-model metrics as columns."""
    out = []
    for suffix, recs in _slices(records, LAYOUTS["gan"].slices):
        splits = {r["split"] for r in recs}
        columns = ("metric",) if len(splits) == 1 else ("split", "metric")
        out.append(pivot(
            recs, name=f"gan{'_' + suffix if suffix else ''}", columns=columns,
            groups=("setting", "forget_k", "forget_set"), group_label=_gan_group,
            title=f"GAN unlearning, item and class, {recs[0]['dataset']}",
            notes=[SPEEDUP_NOTE]))
        speed = [r for r in recs if r["metric"] in SPEEDUP_COLUMNS]
        if any(r["metric"] == "speedup" for r in speed):
            out.append(pivot(
                speed, name=f"gan_speedup{'_' + suffix if suffix else ''}", columns=columns,
                groups=("setting", "forget_k", "forget_set"), group_label=_gan_group,
                group_order=_request_order,
                title=f"GAN unlearning: speedup against the request, {recs[0]['dataset']}",
                notes=[SPEEDUP_NOTE, "FID / retrain: the method's FID over the retrained "
                       "model's, per replicate (1.10: 10% worse); reached retrain: share of "
                       "runs whose stopping rule reached retrain's forgetting (unlearn."
                       "stop_every)"]))
    return [t for t in out if t is not None]


# The speedup table's columns: the cost against retrain, whether and how well it forgot, and
# the quality cost beside it.
SPEEDUP_COLUMNS = ("speedup", "images_ratio", "unlearn_seconds", "reached_retrain",
                   "rounds_run", "fid", "fid_vs_retrain", "downstream_accuracy")
SPEEDUP_NOTE = ("speedup = unlearn seconds of `retrain` / unlearn seconds of the method, and "
                "images ratio = images retrain trained on / images the method trained on, per "
                "replicate matched on data set, setting, forget set, k, original "
                "(pretrain_seed) and seed, then averaged; `epochs` and `retrain epochs` are the "
                "epochs behind both times")


def _request_order(rec: dict) -> tuple:
    """Item requests by size, then the class requests."""
    return (rec["setting"] != "item", _sort_value(rec["forget_k"]),
            _sort_value(rec["forget_set"]))


@dataclass(frozen=True)
class Layout:
    """How a family's paper presents its results: what one table is about (`slices`), how
    rows group for sample artifacts (`artifact_groups`), and its tables."""

    slices: tuple[str, ...]
    artifact_groups: tuple[str, ...]
    tables: Callable[[list[dict], tuple], list[Table]]


# The paper layouts, by family: each family's records go to its own layout, so nothing here
# asks which family a record is. A family without a layout gets no tables.
LAYOUTS: dict[str, Layout] = {
    "i2i": Layout(("dataset", "task", "mask_ratio"), ("generator",),
                  lambda recs, metrics: i2i_tables(recs, metrics)),
    "gan": Layout(("dataset",), ("setting", "forget_k", "forget_set"), gan_tables),
}


def by_family(records: list[dict]) -> dict[str, list[dict]]:
    """Records (or trials) grouped by their `family`, in first-seen order."""
    out: dict[str, list[dict]] = {}
    for r in records:
        out.setdefault(r["family"], []).append(r)
    return out


def tables_from(records: list[dict], speed: list[dict], metrics=PAPER_METRICS,
                layouts: dict[str, Layout] = LAYOUTS, curves: list | None = None
                ) -> list[Table]:
    """Every table that applies, from `aggregate(rows)` and `speedup_records(rows)` of the
    same rows (for callers that also use them elsewhere, e.g. for figures), and the forgetting
    curves of `analysis.curves.curve_records(rows)` when given."""
    from analysis.curves import curve_table
    from analysis.front import front_table
    from analysis.relearn import relearn_table
    from analysis.sequence import sequence_table
    from analysis.transfer import transfer_table

    groups = by_family(records + speed)
    out = [t for fam, layout in layouts.items() if fam in groups
           for t in layout.tables(groups[fam], metrics)]
    # what applies to any family: the relearning attack, trade-off fronts (one per family)
    extra = [relearn_table(records), transfer_table(records), curve_table(curves or []),
             sequence_table(records)] + [
        front_table(part) for part in groups.values()]
    return out + [t for t in extra if t is not None]


def all_tables(rows, metrics=PAPER_METRICS) -> list[Table]:
    """Every table that applies to these rows (ok rows only; failures are not averaged).
    `rows`: a Results or a DataFrame of result rows."""
    def tables(res) -> list[Table]:
        from analysis.curves import curve_records

        records = aggregate(res)
        return tables_from(records, speedup_records(res, records), metrics,
                           curves=curve_records(res))

    return as_results(rows).stable(tables)


def params_text(params) -> str:
    """A params JSON object as compact `k=v` pairs for labels (the raw JSON if unparsable)."""
    try:
        obj = json.loads(params)
    except (TypeError, ValueError):
        return fmt_value(params)
    if not isinstance(obj, dict):
        return fmt_value(params)
    return ", ".join(f"{k}={v}" for k, v in sorted(obj.items())) or "{}"


__all__ = ["LAYOUTS", "Column", "Layout", "Row", "Stat", "Table", "aggregate", "all_tables",
           "by_family", "extractor_label", "failed_trials", "gan_tables", "i2i_tables", "legend",
           "metric_label", "overview", "pivot", "resolve_direction", "speedup_records",
           "tables_from", "trials"]
