"""Benchmark 4: a paper table from the result store: DuckDB, l2l-analysis and MLflow.

The same synthetic trials (schema-v2 rows: 10 metrics x 2 splits per trial) are written once
as Parquet files (one per trial, as sweeps do) and once as MLflow runs (one run per trial, the
metrics as `<split>_<metric>`). The table is the Table-1 aggregate: mean and std over seeds of
every (generator, method, split, metric). Besides a hand-written DuckDB query, the project's
own path is timed on the same files: what `l2l-analysis tables` does (analysis.load's
read_results with pyarrow, every file read whole and checked, then analysis.pivot.all_tables
rendered as Markdown, LaTeX and CSV).

    python benchmarks/analyst_queries.py                    # 1,000,000 rows; MLflow 2,000 runs
    python benchmarks/analyst_queries.py --rows 200000 --mlflow-runs 500

Logging runs into MLflow is the slow part (about 50 runs a second here), so MLflow gets fewer
trials; DuckDB is timed on both sizes so the two stores are also compared on the same runs.
"""
from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

GENERATORS = ("mae", "vqgan", "diffusion")
METHODS = ("original", "retrain", "max_loss", "noisy_label", "retain_label", "random_encoder",
           "l2l")
METRICS = ("fid", "kid", "is", "cosine", "psnr", "ssim", "mse_masked", "mia_auc",
           "retrain_distance", "forget_class_share")
SPLITS = ("forget", "retain")
ROWS_PER_TRIAL = len(METRICS) * len(SPLITS)
HIGHER_IS_BETTER = ("is", "cosine", "psnr", "ssim")  # on retain; the other way on forget

TABLE_SQL = """
    WITH per_seed AS (
        SELECT generator, method, split, metric, seed, avg(value) AS value
        FROM read_parquet($glob, hive_partitioning = true) WHERE status = 'ok' GROUP BY ALL)
    SELECT generator, method, split, metric, avg(value) AS mean, stddev_samp(value) AS std,
           count(*) AS n
    FROM per_seed GROUP BY ALL ORDER BY ALL"""


def trials(n_trials: int):
    """(generator, method, seed) of each synthetic trial; seeds grow until n_trials are made."""
    combos = itertools.cycle(itertools.product(GENERATORS, METHODS))
    return [(g, m, i // (len(GENERATORS) * len(METHODS)))
            for i, (g, m) in zip(range(n_trials), combos)]


def write_parquet(root: Path, specs, trials_per_file: int) -> None:
    """Files of `trials_per_file` trials each: one file per trial as sweeps write them would make a
    million rows 50,000 files, so big sets are batched (DuckDB's cost is per row and per file)."""
    rng = np.random.default_rng(0)
    now = dt.datetime.now(dt.timezone.utc)
    for f, start in enumerate(range(0, len(specs), trials_per_file)):
        chunk = specs[start:start + trials_per_file]
        n = len(chunk) * ROWS_PER_TRIAL
        cols = {
            "schema_version": pa.array([2] * n, pa.int32()),
            "trial_id": [f"t{start + i:06d}" for i in range(len(chunk)) for _ in range(ROWS_PER_TRIAL)],
            "status": ["ok"] * n,
            "generator": [g for g, _, _ in chunk for _ in range(ROWS_PER_TRIAL)],
            "method": [m for _, m, _ in chunk for _ in range(ROWS_PER_TRIAL)],
            "seed": pa.array([s for _, _, s in chunk for _ in range(ROWS_PER_TRIAL)], pa.int64()),
            "split": [s for _ in chunk for s in SPLITS for _m in METRICS],
            "metric": [m for _ in chunk for _s in SPLITS for m in METRICS],
            "value": rng.normal(size=n),
            # what else l2l-analysis needs to place a row (DuckDB's query ignores them)
            "higher_is_better": [(m in HIGHER_IS_BETTER) == (s == "retain")
                                 for _ in chunk for s in SPLITS for m in METRICS],
            "family": ["i2i"] * n, "dataset": ["fashion_mnist"] * n,
            "task": ["center_inpaint"] * n, "mask_ratio": [0.5] * n,
            "created_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
        }
        d = root / "sweep_id=bench"
        d.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(cols), d / f"part{f:05d}.parquet")


def duckdb_table(root: Path) -> tuple[float, int]:
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    df = con.execute(TABLE_SQL, {"glob": str(root / "**" / "*.parquet")}).df()
    return time.perf_counter() - t0, len(df)


