"""Benchmark 4: a paper table from the result store: DuckDB SQL, `l2l-analysis table` and MLflow.

The same synthetic trials (rows of the current result schema, contract/schema.py: 10 metrics x
2 splits per trial, every contract column present, `direction` from the metric registry) are
written once as Parquet files and once as MLflow runs (one run per trial, the metrics as
`<split>_<metric>`). Three ways to the Table-1 aggregate (mean and std over seeds of every
generator x method x split x metric) are timed on the same files, in one run, best of
`--repeat`:

- DuckDB SQL: one hand-written query over the files (a fresh connection each time);
- `l2l-analysis table`: the command in-process (`analysis.cli.main`, imports done beforehand):
  find and check the files, pick the newest sweep, aggregate by SQL, render the page (every
  metric per generator, failed trials, counts) and write it; its ratio to DuckDB SQL is printed;
- MLflow: `search_runs` + pandas on the runs.

    python benchmarks/analyst_queries.py                    # 1,000,000 rows; MLflow 2,000 runs
    python benchmarks/analyst_queries.py --rows 200000 --mlflow-runs 500
    python benchmarks/analyst_queries.py --mlflow-runs 0    # no MLflow (nor its small set)

Logging runs into MLflow is the slow part (about 50 runs a second here), so MLflow gets fewer
trials; DuckDB and l2l-analysis are also timed on those (one file per trial, as sweeps write
them) so the three stores are compared on the same runs.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contract.identity import IDENTITY_VERSION  # noqa: E402
from contract.metrics import direction  # noqa: E402
from contract.schema import COLUMNS, SCHEMA, SCHEMA_VERSION, sweep_dir  # noqa: E402

GENERATORS = ("mae", "vqgan", "diffusion")
METHODS = ("original", "retrain", "max_loss", "noisy_label", "retain_label", "random_encoder",
           "l2l")
METRICS = ("fid", "kid", "is", "cosine", "psnr", "ssim", "mse_masked", "mia_auc",
           "retrain_distance", "forget_class_share")
SPLITS = ("forget", "retain")
ROWS_PER_TRIAL = len(METRICS) * len(SPLITS)
SWEEP = "bench"

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
    """Files of `trials_per_file` trials each, every contract column (nulls where a trial would
    leave them empty): one file per trial as sweeps write them would make a million rows 50,000
    files, so big sets are batched (DuckDB's cost is per row and per file)."""
    rng = np.random.default_rng(0)
    now = dt.datetime.now(dt.timezone.utc)
    per_trial = [(s, m) for s in SPLITS for m in METRICS]
    directions = [direction("i2i", s, m).text for s, m in per_trial]
    for f, start in enumerate(range(0, len(specs), trials_per_file)):
        chunk = specs[start:start + trials_per_file]
        n = len(chunk) * ROWS_PER_TRIAL

        def each(values):  # one value per trial, repeated on its rows
            return [v for v in values for _ in range(ROWS_PER_TRIAL)]

        values = {
            "schema_version": [SCHEMA_VERSION] * n, "sweep_id": [SWEEP] * n,
            "trial_id": each(f"t{start + i:06d}" for i in range(len(chunk))),
            "status": ["ok"] * n, "family": ["i2i"] * n, "setting": ["class"] * n,
            "generator": each(g for g, _, _ in chunk), "generator_size": ["tiny"] * n,
            "method": each(m for _, m, _ in chunk), "dataset": ["fashion_mnist"] * n,
            "forget_set": ["[5, 7, 9]"] * n, "forget_k": [3] * n, "retain_set": ["[0, 1]"] * n,
            "retain_mode": ["full"] * n, "retain_fraction": [1.0] * n, "params": ["{}"] * n,
            "task": ["center_inpaint"] * n, "mask_ratio": [0.5] * n,
            "seed": each(s for _, _, s in chunk), "pretrain_seed": [0] * n,
            "identity_version": [IDENTITY_VERSION] * n,
            "split": [s for _ in chunk for s, _ in per_trial],
            "metric": [m for _ in chunk for _, m in per_trial],
            "value": rng.normal(size=n), "n": [64] * n,
            "value_se": np.abs(rng.normal(0.1, 0.02, size=n)),  # schema v5: every value has one
            "direction": directions * len(chunk), "created_at": [now] * n,
        }
        table = pa.table({c: pa.array(values[c], t) if c in values else pa.nulls(n, t)
                          for c, t in COLUMNS.items()}, schema=SCHEMA)
        d = sweep_dir(root, SWEEP)
        d.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, d / f"part{f:05d}.parquet")


