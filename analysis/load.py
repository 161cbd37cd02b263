"""Reading the Parquet result files through the results contract (contract/schema.py).

`open_results(dir)` finds the result files, checks each one and gives a `Results`: a DuckDB
connection with a view `rows` over every readable row in the current schema (SCHEMA_VERSION),
which the tables, figures and reports query with SQL. `load()` and `read_results()` give the same
rows as a pandas DataFrame.

A file is used in one of two ways:

- **scanned**: its footer shows a result file of the current schema (the required columns, the
  contract's type for every contract column it has, rows, and statistics saying every row is of
  schema version SCHEMA_VERSION). DuckDB reads it directly, and only the columns a query needs.
- **read whole** by `contract.schema.read_table`: every other file (older schema versions, which
  it migrates; other column types, which it casts; a footer that cannot be read). What it
  refuses is skipped with a ResultFileWarning naming the file and the reason.

A file damaged after its footer was checked (a bad page) makes DuckDB fail; then every scanned
file is read whole by the contract, the damaged ones are skipped with a ResultFileWarning, and the
query runs again without them (`Results.stable` recomputes a result made of several queries
when that happened midway). So no row of a damaged file is used, at the cost of a full read only
when damage is found; damage in a column that no query reads goes unnoticed, and changes
nothing that is shown. Files of a newer schema version are refused (AnalysisError naming the
file).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from contract.schema import (COLUMNS, MIGRATIONS, PARTITION, REQUIRED, SCHEMA, SCHEMA_VERSION,
                             NewerSchemaError, SchemaError, read_table)

# Columns the view `rows` adds for a stable row order (file, then row within it); not data.
ORDER_COLUMNS = ("_file", "_row")
_TEMPLATE = pa.schema([*SCHEMA, pa.field("_file", pa.int64()), pa.field("_row", pa.int64())])


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
    prefix = f"{PARTITION}="
    return {p.name[len(prefix):]: p for p in sorted(results.iterdir())
            if p.is_dir() and p.name.startswith(prefix)}


def migration_text(version: int) -> str:
    """What reading a file of an older schema version fills in, from the contract."""
    return "; ".join(f"v{v}: {MIGRATIONS[v]}" for v in range(version, SCHEMA_VERSION)
                     if v in MIGRATIONS)


def sql_text(value: str) -> str:
    """A string as an SQL literal."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_name(name: str) -> str:
    """A column name as an SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


@dataclass
class ResultFile:
    path: Path
    sweep_id: str
    order: int                        # position among every file found (the row order)
    columns: tuple[str, ...] = ()     # scanned by DuckDB: the file's columns
    table: pa.Table | None = None     # read whole by the contract (and migrated)


_DATABASE: list = []  # one in-memory DuckDB per process; each Results has a connection of its own


def _connection() -> duckdb.DuckDBPyConnection:
    """A new connection (its own temporary views and registered tables, times in UTC) to the
    process's in-memory DuckDB, which is made once: making one costs 20 ms, a connection none."""
    if not _DATABASE:
        _DATABASE.append(duckdb.connect())
    con = _DATABASE[0].cursor()
    con.execute("SET TimeZone = 'UTC'")
    return con


# Versions DuckDB scans as they are: 5 differs from 6 only by its sweep_id column, which the
# scan takes from the directory either way, and 6 from 7 by the `model` column, which the view
# fills with nulls for files without it. Older files are read whole and migrated.
SCANNABLE_FROM = 5


def _scannable(path: Path) -> tuple[str, ...] | None:
    """The file's columns when its footer shows a current-schema result file that DuckDB can
    scan as is; None when the contract must read it whole (or refuse it)."""
    try:
        meta = pq.read_metadata(path)
        schema = meta.schema.to_arrow_schema()
    except (pa.ArrowException, OSError, ValueError):
        return None
    names = tuple(schema.names)
    if meta.num_rows == 0 or len(set(names)) != len(names) \
            or any(c not in names for c in REQUIRED):
        return None
    if any(schema.field(c).type != COLUMNS[c] for c in names if c in COLUMNS):
        return None
    column = names.index("schema_version")
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(column).statistics
        if stats is None or not stats.has_min_max or not stats.has_null_count \
                or stats.null_count != 0 or stats.min < SCANNABLE_FROM \
                or stats.max > SCHEMA_VERSION:
            return None
    return names


