"""MLflow and Parquet bookkeeping of the sweep driver, without Ray trials: one run per trial
however often it is attempted (also across driver sessions), a finished trial's file and run
written from its report, rewritten (not added) when the trial runs again after a driver crash,
and a trial whose worker died still ends with an error row and a FAILED run."""
import pickle

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sweeps import tracking


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request, tmp_path_factory):
    """One store for the module and backend: the default sqlite file, and a real PostgreSQL
    server (what a team's tracking server runs on; conftest's `postgres`). Creating an MLflow
    database costs seconds."""
    root = tmp_path_factory.mktemp("mlflow")
    if request.param == "sqlite":
        return f"sqlite:///{root / 'mlflow.db'}", root
    return request.getfixturevalue("postgres")("mlflow_tracking"), root


@pytest.fixture
def store(db, request):
    """A sweep of its own (experiment named after the test) in the module's store."""
    uri, root = db
    exp_id, parent = tracking.start_sweep(uri, request.node.name[:60], "s1",
                                          {"code_version": "abc"}, root / "mlartifacts",
                                          {"name": "unit"})
    return uri, exp_id, parent


def test_a_retried_trial_reopens_its_run_instead_of_adding_one(store):
    uri, exp_id, parent = store
    t = tracking.Tracker(uri, exp_id, "s1").load()
    first = t.open("trial", "t000-abc", parent, {"config_hash": "h"})
    t.fail("trial", "t000-abc", "RuntimeError: boom")
    again = t.open("trial", "t000-abc", parent, {"config_hash": "h"})
    assert again == first
    client = MlflowClient(uri)
    run = client.get_run(again)
    assert run.info.status == "RUNNING" and run.data.tags["attempts"] == "2"
    assert "error" not in run.data.tags  # the earlier attempt's error is gone
    # a point run with the same id is another run (kinds are part of the key)
    point = t.open("point", "t000-abc", parent, {})
    assert point != first
    t.log(again, {"alpha": "0.25"}, {"forget_fid": 1.0, "bad": float("nan")})
    t.finish("trial", "t000-abc", {"alpha": "0.25"}, {})  # the same param again: allowed
    run = client.get_run(again)
    assert run.info.status == "FINISHED" and set(run.data.metrics) == {"forget_fid"}
    # A later driver session (a resume) finds the run with one query and reopens it.
    resumed = tracking.Tracker(uri, exp_id, "s1").load()
    assert resumed.open("trial", "t000-abc", parent, {}) == first
    assert client.get_run(first).data.tags["attempts"] == "3"
    assert len(client.search_runs([exp_id], "tags.trial_id = 't000-abc'")) == 1


def test_metrics_carry_the_time_they_were_logged(store):
    import time

    uri, exp_id, parent = store
    t = tracking.Tracker(uri, exp_id, "s1")
    run_id = t.open("trial", "t-time", parent, {})
    before = time.time() * 1000
    t.log(run_id, metrics={"forget_fid": 3.0})
    (m,) = MlflowClient(uri).get_metric_history(run_id, "forget_fid")
    assert before - 5000 <= m.timestamp <= time.time() * 1000 + 5000  # not 1970


def test_an_interrupted_sweep_marks_its_running_runs_killed(store):
    uri, exp_id, parent = store
    t = tracking.Tracker(uri, exp_id, "s1")
    ids = [t.open("trial", f"t{i}", parent, {}) for i in range(2)]
    t.finish("trial", "t0")
    assert tracking.end_running(uri, exp_id, "s1", "KILLED") == 1
    client = MlflowClient(uri)
    assert [client.get_run(i).info.status for i in ids] == ["FINISHED", "KILLED"]
    assert client.get_run(parent).info.status == "RUNNING"  # the driver ends its own run


def test_curated_params_leave_out_machine_paths():
    params = tracking.curated_params({"method": "l2l", "unlearn": {"lr": 0.001},
                                      "forget_set": {"classes": [5, 7]},
                                      "cache_dir": "/home/x/.cache", "data_root": "/data"})
    assert params == {"method": "l2l", "unlearn.lr": "0.001", "forget_set.classes": "[5, 7]"}


