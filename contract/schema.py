"""Columns and types of the result rows, the schema version and the migration of every older
version, the partition layout, the atomic writer and the checked reader. Depends on pyarrow only.

One Parquet file of tidy rows (one per metric value) per trial:

    <results>/sweep_id=<sweep_id>/<trial_id>.parquet

The results root holds nothing else, and `sweep_id` lives in the directory name only (a hive
partition), so that any Parquet reader opens the root without options: pandas, pyarrow,
DuckDB and Spark add the `sweep_id` column from the path. Trials' artifacts and the analysis'
outputs go beside the root (`beside`: `<results>-artifacts/`, `<results>-tables/`, ...).

The meaning of each column: docs/results-schema.md. Change the columns only with a new
SCHEMA_VERSION and a migration below.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from contract.metrics import direction, uses_features
from contract.storage import Location, locate

SCHEMA_VERSION = 8

# Who fills each group: META the sweep runner; CONFIG the trial's config (l2l/fields.py derives
# them from the config's fields); TRIAL the trial's result; METRIC one per metric value.
META = {
    "schema_version": pa.int32(), "sweep_id": pa.string(), "trial_id": pa.string(),
    "status": pa.string(), "error": pa.string(), "code_version": pa.string(),
    "mlflow_run_id": pa.string(), "created_at": pa.timestamp("us", tz="UTC"),
    "artifact_dir": pa.string(), "model": pa.string(),
}
CONFIG = {
    "family": pa.string(), "setting": pa.string(), "generator": pa.string(),
    "generator_size": pa.string(), "method": pa.string(), "dataset": pa.string(),
    "forget_set": pa.string(), "forget_k": pa.int64(), "retain_set": pa.string(),
    "retain_mode": pa.string(), "retain_fraction": pa.float64(), "proxy_source": pa.string(),
    "proxy_size": pa.float64(), "alpha": pa.float64(), "noise": pa.string(),
    "params": pa.string(), "settings": pa.string(), "task": pa.string(), "mask_ratio": pa.float64(),
    "seed": pa.int64(), "pretrain_seed": pa.int64(), "config_hash": pa.string(),
    "identity_version": pa.int32(),
}
TRIAL = {
    "pretrain_seconds": pa.float64(), "unlearn_seconds": pa.float64(),
    "eval_seconds": pa.float64(), "peak_memory_mb": pa.float64(),
    "pretrain_cache_hit": pa.bool_(), "device": pa.string(),
}
METRIC = {
    "split": pa.string(), "metric": pa.string(), "value": pa.float64(), "n": pa.int64(),
    "value_se": pa.float64(), "direction": pa.string(), "extractor": pa.string(),
    "step": pa.int64(),
}
COLUMNS: dict[str, pa.DataType] = {**META, **CONFIG, **TRIAL, **METRIC}
SCHEMA = pa.schema(list(COLUMNS.items()))
# Without these a row cannot be placed in any table: such a file is malformed.
REQUIRED = ("schema_version", "trial_id", "status", "method", "split", "metric", "value")
# Low-cardinality string key only: DuckDB turns numeric-looking partition values into numbers.
# Not written into the files (since schema version 6): a column that is also the partition key
# makes pandas and pyarrow refuse the root ("Unable to merge: Field sweep_id has incompatible
# types"). Readers of this contract take it from the directory.
PARTITION = "sweep_id"
FILE_SCHEMA = pa.schema([(c, t) for c, t in COLUMNS.items() if c != PARTITION])


class SchemaError(Exception):
    """A file that cannot be read as result rows; the message is one line."""


class NewerSchemaError(SchemaError):
    """A file written by a newer version of this contract."""


# The layout below works on a local `Path` and on a `contract.storage.Location` (object
# storage) alike: both join with `/` and have `parent` and `name`; a string is a local path.
def _root(results_dir: str | Path | Location) -> Path | Location:
    return results_dir if isinstance(results_dir, Location) else Path(results_dir)


def sweep_dir(results_dir: str | Path | Location, sweep_id: str) -> Path | Location:
    return _root(results_dir) / f"{PARTITION}={sweep_id}"


def trial_path(results_dir: str | Path | Location, sweep_id: str, trial_id: str
               ) -> Path | Location:
    return sweep_dir(results_dir, sweep_id) / f"{trial_id}.parquet"


def beside(results_dir: str | Path | Location, what: str) -> Path | Location:
    """A directory next to the results root, never inside it: `results` -> `results-<what>`
    (artifacts, tables, figures, report)."""
    root = _root(results_dir)
    root = root if isinstance(root, Location) else root.resolve()
    return root.parent / f"{root.name}-{what}"


def artifact_dir(results_dir: str | Path | Location, sweep_id: str, trial_id: str
                 ) -> Path | Location:
    """Sample grids and embeddings of a trial, beside the results root."""
    return beside(results_dir, "artifacts") / f"{PARTITION}={sweep_id}" / trial_id


def model_ref(model: Location, results: Location) -> str:
    """The `model` column: where a kept model lies, relative to the results root
    (`../<root>-models/ab/<sha256>.safetensors`) when it is beside it, else its URI."""
    base = results.parent.uri.rstrip("/") + "/"
    return f"../{model.uri[len(base):]}" if model.uri.startswith(base) else model.uri


def artifact_ref(sweep_id: str, trial_id: str, results_name: str) -> str:
    """The `artifact_dir` column: the trial's artifacts relative to the results root
    (`../<root>-artifacts/sweep_id=<id>/<trial>`), so that moving the root and its artifacts
    together, or copying both to object storage, keeps the link."""
    return f"../{results_name}-artifacts/{PARTITION}={sweep_id}/{trial_id}"


def with_direction(row: dict[str, Any]) -> dict[str, Any]:
    """A metric row with its direction from the registry (null for unregistered metrics)."""
    d = direction(row.get("family") or "", row.get("split") or "", row.get("metric") or "")
    return {**row, "direction": d.text if d else None}


def to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows (dicts keyed by column; missing columns are null) as a table of the current schema.
    Unknown keys are refused: a column must be declared here first."""
    unknown = sorted({k for r in rows for k in r} - set(COLUMNS))
    if unknown:
        raise SchemaError(f"unknown result column(s) {', '.join(unknown)}; declare them in "
                          "contract/schema.py with a new schema version")
    rows = [{**{k: v for k, v in with_direction(r).items() if k != PARTITION},
             "schema_version": SCHEMA_VERSION} for r in rows]
    return pa.Table.from_pylist(rows, schema=FILE_SCHEMA)