def _warn(message: str, category=ResultFileWarning) -> None:
    warnings.warn(message, category, stacklevel=4)


def _check(file: ResultFile, skipped: list, migrated: dict, old_columns: dict) -> bool:
    """Sorts one file into scanned or read whole; False (with a warning) if it is skipped."""
    scannable = _scannable(file.path)
    if scannable is not None:
        file.columns = scannable
        return True
    try:
        table = read_table(file.path, file.sweep_id)
    except NewerSchemaError as e:
        raise AnalysisError(f"{file.path}: {e}") from None
    except SchemaError as e:
        skipped.append((str(file.path), str(e)))
        _warn(f"skipped {file.path}: {e}")
        return False
    n = table.num_rows
    file.table = table.append_column("_file", pa.array([file.order] * n, pa.int64())) \
        .append_column("_row", pa.array(range(n), pa.int64()))
    versions = set(table.column("schema_version").to_pylist()) - {SCHEMA_VERSION}
    if versions:
        try:  # the columns the old file lacked, for the warning
            present = set(pq.read_schema(file.path).names)
        except (pa.ArrowException, OSError, ValueError):
            present = set(COLUMNS)
    for v in versions:
        migrated[v] = migrated.get(v, 0) + 1
        old_columns.setdefault(v, set()).update(
            c for c in COLUMNS if c not in present and table.column(c).null_count == n)
    return True


def _candidates(results: Path, sweep_ids, skipped: list) -> list[ResultFile]:
    files = []
    wanted = None if sweep_ids is None else set(sweep_ids)
    prefix = f"{PARTITION}="
    for i, path in enumerate(sorted(results.glob("**/*.parquet"))):
        rel = path.relative_to(results)
        if not rel.parts[0].startswith(prefix) or len(rel.parts) < 2:
            if wanted is None:
                why = f"not inside a {prefix}<id>/ directory"
                skipped.append((str(path), why))
                _warn(f"skipped {path}: {why}")
            continue
        sweep = rel.parts[0][len(prefix):]
        if wanted is None or sweep in wanted:
            files.append(ResultFile(path, sweep, i))
    return files