class _Trial:
    """What Tune hands a callback, as far as the Recorder looks."""

    def __init__(self, name, config, last_result=None, error="RayActorError: the worker died",
                 checkpoint=None):
        self.custom_trial_name, self.config = name, config
        self.last_result, self._error, self.checkpoint = last_result or {}, error, checkpoint

    def get_error(self):
        return RuntimeError(self._error)


@pytest.fixture
def grid(store, tmp_path):
    from conftest import tiny_sweep_spec
    from contract.identity import IDENTITY_VERSION
    from sweeps.callbacks import Destination, Recorder
    from sweeps.spec import parse_spec

    uri, exp_id, parent = store
    spec = parse_spec(tiny_sweep_spec("unit", grid={"method": ["original"]}))
    dest = Destination("s1", str(tmp_path / "results"), "abc", IDENTITY_VERSION, uri, exp_id,
                       parent)
    rec = pickle.loads(pickle.dumps(Recorder(dest)))  # as Tune saves and restores it
    rec.setup()
    return rec, spec.trials[0], uri, tmp_path / "results"


def test_a_trial_whose_worker_died_still_gets_an_error_row_and_a_failed_run(grid):
    from contract.schema import trial_path

    from sweeps.worker import grid_entry

    rec, t, uri, results = grid
    trial = _Trial(t.trial_id, {"trial": grid_entry(t)})
    rec.on_trial_error(0, [trial], trial)

    rows = pd.read_parquet(trial_path(results, "s1", t.trial_id))
    assert list(rows.status) == ["error"] and "the worker died" in rows.error[0]
    assert rows.method[0] == "original" and rows.config_hash[0] == t.config.config_hash
    run = MlflowClient(uri).get_run(rows.mlflow_run_id[0])
    assert run.info.status == "FAILED" and "the worker died" in run.data.tags["error"]
    assert run.data.tags["trial_id"] == t.trial_id


def _unit(t, value=1.0):
    from sweeps.worker import Unit

    rows = [{**t.config.columns(), "split": s, "metric": "fid", "value": value, "n": 10,
             "unlearn_seconds": 0.5} for s in ("forget", "retain")]
    return Unit(t.trial_id, t.config, rows, {"forget_fid": value, "retain_fid": value}, (),
                "node-1")


def test_a_finished_trial_is_written_once_also_when_it_runs_again(grid):
    """The driver writes what the worker reported; a trial that runs again (a retry, or a
    resume after the driver died before Tune saved the trial as finished) replaces its file
    and reopens its run."""
    from contract.schema import trial_path
    from sweeps.worker import UNIT, grid_entry

    rec, t, uri, results = grid
    trial = _Trial(t.trial_id, {"trial": grid_entry(t)})
    for value in (1.0, 2.0):
        result = {UNIT: _unit(t, value), "node_id": "node-1"}
        rec.on_trial_result(0, [trial], trial, result)
        assert UNIT not in result and result["mlflow_run_id"]  # rows stay out of Tune's files
    files = list((results / "sweep_id=s1").glob("*.parquet"))
    assert files == [trial_path(results, "s1", t.trial_id)]
    rows = pd.read_parquet(files[0])
    assert list(rows.value) == [2.0, 2.0] and set(rows.status) == {"ok"}
    assert dict(zip(rows.split, rows.direction)) == {"forget": "higher", "retain": "lower"}
    assert (rows.artifact_dir.str.len() > 0).all()
    assert "sweep_id" not in rows  # the partition's directory says it, not the file
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_run(rows.mlflow_run_id[0]).info.experiment_id],
                              f"tags.trial_id = '{t.trial_id}'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["attempts"] == "2" and runs[0].data.tags["ray_node_id"] == "node-1"
    assert runs[0].data.metrics["forget_fid"] == 2.0 and runs[0].data.params["method"]
    arts = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    assert {"config.json", f"{t.trial_id}.parquet"} <= arts