def write_rows(path: str | Path | Location, rows: list[dict[str, Any]]) -> Path | Location:
    """Writes rows to `path` (local or object storage) atomically: readers see the whole file
    or none of it (contract/storage.py says how)."""
    buf = pa.BufferOutputStream()
    pq.write_table(to_table(rows), buf)
    locate(path).write_bytes(buf.getvalue().to_pybytes())
    return path if isinstance(path, Location) else Path(path)


# ---------------------------------------------------------------------------------- migration

def _v1_forget_k(forget_set) -> int | None:
    # v1 forget sets are JSON lists of classes, so the class count is known
    try:
        value = json.loads(forget_set)
    except (TypeError, ValueError):
        return None
    return len(value) if isinstance(value, list) else None


def _from_v1(cols: dict[str, pa.Array], n: int) -> None:
    """v1 knew only class unlearning of image-to-image generators."""
    cols["family"] = pa.array(["i2i"] * n, pa.string())
    cols["setting"] = pa.array(["class"] * n, pa.string())
    cols["forget_k"] = pa.array([_v1_forget_k(f) for f in cols["forget_set"].to_pylist()],
                                pa.int64())
    cols["params"] = pa.array(["{}"] * n, pa.string())


def _from_v2(cols: dict[str, pa.Array], n: int, hib: pa.Array | None) -> None:
    """v2 had `higher_is_better`; v3 has `direction` from the registry (a metric the registry
    does not know keeps its old boolean as higher/lower) and `identity_version` (ids of v1/v2
    files were made with identity version 1)."""
    fam, split, metric = (cols[c].to_pylist() for c in ("family", "split", "metric"))
    old = hib.to_pylist() if hib is not None else [None] * n
    out = []
    for f, s, m, h in zip(fam, split, metric, old):
        d = direction(f or "", s or "", m or "")
        out.append(d.text if d else {True: "higher", False: "lower"}.get(h))
    cols["direction"] = pa.array(out, pa.string())
    cols["identity_version"] = pa.array([1] * n, pa.int32())


