"""MLflow bookkeeping without Ray trials: one run per trial however often it is attempted,
and a trial whose worker died still ends with an error row and a FAILED run."""
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sweeps import tracking


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """One store for the module: creating an MLflow database costs seconds."""
    root = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{root / 'mlflow.db'}", root


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
    key = {"sweep_id": "s1", "kind": "trial", "trial_id": "t000-abc"}
    first = tracking.ensure_run(uri, exp_id, parent, "t000-abc", key, {"config_hash": "h"})
    tracking.set_tags(uri, first, {"error": "RuntimeError: boom"})
    tracking.end_run(uri, first, ok=False)
    again = tracking.ensure_run(uri, exp_id, parent, "t000-abc", key, {"config_hash": "h"})
    assert again == first
    run = MlflowClient(uri).get_run(again)
    assert run.info.status == "RUNNING" and run.data.tags["attempts"] == "2"
    assert "error" not in run.data.tags  # the earlier attempt's error is gone
    # a point run with the same id is another run (kinds are part of the key)
    point = tracking.ensure_run(uri, exp_id, parent, "p000", {"sweep_id": "s1", "kind": "point",
                                                              "point_id": "t000-abc"}, {})
    assert point != first
    tracking.log_params_metrics(uri, again, {"alpha": "0.25"}, {"forget_fid": 1.0,
                                                                "bad": float("nan")})
    tracking.log_params_metrics(uri, again, {"alpha": "0.25"}, {})  # same value: allowed
    tracking.end_run(uri, again, ok=True)
    run = MlflowClient(uri).get_run(again)
    assert run.info.status == "FINISHED" and set(run.data.metrics) == {"forget_fid"}


def test_an_interrupted_sweep_marks_its_running_runs_killed(store):
    uri, exp_id, parent = store
    ids = [tracking.ensure_run(uri, exp_id, parent, f"t{i}",
                               {"sweep_id": "s1", "kind": "trial", "trial_id": f"t{i}"}, {})
           for i in range(2)]
    tracking.end_run(uri, ids[0], ok=True)
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
    """What Tune hands a callback, as far as the Finalizer looks."""

    def __init__(self, config, last_result=None, error="RayActorError: the worker died"):
        self.config, self.last_result, self._error = config, last_result or {}, error
        self.custom_trial_name = None

    def get_error(self):
        return RuntimeError(self._error)


def test_a_trial_whose_worker_died_still_gets_an_error_row_and_a_failed_run(store, tmp_path):
    from conftest import tiny_sweep_spec
    from sweeps.results import trial_path
    from sweeps.runner import Finalizer
    from sweeps.spec import parse_spec

    uri, exp_id, parent = store
    spec = parse_spec(tiny_sweep_spec("unit", grid={"method": ["original"]}))
    t = spec.trials[0]
    ctx = {"sweep_id": "s1", "results_dir": str(tmp_path / "results"), "mlflow_uri": uri,
           "code_version": "abc", "experiment_id": exp_id, "parent_run_id": parent}
    run_id = tracking.ensure_run(uri, exp_id, parent, t.trial_id,
                                 {"sweep_id": "s1", "kind": "trial", "trial_id": t.trial_id}, {})
    trial = _Trial({"ctx": ctx, "trial": {"trial_id": t.trial_id, "config": t.config.to_dict()}})
    Finalizer(ctx, None).on_trial_error(0, [trial], trial)

    rows = pd.read_parquet(trial_path(tmp_path / "results", "s1", t.trial_id))
    assert list(rows.status) == ["error"] and "the worker died" in rows.error[0]
    assert rows.method[0] == "original" and rows.config_hash[0] == t.config.config_hash
    run = MlflowClient(uri).get_run(run_id)
    assert run.info.status == "FAILED" and "the worker died" in run.data.tags["error"]
