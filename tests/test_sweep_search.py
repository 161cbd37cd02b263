"""An Optuna search with ASHA over seeds, on a tiny config: every sampled point runs each seed
(a trial of its own), the objective is averaged over seeds, ASHA stops poor points between
seeds, and a point that fails is retried from its checkpoint (its finished seeds are kept)."""
import os

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from sweeps.cli import main as sweep_main

SEEDS = [0, 1]
SPACE = {"alpha": {"loguniform": [0.05, 5.0]}, "unlearn.lr": {"loguniform": [3e-4, 3e-3]}}


@pytest.fixture(scope="module")
def search(ray_local, tmp_path_factory):
    from conftest import tiny_sweep_spec

    root = tmp_path_factory.mktemp("search")
    spec = tiny_sweep_spec("tiny-search", method="l2l", grid={"seed": SEEDS}, max_failures=1,
                           search={"num_samples": 3, "max_concurrent": 1, "seed": 0,
                                   "metric": {"forget": {"fid": 1.0}, "retain": {"fid": -1.0}},
                                   "space": SPACE,
                                   "asha": {"grace_period": 1, "reduction_factor": 2}})
    (root / "spec.yaml").write_text(yaml.safe_dump(spec))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    # One point at a time, so the order in which points reach ASHA's rung is p000, p001, p002
    # and the test can check ASHA's decisions. p000's second seed fails once: a retry.
    os.environ["L2L_SWEEP_INJECT_FAILURES"] = "p000/seed=1:1"
    try:
        rc = sweep_main(["run", str(root / "spec.yaml"), "--results", str(root / "results"),
                         "--storage", str(root / "ray"), "--mlflow-uri", uri,
                         "--cache-dir", str(root / "cache"), "--sweep-id", "search"])
    finally:
        del os.environ["L2L_SWEEP_INJECT_FAILURES"]
    files = sorted((root / "results" / "sweep_id=search").glob("*.parquet"))
    rows = pd.concat(pd.read_parquet(f).assign(file=f.name) for f in files)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("tiny-search")
    runs = client.search_runs([exp.experiment_id], "tags.sweep_id = 'search'")
    return rc, rows, runs, client


def _objective(rows: pd.DataFrame) -> float:
    fid = rows[rows.metric == "fid"].set_index("split").value
    return float(fid["forget"] - fid["retain"])


def test_points_run_their_seeds_and_rows_are_there_once(search):
    rc, rows, runs, _ = search
    assert rc == 0
    assert set(rows.status) == {"ok"}
    assert rows.groupby("trial_id").file.nunique().eq(1).all()  # one file per trial
    assert (rows.file == rows.trial_id + ".parquet").all()
    rows["point"] = rows.trial_id.str.split("-").str[0]
    assert sorted(rows.point.unique()) == ["p000", "p001", "p002"]
    for point, r in rows.groupby("point"):
        seeds = sorted(r.seed.unique())
        assert seeds == SEEDS[:len(seeds)]  # seeds in order; a stopped point ran the first
        assert r.alpha.nunique() == 1 and r.trial_id.nunique() == len(seeds)
    alphas = rows.groupby("point").alpha.first()
    assert alphas.nunique() == 3 and alphas.between(0.05, 5.0).all()  # three sampled points


def test_asha_stops_poor_points_between_seeds(search):
    """ASHA's rule (ray.tune.schedulers.async_hyperband), replayed from the Parquet rows: with
    reduction factor 2 a point goes on to its second seed when its first-seed objective is at
    least the median of the earlier points' first-seed objectives."""
    _, rows, runs, _ = search
    rows["point"] = rows.trial_id.str.split("-").str[0]
    first = {p: _objective(r[r.seed == 0]) for p, r in rows.groupby("point")}
    recorded, went_on = [], []
    for p in sorted(first):
        goes_on = not recorded or first[p] >= np.nanpercentile(recorded, 50)
        assert rows[rows.point == p].seed.nunique() == (2 if goes_on else 1), (p, first, recorded)
        recorded.append(first[p])
        went_on.append(goes_on)
    assert False in went_on  # the rule was exercised: a point was stopped after one seed
    points = {r.data.tags["point_id"]: r for r in runs if r.data.tags.get("kind") == "point"}
    for p, run in points.items():
        stopped = rows[rows.point == p].seed.nunique() < len(SEEDS)
        assert (run.data.tags.get("stopped_early") == "true") == stopped
        assert run.info.status == "FINISHED"


