"""The whole path on a tiny config: spec -> Ray Tune -> Parquet + MLflow -> table, twice."""
import json

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from analysis.cli import main as analysis_main
from sweeps.cli import main as sweep_main


@pytest.fixture(scope="module")
def sweep(ray_local, tmp_path_factory):
    from conftest import tiny_sweep_spec

    root = tmp_path_factory.mktemp("e2e")
    # Small on purpose: this test checks plumbing; test_unlearning_effect checks the science.
    spec = tiny_sweep_spec("tiny-e2e")
    path = root / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    args = ["run", str(path), "--results", str(root / "results"), "--storage",
            str(root / "ray"), "--mlflow-uri", uri, "--cache-dir", str(root / "cache")]
    return root, uri, args


def _run(capsys, args, sweep_id):
    rc = sweep_main([*args, "--sweep-id", sweep_id])
    return rc, capsys.readouterr().out


def _runs(uri, experiment, sweep_id):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id], f"tags.sweep_id = '{sweep_id}'")


def test_sweep_writes_parquet_mlflow_and_table_then_reuses_caches(sweep, capsys, monkeypatch):
    root, uri, args = sweep
    rc, out = _run(capsys, args, "first")
    assert rc == 0, out
    assert "4 of 4 trials finished, 0 failed" in out
    assert "trained in this sweep" in out  # the fresh cache was filled once
    assert "[4/4 trials done, 0 running, 0 failed]" in out  # progress lines

    files = sorted((root / "results" / "sweep_id=first").glob("*.parquet"))
    assert len(files) == 4
    rows = pd.concat(pd.read_parquet(f) for f in files)
    assert set(rows.status) == {"ok"}
    assert set(rows.method) == {"original", "l2l"} and set(rows.seed) == {0, 1}
    per_trial = rows.groupby("trial_id").size()
    assert per_trial.nunique() == 1 and per_trial.iloc[0] >= 8  # every trial, the same metrics
    assert rows.alpha[rows.method == "original"].isna().all()
    assert (rows.n[(rows.split == "forget") & (rows.metric == "fid")] == 90).all()

    # The results root is plain hive-partitioned Parquet: every common reader opens it without
    # options and gets sweep_id from the path (artifacts and tables live beside the root).
    import duckdb
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    res = root / "results"
    assert sorted(p.name for p in res.iterdir()) == ["sweep_id=first"]
    readers = {
        "pandas": lambda: pd.read_parquet(res),
        "pyarrow.dataset": lambda: pads.dataset(res, partitioning="hive").to_table().to_pandas(),
        "pyarrow.parquet": lambda: pq.read_table(res).to_pandas(),
        "duckdb": lambda: duckdb.sql(f"SELECT * FROM read_parquet('{res}/**/*.parquet', "
                                     "hive_partitioning = true)").df(),
    }
    for name, read in readers.items():
        df = read()
        assert len(df) == len(rows), name
        assert set(df["sweep_id"].astype(str)) == {"first"}, name

    # MLflow: one parent run, four finished children pointing at it, with curated params,
    # tags and artifacts (resolved config, the sample grids l2l wrote, the trial's Parquet).
    client, runs = _runs(uri, "tiny-e2e", "first")
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parent) == 1 and len(children) == 4
    assert parent[0].info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent[0].info.run_id}
    assert {c.info.status for c in children} == {"FINISHED"}
    assert set(rows.mlflow_run_id) == {c.info.run_id for c in children}
    child = children[0]
    assert child.data.params["method"] in ("original", "l2l")
    assert "cache_dir" not in child.data.params  # machine paths are not params
    assert "forget_fid" in child.data.metrics and "time_total_s" not in child.data.metrics
    assert not any(k.startswith(("config/", "pid", "training_iteration"))
                   for k in child.data.metrics)  # none of Tune's bookkeeping
    tags = child.data.tags
    assert tags["sweep_id"] == "first" and tags["code_version"] and len(tags["config_hash"]) == 16
    assert tags["trial_id"] in set(rows.trial_id)
    arts = {a.path for a in client.list_artifacts(child.info.run_id)}
    assert "config.json" in arts and f"{tags['trial_id']}.parquet" in arts
    trial_dir = root / "results" / rows.artifact_dir[rows.trial_id == tags["trial_id"]].iloc[0]
    written = {p.name for p in trial_dir.iterdir()}
    assert {"grid_forget.png", "grid_retain.png"} <= written <= arts  # grids (and embeddings)

    # The table of this sweep, printed and written.
    out_md = root / "table.md"
    assert analysis_main(["table", "--results", str(root / "results"), "--out", str(out_md)]) == 0
    printed = capsys.readouterr().out
    assert printed == out_md.read_text()
    lines = {ln.split("|")[1].strip(): ln for ln in printed.splitlines() if ln.startswith("| ")}
    assert {"original", "l2l"} <= set(lines)
    assert "**MAE** (n = 2 replicates)" in printed  # two seeds of each

    # Running the same spec again trains nothing: the cache entries are read, not rewritten.
    # One trial fails on its first attempt (injected) and is retried (--max-failures 1): its
    # rows are there once, with status ok, and it has one finished MLflow run, reopened.
    metas = {p: p.stat().st_mtime_ns for p in (root / "cache").glob("*/*/meta.json")}
    kinds = [p.parent.parent.name for p in metas]
    assert kinds.count("generator") == 1  # one original model for the four trials
    flaky = sorted(rows.trial_id.unique())[0]
    monkeypatch.setenv("L2L_SWEEP_INJECT_FAILURES", f"{flaky}:1")
    rc, out = _run(capsys, [*args, "--max-failures", "1"], "second")
    assert rc == 0, out
    assert f"{flaky} failed, retrying (retry 1 of 1)" in out
    assert "reused from the cache, nothing retrained" in out and "trained in this sweep" not in out
    assert metas == {p: p.stat().st_mtime_ns for p in (root / "cache").glob("*/*/meta.json")}
    again = pd.concat(pd.read_parquet(f) for f in (root / "results" / "sweep_id=second").glob("*.parquet"))
    assert sorted(again.trial_id.unique()) == sorted(rows.trial_id.unique())  # stable trial ids
    assert set(again.status) == {"ok"} and len(again) == len(rows)
    assert json.loads(again.forget_set.iloc[0]) == [5, 7, 9]
    _, runs = _runs(uri, "tiny-e2e", "second")
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 4 and {c.info.status for c in children} == {"FINISHED"}
    retried = [c for c in children if c.data.tags["trial_id"] == flaky]
    assert len(retried) == 1 and retried[0].data.tags["attempts"] == "2"
    assert "error" not in retried[0].data.tags


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(sweep, capsys, tmp_path):
    from conftest import tiny_sweep_spec

    root, uri, args = sweep
    # A cache whose entry directories are files passes validation (a writable directory)
    # and fails inside every trial. Two trials (a failed trial's Ray worker is not reused:
    # each one starts a new process).
    bad_cache = tmp_path / "broken-cache"
    bad_cache.mkdir()
    for kind in ("classifier", "generator", "features"):
        (bad_cache / kind).write_text("")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_sweep_spec("tiny-e2e", grid={"method": ["original"],
                                                                       "seed": [0, 1]})))
    bad = [str(spec) if a.endswith("spec.yaml") else a for a in args]
    bad = [a if a != str(root / "cache") else str(bad_cache) for a in bad]
    rc, out = _run(capsys, bad, "broken")
    assert rc == 1 and "0 of 2 trials finished, 2 failed" in out
    assert out.count("FAILED for good") == 2
    files = (root / "results" / "sweep_id=broken").glob("*.parquet")
    rows = pd.concat(pd.read_parquet(f) for f in files)
    assert set(rows.status) == {"error"} and rows.error.str.len().gt(0).all()
    assert len(rows) == 2  # one error row per trial
    _, runs = _runs(uri, "tiny-e2e", "broken")
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 2 and {c.info.status for c in children} == {"FAILED"}
    assert all(c.data.tags["error"] for c in children)
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent[0].info.status == "FAILED"
