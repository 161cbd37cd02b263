"""Reading the Parquet result files (docs/results-schema.md) into one DataFrame.

Every file is read whole with pyarrow before any of its rows are used, so a truncated or
corrupt file is reported (ResultFileWarning) and skipped instead of failing the whole read or,
worse, contributing part of a trial. Files of older schema versions are migrated to the newest
one; files of newer versions are refused, naming the file.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

NEWEST_SCHEMA = 2

# Every column of the newest schema with its type; a file lacking an optional column gets it as
# nulls, so the rest of the analysis never has to ask whether a column exists.
COLUMNS: dict[str, pa.DataType] = {
    "schema_version": pa.int32(), "sweep_id": pa.string(), "trial_id": pa.string(),
    "status": pa.string(), "error": pa.string(),
    "family": pa.string(), "setting": pa.string(),
    "generator": pa.string(), "generator_size": pa.string(), "method": pa.string(),
    "dataset": pa.string(), "forget_set": pa.string(), "forget_k": pa.int64(),
    "retain_set": pa.string(), "retain_mode": pa.string(), "retain_fraction": pa.float64(),
    "proxy_source": pa.string(), "proxy_size": pa.float64(), "alpha": pa.float64(),
    "noise": pa.string(), "params": pa.string(),
    "task": pa.string(), "mask_ratio": pa.float64(), "seed": pa.int64(),
    "pretrain_seed": pa.int64(), "split": pa.string(), "metric": pa.string(),
    "value": pa.float64(), "n": pa.int64(), "higher_is_better": pa.bool_(),
    "pretrain_seconds": pa.float64(), "unlearn_seconds": pa.float64(),
    "eval_seconds": pa.float64(), "peak_memory_mb": pa.float64(),
    "pretrain_cache_hit": pa.bool_(), "artifact_dir": pa.string(), "device": pa.string(),
    "config_hash": pa.string(), "code_version": pa.string(), "mlflow_run_id": pa.string(),
    "created_at": pa.timestamp("us", tz="UTC"),
}
# Without these a row cannot be placed in any table: such a file is malformed.
REQUIRED = ("schema_version", "trial_id", "status", "method", "split", "metric", "value",
            "higher_is_better")


class AnalysisError(Exception):
    """A problem with the results that the user must fix; the message is one line."""


class ResultFileWarning(UserWarning):
    """A result file was skipped (corrupt, half-written, malformed, misplaced)."""


class OldSchemaWarning(ResultFileWarning):
    """Files of an older schema version were read and migrated."""


def sweep_dirs(results_dir) -> dict[str, Path]:
    """`sweep_id -> directory` for every `sweep_id=<id>/` partition under `results_dir`."""
    results = Path(results_dir)
    if not results.is_dir():
        return {}
    return {p.name[len("sweep_id="):]: p for p in sorted(results.iterdir())
            if p.is_dir() and p.name.startswith("sweep_id=")}


def _skip(path: Path, why: str, skipped: list) -> None:
    skipped.append((str(path), why))
    warnings.warn(f"skipped {path}: {why}", ResultFileWarning, stacklevel=3)


def _v1_forget_k(forget_set) -> int | None:
    # v1 forget sets are JSON lists of classes, so the class count is known
    try:
        value = json.loads(forget_set)
    except (TypeError, ValueError):
        return None
    return len(value) if isinstance(value, list) else None


def _read_file(path: Path, sweep_id: str, skipped: list) -> pa.Table | None:
    try:
        # reads every page, not just the footer: a file damaged anywhere fails here
        table = pq.ParquetFile(path).read()
    except (pa.ArrowException, OSError, ValueError) as e:
        _skip(path, f"corrupt or half-written Parquet ({str(e).splitlines()[0][:160]})", skipped)
        return None
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        _skip(path, f"not a result file: no column(s) {', '.join(missing)}", skipped)
        return None
    if table.num_rows == 0:
        _skip(path, "no rows", skipped)
        return None
    versions = set(table.column("schema_version").to_pylist())
    if None in versions or any(not isinstance(v, int) or v < 1 for v in versions):
        _skip(path, f"invalid schema_version {sorted(map(str, versions))}", skipped)
        return None
    if max(versions) > NEWEST_SCHEMA:
        raise AnalysisError(
            f"{path} has schema version {max(versions)}, newer than this analysis reads "
            f"(<= {NEWEST_SCHEMA}); update the analysis code to read it")
    columns = {}
    try:
        for name, typ in COLUMNS.items():
            if name in table.column_names:
                columns[name] = table.column(name).cast(typ)
            else:
                columns[name] = pa.nulls(table.num_rows, typ)
    except (pa.ArrowException, ValueError) as e:
        _skip(path, f"column {name!r} has the wrong type ({str(e).splitlines()[0][:120]})",
              skipped)
        return None
    # the directory names the sweep (a moved file belongs to the sweep it sits in)
    columns["sweep_id"] = pa.array([sweep_id] * table.num_rows, pa.string())
    if versions == {1}:  # migrate: v1 knew only class unlearning of image-to-image generators
        n = table.num_rows
        columns["family"] = pa.array(["i2i"] * n, pa.string())
        columns["setting"] = pa.array(["class"] * n, pa.string())
        columns["forget_k"] = pa.array(
            [_v1_forget_k(f) for f in columns["forget_set"].to_pylist()], pa.int64())
        columns["params"] = pa.array(["{}"] * n, pa.string())
    extra = {c: table.column(c) for c in table.column_names if c not in COLUMNS}
    return pa.table({**columns, **extra})


def _candidates(results: Path, sweep_ids, skipped: list) -> list[tuple[Path, str]]:
    files = []
    wanted = None if sweep_ids is None else set(sweep_ids)
    for path in sorted(results.glob("**/*.parquet")):
        rel = path.relative_to(results)
        if not rel.parts[0].startswith("sweep_id=") or len(rel.parts) < 2:
            if wanted is None:
                _skip(path, "not inside a sweep_id=<id>/ directory", skipped)
            continue
        sweep = rel.parts[0][len("sweep_id="):]
        if wanted is None or sweep in wanted:
            files.append((path, sweep))
    return files


def read_results(results_dir, sweep_ids=None) -> pd.DataFrame:
    """Rows of every readable result file (of the given sweeps), in the newest schema.

    `attrs`: `skipped` [(file, reason)], `files` (files read), `migrated` {version: files}.
    Raises AnalysisError when there are no result files, an unknown sweep id is asked for, a file
    is of a newer schema version, or no file could be read.
    """
    results = Path(results_dir)
    if not any(results.glob("**/*.parquet")):
        raise AnalysisError(f"no Parquet result files under {results}")
    if sweep_ids is not None:
        sweep_ids = [sweep_ids] if isinstance(sweep_ids, str) else list(sweep_ids)
        known = sweep_dirs(results)
        unknown = [s for s in sweep_ids if s not in known]
        if unknown:
            raise AnalysisError(f"unknown sweep id {unknown[0]!r}; known: "
                                f"{', '.join(known) or '(none)'}")
    skipped: list = []
    tables, migrated = [], {}
    for path, sweep in _candidates(results, sweep_ids, skipped):
        table = _read_file(path, sweep, skipped)
        if table is not None:
            tables.append(table)
            for v in set(table.column("schema_version").to_pylist()) - {NEWEST_SCHEMA}:
                migrated[v] = migrated.get(v, 0) + 1
    if not tables:
        raise AnalysisError(f"no readable result rows under {results} "
                            f"({len(skipped)} file(s) skipped)")
    for version, count in sorted(migrated.items()):
        warnings.warn(
            f"{count} result file(s) of schema version {version} read: family='i2i', "
            f"setting='class', forget_k from forget_set and params='{{}}' filled in; columns "
            f"added since (peak_memory_mb, pretrain_cache_hit, artifact_dir) are null",
            OldSchemaWarning, stacklevel=2)
    df = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    df = df.sort_values(["sweep_id", "trial_id", "split", "metric"], kind="stable")
    df = df.reset_index(drop=True)
    df.attrs.update(skipped=skipped, files=len(tables), migrated=migrated)
    return df


def load(results_dir="results", sweep_id=None, **where) -> pd.DataFrame:
    """Result rows across sweeps as a DataFrame, one row per metric value.

    `sweep_id`: one id or a list (default: all sweeps). Every other keyword filters a column:
    a value keeps rows equal to it, a list/tuple/set keeps rows with any of its values, e.g.
    `load("results", family="i2i", status="ok", method=["original", "l2l"])`.
    Corrupt files are skipped with a ResultFileWarning; see `read_results` for `attrs`.
    """
    df = read_results(results_dir, sweep_id)
    attrs = dict(df.attrs)
    for column, wanted in where.items():
        if column not in df.columns:
            raise AnalysisError(f"unknown column {column!r} to filter on; columns: "
                                f"{', '.join(df.columns)}")
        values = list(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
        df = df[df[column].isin(values)]
    df = df.reset_index(drop=True)
    df.attrs.update(attrs)
    return df


def newest_sweep(rows: pd.DataFrame) -> str:
    """The sweep whose newest trial (max created_at) is the newest; ties by id."""
    newest = rows.groupby("sweep_id")["created_at"].max().dropna()
    if newest.empty:
        return str(max(rows["sweep_id"]))
    return str(max(newest.index, key=lambda s: (newest[s], s)))