def test_a_failed_point_is_retried_from_its_checkpoint(search):
    _, rows, runs, _ = search
    trials = {r.data.tags["trial_id"]: r for r in runs if r.data.tags.get("kind") == "trial"}
    p000 = sorted(rows[rows.trial_id.str.startswith("p000-")].groupby("seed").trial_id.first()
                  .items())
    assert [s for s, _ in p000] == SEEDS  # p000 ran (and is not stopped before) both seeds
    (_, seed0), (_, seed1) = p000
    assert trials[seed0].data.tags["attempts"] == "1"  # not run again by the retry
    assert trials[seed1].data.tags["attempts"] == "2"  # failed once, then finished
    assert trials[seed1].info.status == "FINISHED" and "error" not in trials[seed1].data.tags


def test_mlflow_nests_seed_runs_under_point_runs_with_the_mean_objective(search):
    _, rows, runs, client = search
    parent = [r for r in runs if r.data.tags.get("kind") == "sweep"]
    points = {r.info.run_id: r for r in runs if r.data.tags.get("kind") == "point"}
    trials = [r for r in runs if r.data.tags.get("kind") == "trial"]
    assert len(parent) == 1 and parent[0].info.status == "FINISHED"
    assert len(points) == 3
    assert {p.data.tags["mlflow.parentRunId"] for p in points.values()} == {parent[0].info.run_id}
    assert len(trials) == rows.trial_id.nunique()  # one run per trial, retries included
    assert {t.info.status for t in trials} == {"FINISHED"}
    for t in trials:
        point = points[t.data.tags["mlflow.parentRunId"]]
        assert t.data.tags["trial_id"].startswith(point.data.tags["point_id"] + "-")
    for point in points.values():
        pid = point.data.tags["point_id"]
        mine = rows[rows.trial_id.str.startswith(pid + "-")]
        mean = np.mean([_objective(r) for _, r in mine.groupby("seed")])
        assert point.data.metrics["objective"] == pytest.approx(mean)
        assert float(point.data.params["space.alpha"]) == pytest.approx(mine.alpha.iloc[0])
        history = client.get_metric_history(point.info.run_id, "objective")
        assert sorted(m.step for m in history) == list(range(1, mine.seed.nunique() + 1))


def test_every_kind_of_search_space_converts_to_optuna(tmp_path):
    """No trial: the spec's distributions as Optuna sees them (randint includes its high end)."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from sweeps.driver import search_space
    from sweeps.spec import load_spec

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "space", "method": "l2l", "forget_set": {"classes": [5, 7, 9]},
        "grid": {"seed": [0, 1]},
        "search": {"num_samples": 2, "metric": {"forget": {"fid": 1.0}}, "space": {
            "alpha": {"loguniform": [0.01, 10]}, "unlearn.lr": {"uniform": [0.0001, 0.01]},
            "unlearn.steps": {"randint": [10, 50]}, "generator.name": {"choice": ["mae", "vqgan"]},
            "noise": {"choice": ["normal", "uniform"]}}}}))
    dists = dict(OptunaSearch.convert_search_space(search_space(load_spec(spec))))
    assert dists["alpha"] == optuna.distributions.FloatDistribution(0.01, 10, log=True)
    assert dists["unlearn.lr"] == optuna.distributions.FloatDistribution(0.0001, 0.01)
    assert dists["unlearn.steps"] == optuna.distributions.IntDistribution(10, 50)
    assert dists["generator.name"].choices == ("mae", "vqgan")


def test_a_target_metric_enters_the_objective_as_its_distance_to_the_target():
    from conftest import tiny_sweep_spec
    from sweeps.spec import parse_spec
    from sweeps.worker import objective

    spec = parse_spec(tiny_sweep_spec("t", method="l2l", grid={"seed": [0]}, search={
        "num_samples": 2, "metric": {"forget": {"mia_auc": -1.0, "fid": 0.5}},
        "space": {"alpha": {"uniform": [0.1, 1.0]}}}))
    s = spec.search
    assert "|forget_mia_auc - 0.5|" in s.objective_text() and "forget_fid" in s.objective_text()
    inverted = objective({"forget_mia_auc": 0.1, "forget_fid": 10.0}, s)  # fully informative
    near = objective({"forget_mia_auc": 0.45, "forget_fid": 10.0}, s)
    assert near > inverted  # maximised: the AUC near 0.5 is the better forgetting
    assert inverted == pytest.approx(-0.4 + 5.0)
