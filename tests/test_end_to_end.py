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
    from conftest import TINY

    root = tmp_path_factory.mktemp("e2e")
    spec = {k: v for k, v in TINY.items()}
    # Small on purpose: this test checks plumbing; test_unlearning_effect checks the science.
    spec.update(name="tiny-e2e", pretrain={**TINY["pretrain"], "images": 500, "epochs": 2},
                classifier={"images": 2000, "epochs": 1},
                unlearn={**TINY["unlearn"], "steps": 10}, eval={"images_per_class": 30},
                grid={"method": ["original", "l2l"], "alpha": [0.25], "seed": [0, 1]},
                resources={"cpu": 1})
    path = root / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    args = ["run", str(path), "--results", str(root / "results"), "--storage",
            str(root / "ray"), "--mlflow-uri", uri, "--cache-dir", str(root / "cache")]
    return root, uri, args


def _run(capsys, args, sweep_id):
    rc = sweep_main([*args, "--sweep-id", sweep_id])
    return rc, capsys.readouterr().out


def test_sweep_writes_parquet_mlflow_and_table_then_reuses_caches(sweep, capsys):
    root, uri, args = sweep
    rc, out = _run(capsys, args, "first")
    assert rc == 0, out
    assert "4 of 4 trials finished, 0 failed" in out
    assert "trained in this sweep" in out  # the fresh cache was filled once

    files = sorted((root / "results" / "sweep_id=first").glob("*.parquet"))
    assert len(files) == 4
    rows = pd.concat(pd.read_parquet(f) for f in files)
    assert len(rows) == 4 * 8 and set(rows.status) == {"ok"}
    assert set(rows.method) == {"original", "l2l"} and set(rows.seed) == {0, 1}
    assert rows.groupby("trial_id").size().eq(8).all()
    assert rows.alpha[rows.method == "original"].isna().all()
    assert (rows.n[rows.split == "forget"] == 90).all()

    # MLflow: one parent run, four finished children pointing at it, with curated params.
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("tiny-e2e")
    runs = client.search_runs([exp.experiment_id])
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parent) == 1 and len(children) == 4
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent[0].info.run_id}
    assert {c.info.status for c in children} == {"FINISHED"}
    assert set(rows.mlflow_run_id) == {c.info.run_id for c in children}
    child = children[0]
    assert child.data.params["method"] in ("original", "l2l")
    assert "forget_fid" in child.data.metrics and "time_total_s" not in child.data.metrics
    arts = {a.path for a in client.list_artifacts(child.info.run_id)}
    assert "config.json" in arts and any(p.endswith(".parquet") for p in arts)

    # The table of this sweep, printed and written.
    out_md = root / "table.md"
    assert analysis_main(["table", "--results", str(root / "results"), "--out", str(out_md)]) == 0
    printed = capsys.readouterr().out
    assert printed == out_md.read_text()
    lines = {ln.split("|")[1].strip(): ln for ln in printed.splitlines() if ln.startswith("| ")}
    assert "(n=2)" in lines["original"] and "(n=2)" in lines["l2l"]

    # Running the same spec again trains nothing: the cache entries are read, not rewritten.
    metas = {p: p.stat().st_mtime_ns for p in (root / "cache").glob("*/*/meta.json")}
    assert len(metas) == 2  # one original model, one classifier
    rc, out = _run(capsys, args, "second")
    assert rc == 0
    assert "reused from the cache, nothing retrained" in out and "trained in this sweep" not in out
    assert metas == {p: p.stat().st_mtime_ns for p in (root / "cache").glob("*/*/meta.json")}
    again = pd.concat(pd.read_parquet(f) for f in (root / "results" / "sweep_id=second").glob("*.parquet"))
    assert sorted(again.trial_id.unique()) == sorted(rows.trial_id.unique())  # stable trial ids
    assert json.loads(again.forget_set.iloc[0]) == [5, 7, 9]


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(sweep, capsys, tmp_path):
    root, uri, args = sweep
    # A cache "directory" that is a file passes validation and fails inside every trial.
    bad_cache = tmp_path / "not-a-dir"
    bad_cache.write_text("")
    bad = [a if a != str(root / "cache") else str(bad_cache) for a in args]
    rc, out = _run(capsys, bad, "broken")
    assert rc == 1 and "0 of 4 trials finished, 4 failed" in out
    rows = pd.concat(pd.read_parquet(f) for f in (root / "results" / "sweep_id=broken").glob("*.parquet"))
    assert set(rows.status) == {"error"} and rows.error.str.len().gt(0).all()