def duckdb_table(root: Path) -> tuple[float, int]:
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    df = con.execute(TABLE_SQL, {"glob": str(root / "**" / "*.parquet")}).df()
    return time.perf_counter() - t0, len(df)


def analysis_table(root: Path, out: Path) -> float:
    """`l2l-analysis table --results ROOT --out OUT`, in-process, its output swallowed."""
    from analysis.cli import main

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["table", "--results", str(root), "--out", str(out)])
    secs = time.perf_counter() - t0
    assert code == 0 and out.stat().st_size > 0
    return secs


def compare(what: str, root: Path, repeat: int) -> tuple[float, float]:
    """DuckDB SQL and `l2l-analysis table` on the same files, interleaved, best of `repeat`."""
    from analysis.load import open_results
    from analysis.table import headline

    duck, ours = [], []
    for _ in range(repeat):
        secs, cells = duckdb_table(root)
        duck.append(secs)
        ours.append(analysis_table(root, root.parent / f"{root.name}.md"))
    page_cells = sum(len(t.cells) for t in headline(open_results(root)))
    best_duck, best_ours = min(duck), min(ours)
    print(f"{what}:\n"
          f"  DuckDB SQL           paper table ({cells} cells): best {best_duck:.3f} s, "
          f"median {statistics.median(duck):.3f} s of {repeat}\n"
          f"  l2l-analysis table   headline ({page_cells} cells): best {best_ours:.3f} s, "
          f"median {statistics.median(ours):.3f} s of {repeat}\n"
          f"  l2l-analysis table / DuckDB SQL: {best_ours / best_duck:.2f}x (best), "
          f"{statistics.median(ours) / statistics.median(duck):.2f}x (median)")
    return best_duck, best_ours


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
    p.add_argument("--rows", type=int, default=1_000_000, help="rows of the big set")
    p.add_argument("--mlflow-runs", type=int, default=2000,
                   help="trials logged to MLflow (and written one file per trial for DuckDB "
                        "and l2l-analysis); 0: no MLflow")
    p.add_argument("--trials-per-file", type=int, default=500,
                   help="trials per Parquet file in the big set (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=3,
                   help="timings of DuckDB and l2l-analysis per set (default: %(default)s)")
    args = p.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    import analysis.cli  # noqa: F401  (imports are not what is timed)
    import duckdb  # noqa: F401

    print(f"machine: {os.cpu_count()} CPUs, load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big = trials(args.rows // ROWS_PER_TRIAL)
        t0 = time.perf_counter()
        write_parquet(tmp / "big", big, args.trials_per_file)
        print(f"wrote {len(big) * ROWS_PER_TRIAL:,} rows ({len(big):,} trials) as "
              f"{-(-len(big) // args.trials_per_file)} Parquet files in "
              f"{time.perf_counter() - t0:.1f} s")
        compare(f"{len(big) * ROWS_PER_TRIAL:,} rows", tmp / "big", args.repeat)
        if args.mlflow_runs <= 0:
            return

        small = trials(args.mlflow_runs)
        write_parquet(tmp / "small", small, 1)  # one file per trial, as a sweep writes them
        duck_s, _ = compare(f"{len(small):,} trial files ({len(small) * ROWS_PER_TRIAL:,} rows)",
                            tmp / "small", args.repeat)
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        log_s = log_mlflow(uri, small)
        print(f"MLflow: logged {len(small):,} runs in {log_s:.1f} s "
              f"({len(small) / log_s:.0f} runs/s)")
        ml_s, ml_cells = mlflow_table(uri)
        print(f"MLflow search_runs + pandas, {len(small):,} runs: paper table ({ml_cells} cells) "
              f"in {ml_s:.2f} s; DuckDB SQL is {ml_s / duck_s:.1f}x faster on the same trials")


if __name__ == "__main__":
    main()