def _from_v3(cols: dict[str, pa.Array], n: int) -> None:
    """v4 names the feature extractor of each metric computed on one (`extractor`). Files of v3
    and older did not record it: their metrics on features get `classifier`, the default of
    `eval.features` and `eval.cosine_features` and the only extractor of `gan` trials (a v3
    sweep that set another extractor is labelled wrongly: its sweep.json says which)."""
    fam, split, metric = (cols[c].to_pylist() for c in ("family", "split", "metric"))
    cols["extractor"] = pa.array(
        ["classifier" if uses_features(f or "", s or "", m or "") else None
         for f, s, m in zip(fam, split, metric)], pa.string())


def _from_v4(cols: dict[str, pa.Array], n: int) -> None:
    """v5 adds `value_se`, the standard error of a value over the images it was computed on,
    and `settings`, the trial's other identity fields as JSON. Older files had neither: null
    `value_se` (their intervals count the seeds' spread only) and settings '{}' (unknown; the
    rows of one older sweep are told apart by the columns they had)."""
    cols["value_se"] = pa.nulls(n, pa.float64())
    cols["settings"] = pa.array(["{}"] * n, pa.string())


MIGRATIONS = {
    1: "family='i2i', setting='class', forget_k from forget_set, params='{}'; then as v2",
    2: "direction from the metric registry (was higher_is_better); identity_version = 1",
    3: "extractor = 'classifier' (the default) for metrics computed on features, else null",
    4: "value_se = null (not estimated), settings = '{}' (not recorded)",
    5: "nothing: v5 files also hold sweep_id, which the directory's name overrides",
    6: "model = null (no unlearned model was kept)",
    7: "step = null (final metrics only: no forgetting curve was measured)",
}


def read_table(path: str | Path | Location, sweep_id: str | None = None) -> pa.Table:
    """One result file, read whole (every page, so damage anywhere is found), checked and
    migrated to the current schema. Columns the file lacks are null; extra columns are kept.
    Raises SchemaError (NewerSchemaError for a newer version) naming what is wrong."""
    try:
        if isinstance(path, Location):
            with path.fs.open_input_file(path.path) as f:
                table = pq.ParquetFile(f).read()
        else:
            table = pq.ParquetFile(path).read()
    except (pa.ArrowException, OSError, ValueError) as e:
        raise SchemaError(f"corrupt or half-written Parquet ({str(e).splitlines()[0][:160]})") \
            from None
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise SchemaError(f"not a result file: no column(s) {', '.join(missing)}")
    if table.num_rows == 0:
        raise SchemaError("no rows")
    versions = set(table.column("schema_version").to_pylist())
    if None in versions or any(not isinstance(v, int) or v < 1 for v in versions):
        raise SchemaError(f"invalid schema_version {sorted(map(str, versions))}")
    if max(versions) > SCHEMA_VERSION:
        raise NewerSchemaError(f"schema version {max(versions)}, newer than this code reads "
                               f"(<= {SCHEMA_VERSION}); update it to read the file")
    n = table.num_rows
    cols: dict[str, pa.Array] = {}
    for name, typ in COLUMNS.items():
        try:
            cols[name] = table.column(name).cast(typ) if name in table.column_names \
                else pa.nulls(n, typ)
        except (pa.ArrowException, ValueError) as e:
            raise SchemaError(f"column {name!r} has the wrong type "
                              f"({str(e).splitlines()[0][:120]})") from None
    if sweep_id is not None:  # the directory names the sweep (a moved file belongs there)
        cols[PARTITION] = pa.array([sweep_id] * n, pa.string())
    version = max(versions)
    if version == 1:
        _from_v1(cols, n)
    if version <= 2:
        hib = table.column("higher_is_better") if "higher_is_better" in table.column_names \
            else None
        _from_v2(cols, n, hib)
    if version <= 3:
        _from_v3(cols, n)
    if version <= 4:
        _from_v4(cols, n)
    extra = {c: table.column(c) for c in table.column_names
             if c not in COLUMNS and c != "higher_is_better"}
    return pa.table({**cols, **extra})

