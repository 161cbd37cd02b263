"""The result contract: one Parquet file of tidy metric rows per trial, written atomically.

Columns and their meaning: docs/results-schema.md. Change them only with a new SCHEMA_VERSION.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 2
# Version 2 added: family, setting, forget_k, params, peak_memory_mb, pretrain_cache_hit,
# artifact_dir (docs/results-schema.md, "Migration").
SCHEMA = pa.schema([
    ("schema_version", pa.int32()), ("sweep_id", pa.string()), ("trial_id", pa.string()),
    ("status", pa.string()), ("error", pa.string()),
    ("generator", pa.string()), ("generator_size", pa.string()), ("method", pa.string()),
    ("dataset", pa.string()), ("forget_set", pa.string()), ("retain_set", pa.string()),
    ("retain_mode", pa.string()), ("retain_fraction", pa.float64()),
    ("proxy_source", pa.string()), ("proxy_size", pa.float64()), ("alpha", pa.float64()),
    ("noise", pa.string()),
    ("task", pa.string()), ("mask_ratio", pa.float64()), ("seed", pa.int64()),
    ("pretrain_seed", pa.int64()), ("split", pa.string()), ("metric", pa.string()),
    ("value", pa.float64()), ("n", pa.int64()), ("higher_is_better", pa.bool_()),
    ("pretrain_seconds", pa.float64()), ("unlearn_seconds", pa.float64()),
    ("eval_seconds", pa.float64()), ("device", pa.string()), ("config_hash", pa.string()),
    ("code_version", pa.string()), ("mlflow_run_id", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
    ("family", pa.string()), ("setting", pa.string()), ("forget_k", pa.int64()),
    ("params", pa.string()), ("peak_memory_mb", pa.float64()), ("pretrain_cache_hit", pa.bool_()),
    ("artifact_dir", pa.string()),
])


def trial_path(results_dir: str | Path, sweep_id: str, trial_id: str) -> Path:
    return Path(results_dir) / f"sweep_id={sweep_id}" / f"{trial_id}.parquet"


def artifact_dir(results_dir: str | Path, sweep_id: str, trial_id: str) -> Path:
    """Sample grids and embeddings of a trial; no Parquet inside, so result globs skip it."""
    return Path(results_dir) / "artifacts" / f"sweep_id={sweep_id}" / trial_id


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Writes rows to `path` atomically: a temporary name that no `*.parquet` glob matches,
    then a rename, so readers see the whole file or none of it."""
    rows = [{**r, "schema_version": SCHEMA_VERSION} for r in rows]
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