class Results:
    """Readable result rows, queried with DuckDB: the view `rows` holds every contract column
    (`sweep_id` from the file's directory), the files' extra columns, and `_file`, `_row` (row
    order). `attrs`: `skipped` [(file, reason)], `files` (files read), `migrated`
    {version: files}."""

    def __init__(self, root: Path, files: list[ResultFile], skipped: list, migrated: dict,
                 frame: pa.Table | None = None):
        self.root = root
        self.files = files
        self.skipped = skipped
        self.migrated = migrated
        self._frame = frame
        self.generation = 0  # counts the times damaged files were found and dropped
        self.con = _connection()
        self._define()

    @classmethod
    def from_frame(cls, frame: pd.DataFrame | pa.Table) -> Results:
        """Rows already in memory (e.g. a DataFrame from `load()`, filtered) as a Results."""
        table = frame
        if isinstance(frame, pd.DataFrame):  # DuckDB reads pandas' time zones as they are
            con = _connection()
            con.register("_frame", frame.reset_index(drop=True))
            table = con.sql("SELECT * FROM _frame").to_arrow_table()
        for name, typ in COLUMNS.items():  # pandas turns e.g. int columns with gaps to float
            if name in table.column_names and table.schema.field(name).type != typ:
                try:
                    i = table.column_names.index(name)
                    table = table.set_column(i, name, table.column(name).cast(typ))
                except (pa.ArrowException, ValueError):
                    pass
        attrs = frame.attrs if isinstance(frame, pd.DataFrame) else {}
        return cls(Path("."), [], list(attrs.get("skipped", [])),
                   dict(attrs.get("migrated", {})), frame=table)

    # ------------------------------------------------------------------ the view

    def _define(self) -> None:
        """The views over every readable row: `all_rows`; `rows`, the trials' final metrics
        (null `step`), which every table reads; `curve_rows`, the forgetting curves' values."""
        try:
            self._create_view()
        except duckdb.Error:
            if not self._drop_damaged():
                raise
            self._create_view()

    def _create_view(self) -> None:
        con = self.con
        con.register("_template", _TEMPLATE.empty_table())
        parts = ["SELECT * FROM _template"]
        scanned = [f for f in self.files if f.table is None]
        if scanned:
            names = list(dict.fromkeys(c for f in scanned for c in f.columns))
            same = all(f.columns == scanned[0].columns for f in scanned)
            paths = ", ".join(sql_text(f.path) for f in scanned)
            sweeps = ", ".join(sql_text(f.sweep_id) for f in scanned)
            orders = ", ".join(str(f.order) for f in scanned)
            keep = [sql_name(c) for c in names if c not in (PARTITION, *ORDER_COLUMNS)]
            scan = (f"SELECT {', '.join(keep)}, [{sweeps}][file_index::BIGINT + 1] AS "
                    f"{PARTITION}, [{orders}][file_index::BIGINT + 1] AS _file, "
                    f"file_row_number AS _row FROM read_parquet([{paths}], "
                    f"union_by_name = {str(not same).lower()})")
            parts.append(scan)
        whole = [f.table for f in self.files if f.table is not None]
        if self._frame is not None:
            whole.append(self._frame)
        if whole:
            con.register("_read_whole", pa.concat_tables(whole, promote_options="permissive"))
            parts.append("SELECT * FROM _read_whole")
        con.execute("CREATE OR REPLACE TEMP VIEW all_rows AS "
                    + " UNION ALL BY NAME ".join(parts))
        # A trial's final metrics (what every table is made of), and its forgetting curve
        con.execute("CREATE OR REPLACE TEMP VIEW rows AS SELECT * FROM all_rows "
                    "WHERE step IS NULL")
        con.execute("CREATE OR REPLACE TEMP VIEW curve_rows AS SELECT * FROM all_rows "
                    "WHERE step IS NOT NULL")

    def _drop_damaged(self) -> bool:
        """Reads every scanned file whole; drops (with a warning) those the contract refuses.
        True if any was dropped."""
        bad = []
        for f in self.files:
            if f.table is not None:
                continue
            try:
                read_table(f.path, f.sweep_id)
            except SchemaError as e:  # a newer version now: refused like any other damage
                self.skipped.append((str(f.path), str(e)))
                _warn(f"skipped {f.path}: {e}")
                bad.append(f)
        if not bad:
            return False
        self.files = [f for f in self.files if f not in bad]
        self.generation += 1
        if not self.files and self._frame is None:
            raise AnalysisError(f"no readable result rows under {self.root} "
                                f"({len(self.skipped)} file(s) skipped)")
        return True

    # ------------------------------------------------------------------ queries

    def _run(self, run):
        try:
            return run()
        except duckdb.Error:
            if not self._drop_damaged():
                raise
            self._define()
            return run()

    def stable(self, compute):
        """`compute(self)`, computed again if a damaged file was found (and dropped) on the
        way: then no part of the result holds rows of a file that another part left out. One
        rerun suffices, as finding one damaged file reads every scanned file whole."""
        before = self.generation
        out = compute(self)
        return compute(self) if self.generation != before else out

    def sql(self, query: str, params: dict | None = None) -> list[tuple]:
        """Rows of an SQL query over the view `rows`, as tuples of Python values. A file found
        damaged on the way is skipped (ResultFileWarning) and the query run again."""
        return self._run(lambda: self.con.execute(query, params or {}).fetchall())

    def arrow(self, query: str) -> pa.Table:
        return self._run(lambda: self.con.sql(query).to_arrow_table())

    @property
    def attrs(self) -> dict:
        return {"skipped": list(self.skipped), "files": len(self.files),
                "migrated": dict(self.migrated)}

    @property
    def sweep_ids(self) -> list[str]:
        if self._frame is not None:
            return [s for (s,) in self.sql(
                "SELECT DISTINCT sweep_id FROM rows WHERE sweep_id IS NOT NULL ORDER BY 1")]
        return sorted({f.sweep_id for f in self.files})

    def only(self, sweep_ids) -> Results:
        """The rows of some sweeps (their files only: the others are not read again)."""
        wanted = set(sweep_ids)
        if self._frame is not None:
            frame = self.con.sql("SELECT * EXCLUDE (_file, _row) FROM all_rows WHERE sweep_id IN "
                                 f"({', '.join(map(sql_text, wanted)) or 'NULL'})")
            return Results(self.root, [], self.skipped, self.migrated,
                           frame=frame.to_arrow_table())
        files = [f for f in self.files if f.sweep_id in wanted]
        if len(files) == len(self.files):  # all of them: the view already holds just these
            return self
        return Results(self.root, files, self.skipped, self.migrated)

    def newest_sweep(self) -> str:
        """The sweep whose newest trial (max created_at) is the newest; ties by id."""
        ids = self.sweep_ids
        if len(ids) == 1:
            return ids[0]
        newest = self.sql("SELECT sweep_id, max(epoch_us(created_at)) AS t FROM rows "
                          "GROUP BY sweep_id HAVING t IS NOT NULL")
        if not newest:
            return max(ids)
        return max(newest, key=lambda r: (r[1], r[0]))[0]

    def frame(self) -> pd.DataFrame:
        """Every row as a DataFrame, in the contract's types, by sweep, trial, split, metric
        (and step: a forgetting curve's rows have one, the final metrics a null `step`)."""
        table = self.arrow("SELECT * EXCLUDE (_file, _row) FROM all_rows ORDER BY sweep_id, "
                           "trial_id, split, metric, step NULLS FIRST, _file, _row")
        for name, typ in COLUMNS.items():
            if table.schema.field(name).type != typ:
                table = table.set_column(table.column_names.index(name), name,
                                         table.column(name).cast(typ))
        df = table.to_pandas()
        df.attrs.update(self.attrs)
        return df