def analysis_tables(root: Path) -> tuple[float, float, int, int]:
    """What `l2l-analysis tables` does before writing: (seconds reading the rows with
    analysis.load.read_results, seconds building every table and rendering each as md, tex
    and csv, tables, cells)."""
    from analysis.load import newest_sweep, read_results
    from analysis.pivot import all_tables
    from analysis.render import FORMATS

    t0 = time.perf_counter()
    rows = read_results(root)
    rows = rows[rows["sweep_id"] == newest_sweep(rows)]
    t1 = time.perf_counter()
    tables = all_tables(rows)
    rendered = [render(t) for t in tables for render in FORMATS.values()]
    t2 = time.perf_counter()
    assert all(rendered)
    return t1 - t0, t2 - t1, len(tables), sum(len(t.cells) for t in tables)


def report_analysis(what: str, root: Path) -> float:
    read_s, table_s, n_tables, cells = analysis_tables(root)
    print(f"l2l-analysis (pyarrow + pandas), {what}: {n_tables} tables ({cells} cells, md/tex/"
          f"csv) in {read_s + table_s:.2f} s: reading {read_s:.2f} s, tables {table_s:.2f} s")
    return read_s + table_s


def log_mlflow(uri: str, specs) -> float:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.create_experiment("bench")
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for i, (g, m, s) in enumerate(specs):
        run = client.create_run(exp, run_name=f"t{i:06d}")
        client.log_batch(
            run.info.run_id,
            params=[Param("generator", g), Param("method", m), Param("seed", str(s))],
            metrics=[Metric(f"{sp}_{me}", float(v), 0, 0)
                     for (sp, me), v in zip(itertools.product(SPLITS, METRICS),
                                            rng.normal(size=ROWS_PER_TRIAL))])
        client.set_terminated(run.info.run_id)
    return time.perf_counter() - t0


def mlflow_table(uri: str) -> tuple[float, int]:
    import mlflow

    t0 = time.perf_counter()
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["bench"], max_results=100_000)
    long = runs.melt(id_vars=["params.generator", "params.method", "params.seed"],
                     value_vars=[c for c in runs.columns if c.startswith("metrics.")],
                     var_name="metric", value_name="value")
    per_seed = long.groupby(["params.generator", "params.method", "metric", "params.seed"],
                            as_index=False)["value"].mean()
    table = per_seed.groupby(["params.generator", "params.method", "metric"])["value"] \
        .agg(["mean", "std", "count"])
    return time.perf_counter() - t0, len(table)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="rows for the DuckDB run")
    p.add_argument("--mlflow-runs", type=int, default=2000,
                   help="trials logged to MLflow (and read by DuckDB for a like-for-like ratio)")
    p.add_argument("--trials-per-file", type=int, default=500,
                   help="trials per Parquet file in the big set (default: %(default)s)")
    args = p.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big = trials(args.rows // ROWS_PER_TRIAL)
        t0 = time.perf_counter()
        write_parquet(tmp / "big", big, args.trials_per_file)
        print(f"wrote {len(big) * ROWS_PER_TRIAL:,} rows ({len(big):,} trials) as Parquet in "
              f"{time.perf_counter() - t0:.1f} s")
        secs, cells = duckdb_table(tmp / "big")
        print(f"DuckDB, {len(big) * ROWS_PER_TRIAL:,} rows: paper table ({cells} cells) in "
              f"{secs:.2f} s")
        report_analysis(f"{len(big) * ROWS_PER_TRIAL:,} rows", tmp / "big")

        small = trials(args.mlflow_runs)
        write_parquet(tmp / "small", small, 1)  # one file per trial, as a sweep writes them
        duck_s, cells = duckdb_table(tmp / "small")
        print(f"DuckDB, {len(small):,} trial files ({len(small) * ROWS_PER_TRIAL:,} rows): "
              f"{duck_s:.2f} s")
        report_analysis(f"{len(small):,} trial files ({len(small) * ROWS_PER_TRIAL:,} rows)",
                        tmp / "small")
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        log_s = log_mlflow(uri, small)
        print(f"MLflow: logged {len(small):,} runs in {log_s:.1f} s "
              f"({len(small) / log_s:.0f} runs/s)")
        ml_s, ml_cells = mlflow_table(uri)
        print(f"MLflow search_runs + pandas, {len(small):,} runs: paper table ({ml_cells} cells) "
              f"in {ml_s:.2f} s; DuckDB is {ml_s / duck_s:.1f}x faster on the same trials")


if __name__ == "__main__":
    main()