def test_a_sweep_saved_before_the_split_resumes_with_its_dicts_and_old_ids(store, tmp_path):
    """An experiment saved by the earlier layout: its pickled `sweeps.runner.Finalizer` comes
    back as a Recorder, its trial configs are dicts, and its ids are identity version 1."""
    import sys

    from conftest import tiny_sweep_spec
    from contract.schema import trial_path
    from sweeps import legacy
    from sweeps.callbacks import Recorder
    from sweeps.spec import parse_spec

    uri, exp_id, parent = store
    spec = parse_spec(tiny_sweep_spec("unit", grid={"method": ["original"]}), identity_version=1)
    t = spec.trials[0]
    assert t.trial_id.endswith(t.config.identity_hash(1)[:8])
    ctx = {"sweep_id": "s1", "results_dir": str(tmp_path / "results"), "mlflow_uri": uri,
           "code_version": "abc", "experiment_id": exp_id, "parent_run_id": parent}
    old = legacy.Finalizer.__new__(legacy.Finalizer)
    old.__dict__.update({"ctx": ctx, "search": None})  # what the old callback pickled
    blob = pickle.dumps(old).replace(b"sweeps.legacy", b"sweeps.runner")
    sys.modules.setdefault("sweeps.runner", legacy)
    rec = pickle.loads(blob)
    assert isinstance(rec, Recorder) and rec.dest.identity_version == 1
    rec.setup()
    trial = _Trial(t.trial_id, {"trial": {"trial_id": t.trial_id, "config": t.config.to_dict()},
                                "ctx": ctx})
    rec.on_trial_error(0, [trial], trial)
    rows = pd.read_parquet(trial_path(tmp_path / "results", "s1", t.trial_id))
    assert rows.config_hash[0] == t.config.identity_hash(1) and rows.identity_version[0] == 1


def test_a_trial_that_cannot_be_written_stops_the_sweep_before_tune_records_it(tmp_path):
    """A finished trial whose file cannot be written raises out of the callback (Tune has not
    recorded the trial as done yet, so a resume runs it again); the driver stops the sweep as
    interrupted (sweeps/driver.py)."""
    from conftest import tiny_sweep_spec
    from sweeps.callbacks import Destination, Recorder, RecordError
    from sweeps.spec import parse_spec
    from sweeps.worker import UNIT, grid_entry

    (tmp_path / "results").write_text("a file where the results directory should be")
    t = parse_spec(tiny_sweep_spec("unit", grid={"method": ["original"]})).trials[0]
    rec = Recorder(Destination("s1", str(tmp_path / "results"), "abc", 2))  # no MLflow
    rec.setup()
    trial = _Trial(t.trial_id, {"trial": grid_entry(t)})
    with pytest.raises(RecordError, match=f"could not record trial {t.trial_id}"):
        rec.on_trial_result(0, [trial], trial, {UNIT: _unit(t)})


def test_a_forgetting_curve_becomes_mlflow_step_metrics_at_the_images_seen(grid):
    """A trial's curve (eval.every) lands in MLflow as `curve.<split>_<metric>` histories whose
    steps are the images seen, ending at the final value; the Parquet file holds its rows."""
    from dataclasses import replace

    from contract.schema import trial_path
    from sweeps.worker import UNIT, grid_entry

    rec, t, uri, results = grid
    curve = ((0, {"forget_fid": 5.0, "all_samples_seen": 0.0}),
             (640, {"forget_fid": 7.0, "all_samples_seen": 640.0}),
             (1280, {"forget_fid": 9.0, "all_samples_seen": 1280.0}))
    unit = _unit(t, 9.0)
    step_rows = [{**unit.rows[0], "value": v["forget_fid"], "step": s // 128}
                 for s, v in curve[:2]]
    unit = replace(unit, rows=unit.rows + step_rows, curve=curve)
    trial = _Trial(t.trial_id, {"trial": grid_entry(t)})
    rec.on_trial_result(0, [trial], trial, {UNIT: unit, "node_id": "node-1"})
    rows = pd.read_parquet(trial_path(results, "s1", t.trial_id))
    assert sorted(rows.step.dropna().astype(int)) == [0, 5] and rows.step.isna().sum() == 2
    history = MlflowClient(uri).get_metric_history(rows.mlflow_run_id[0], "curve.forget_fid")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == \
        [(0, 5.0), (640, 7.0), (1280, 9.0)]