def timestamp(epoch_us) -> str | None:
    """Microseconds since the epoch (as DuckDB's epoch_us gives them) as ISO 8601, UTC."""
    if epoch_us is None:
        return None
    seconds, micro = divmod(int(epoch_us), 10**6)
    return datetime.fromtimestamp(seconds, tz=timezone.utc).replace(microsecond=micro) \
        .isoformat()


def open_results(results_dir, sweep_ids=None) -> Results:
    """The readable result files (of the given sweeps) under `results_dir`, checked.

    Raises AnalysisError when there are no result files, an unknown sweep id is asked for, a file
    is of a newer schema version, or no file could be read. Skipped files and migrated versions
    are warned about (ResultFileWarning, OldSchemaWarning) and kept in `attrs`.
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
    migrated: dict = {}
    old_columns: dict = {}
    files = [f for f in _candidates(results, sweep_ids, skipped)
             if _check(f, skipped, migrated, old_columns)]
    if not files:
        raise AnalysisError(f"no readable result rows under {results} "
                            f"({len(skipped)} file(s) skipped)")
    for version, count in sorted(migrated.items()):
        empty = sorted(old_columns.get(version, ()))
        _warn(f"{count} result file(s) of schema version {version} read and migrated to "
              f"{SCHEMA_VERSION}: {migration_text(version)}"
              + (f"; left empty: {', '.join(empty)}" if empty else ""), OldSchemaWarning)
    return Results(results, files, skipped, migrated)


def as_results(rows) -> Results:
    """A Results as is; a DataFrame (e.g. from `load()`) in a DuckDB connection of its own."""
    return rows if isinstance(rows, Results) else Results.from_frame(rows)


def read_results(results_dir, sweep_ids=None) -> pd.DataFrame:
    """Rows of every readable result file (of the given sweeps), in the current schema, as a
    DataFrame sorted by sweep, trial, split and metric.

    `attrs`: `skipped` [(file, reason)], `files` (files read), `migrated` {version: files}.
    Raises AnalysisError as `open_results` does.
    """
    return open_results(results_dir, sweep_ids).frame()


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


def newest_sweep(rows) -> str:
    """The sweep whose newest trial (max created_at) is the newest; ties by id. `rows`: a
    Results or a DataFrame of rows."""
    return as_results(rows).newest_sweep()


__all__ = ["AnalysisError", "OldSchemaWarning", "ResultFileWarning", "Results", "as_results",
           "load", "migration_text", "newest_sweep", "open_results", "read_results",
           "sweep_dirs", "timestamp"]
