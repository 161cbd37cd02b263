"""Paper-style result tables from the tidy Parquet rows (docs/results-schema.md).

Reads only the Parquet files, through DuckDB: no torch/ray/l2l/sweeps import, so results can be
analysed without the training stack.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import duckdb
import pandas as pd


class AnalysisError(Exception):
    """A problem with the results that the user must fix; the message is one line."""


METHOD_ORDER = ("original", "retrain", "max_loss", "noisy_label", "retain_label", "random_encoder", "l2l")
SPLIT_ORDER = ("retain", "forget")
METRIC_ORDER = ("fid", "is", "cosine")
METRIC_NAMES = {"fid": "FID", "is": "IS", "cosine": "CLIP-cos", "mse_masked": "MSE(mask)"}
METRIC_DECIMALS = {"fid": 2, "is": 3, "cosine": 4, "mse_masked": 4}
DEFAULT_DECIMALS = 4
MISSING = "–"
LEGEND = "↑ higher is better, ↓ lower is better; mean ± std over seeds, n = seeds"
# Config columns that get their own rows (label suffix `[name=value]`) when they vary within a
# method, so that different settings are never averaged together as if they were seeds.
VARIANTS = {
    "retain": "retain",  # one label for retain_mode, retain_fraction, proxy_source, proxy_size
    "noise": "noise",
    "generator_size": "size",
    "mask_ratio": "mask",
    "forget_set": "forget",
}

# The hive key wins over the `sweep_id` stored in the files (DuckDB replaces the file column by
# the partition value); autocast off keeps numeric-looking ids such as `2024` strings.
_SOURCE = ("read_parquet($glob, hive_partitioning = true, union_by_name = true, "
           "hive_types_autocast = false)")


def _query(results_dir, sql: str, **params) -> pd.DataFrame:
    results = Path(results_dir)
    if not any(results.glob("**/*.parquet")):
        raise AnalysisError(f"no Parquet result files under {results}")
    try:
        with warnings.catch_warnings():
            # duckdb 2.0 itself calls DataFrame.drop(inplace=True) when converting TIMESTAMPTZ
            warnings.filterwarnings("ignore", "The inplace keyword in DataFrame.drop")
            return duckdb.connect().execute(
                sql.format(src=_SOURCE), {"glob": str(results / "**" / "*.parquet"), **params}
            ).df()
    except duckdb.Error as e:  # e.g. a stray .parquet outside sweep_id=<id>/
        raise AnalysisError(f"cannot read {results}: {str(e).splitlines()[0]}") from e


def load_rows(results_dir, sweep_id: str | None = None) -> pd.DataFrame:
    """All result rows under `results_dir`, or those of one sweep (AnalysisError if unknown)."""
    if sweep_id is not None:
        known = _query(results_dir, "SELECT DISTINCT sweep_id FROM {src} ORDER BY 1")["sweep_id"]
        if sweep_id not in set(known):
            raise AnalysisError(
                f"unknown sweep id {sweep_id!r}; known: {', '.join(known) or '(none)'}")
    return _query(
        results_dir,
        "SELECT * FROM {src} WHERE $sweep IS NULL OR sweep_id = $sweep "
        "ORDER BY sweep_id, trial_id, split, metric",
        sweep=sweep_id,
    )


def latest_sweep_id(results_dir) -> str:
    """The sweep whose newest trial (max created_at) is the newest."""
    df = _query(results_dir, "SELECT sweep_id FROM {src} GROUP BY sweep_id "
                             "ORDER BY max(created_at) DESC NULLS LAST, sweep_id DESC LIMIT 1")
    return str(df["sweep_id"].iloc[0])


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "none"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _retain_label(r) -> str | None:
    """`full`, `fraction 0.1`, `proxy digits x1`, `none`: what the retain term could use."""
    mode = r.retain_mode
    if mode == "fraction":
        return f"fraction {_fmt(r.retain_fraction)}"
    if mode == "proxy":
        source = "" if r.proxy_source is None or pd.isna(r.proxy_source) else f" {r.proxy_source}"
        size = "" if r.proxy_size is None or pd.isna(r.proxy_size) else f" x{_fmt(r.proxy_size)}"
        return f"proxy{source}{size}"
    return mode


def _cell(mean: float, std: float, k: int, metric: str) -> str:
    d = METRIC_DECIMALS.get(metric, DEFAULT_DECIMALS)
    if k < 2 or pd.isna(std):
        return f"{mean:.{d}f} (n={k})"
    return f"{mean:.{d}f} ± {std:.{d}f} (n={k})"


def _rank(value, order) -> tuple:
    # known names first in the given order, then the rest alphabetically
    return (order.index(value), "") if value in order else (len(order), str(value))


def paper_table(df: pd.DataFrame) -> pd.DataFrame:
    """Wide table: columns `generator`, `method` (row label), then one column per split x metric.

    Cells are `mean ± std (n=K)` over seeds (`–` when missing); only `status == 'ok'` rows are
    used, and the ids of failed trials are in `.attrs["failed_trials"]`.
    """
    df = df.copy()
    for col in ("generator", "alpha", "seed", "error", "retain_mode", "retain_fraction",
                "proxy_source", "proxy_size", *VARIANTS):
        if col not in df:  # older/partial files may lack optional columns
            df[col] = None
    df["retain"] = [_retain_label(r) for r in df.itertuples(index=False)]
    keys = ", ".join(["generator", "method", "alpha", *VARIANTS])
    con = duckdb.connect()
    con.register("rows", df)
    # average per seed first, so that n counts seeds even if a seed occurs in several sweeps
    agg = con.execute(f"""
        WITH per_seed AS (
            SELECT {keys}, split, metric, seed, avg(value) AS value,
                   bool_or(higher_is_better) AS hib
            FROM rows WHERE status = 'ok' GROUP BY ALL)
        SELECT {keys}, split, metric, avg(value) AS mean, stddev_samp(value) AS std,
               count(*) AS k, bool_or(hib) AS hib
        FROM per_seed GROUP BY ALL""").df()
    failed = [r[0] for r in con.execute(
        "SELECT DISTINCT trial_id FROM rows WHERE status IS DISTINCT FROM 'ok' ORDER BY 1"
    ).fetchall()]
    table = _pivot(agg)
    table.attrs["failed_trials"] = failed
    return table


def _pivot(agg: pd.DataFrame) -> pd.DataFrame:
    if agg.empty:
        return pd.DataFrame(columns=["generator", "method"])
    # a label part is shown only for columns that vary within the method
    varies = {c: agg.groupby("method")[c].nunique(dropna=False) > 1 for c in ["alpha", *VARIANTS]}

    def label(r) -> str:
        s = r.method + (f" (alpha={_fmt(r.alpha)})" if varies["alpha"][r.method] else "")
        return s + "".join(f" [{n}={_fmt(getattr(r, c))}]"
                           for c, n in VARIANTS.items() if varies[c][r.method])

    def row_key(r) -> tuple:
        alpha = -math.inf if pd.isna(r.alpha) else r.alpha
        return (_rank(r.method, METHOD_ORDER), alpha, *(_fmt(getattr(r, c)) for c in VARIANTS))

    def header(r) -> str:
        arrow = "↑" if r.hib else "↓"
        return f"{r.split} {METRIC_NAMES.get(r.metric, r.metric)} {arrow}"

    rows = list(agg.itertuples(index=False))
    agg = agg.assign(
        label=[label(r) for r in rows],
        header=[header(r) for r in rows],
        cell=[_cell(r.mean, r.std, r.k, r.metric) for r in rows],
        row_key=[row_key(r) for r in rows],
        col_key=[(_rank(r.split, SPLIT_ORDER), _rank(r.metric, METRIC_ORDER)) for r in rows],
    )
    labels = list(dict.fromkeys(agg.sort_values("row_key", kind="stable")["label"]))
    headers = list(dict.fromkeys(agg.sort_values("col_key", kind="stable")["header"]))
    gens = sorted(agg["generator"].dropna().unique())
    wide = agg.pivot(index=["generator", "label"], columns="header", values="cell")
    wide = wide.reindex(pd.MultiIndex.from_product([gens, labels]), columns=headers)
    wide = wide.dropna(how="all").fillna(MISSING)  # drop labels absent from a generator
    wide.index.names = ["generator", "method"]
    wide.columns.name = None
    return wide.reset_index()


def _md_table(table: pd.DataFrame) -> list[str]:
    cells = [list(table.columns), *table.astype(str).values.tolist()]
    lines = ["| " + " | ".join(c.replace("|", r"\|") for c in row) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("---" for _ in table.columns) + "|")
    return lines


def to_markdown(rows: pd.DataFrame) -> str:
    """Markdown for result rows (as from load_rows): the paper table, one section per
    generator when there are several, a note on failed trials and a footer."""
    table = paper_table(rows)
    lines: list[str] = []
    gens = list(dict.fromkeys(table["generator"]))
    for gen in gens:
        part = table[table["generator"] == gen].drop(columns="generator")
        part = part.loc[:, (part != MISSING).any()]  # metric columns this generator lacks
        if len(gens) > 1:
            lines += [f"### {gen}", ""]
        lines += _md_table(part) + [""]
    if not gens:
        lines += ["(no successful trials)", ""]
    failed = table.attrs["failed_trials"]
    if failed:
        lines += [f"Note: {len(failed)} failed trial(s) excluded: {', '.join(failed)}.", ""]
    sweeps = sorted(rows["sweep_id"].dropna().unique())
    trials = rows[["sweep_id", "trial_id"]].drop_duplicates().shape[0]
    lines.append(f"Sweep {', '.join(sweeps)}; {trials} trials; {len(rows)} rows. {LEGEND}")
    return "\n".join(lines) + "\n"
