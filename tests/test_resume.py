"""An interrupted sweep resumes where it stopped: after Ctrl-C (SIGINT) on a driver with its own
local Ray, and after SIGKILL of a driver on a running cluster, `l2l-sweep resume` finishes the
sweep; every trial's rows are in Parquet exactly once, every trial has exactly one finished
MLflow run, and the interrupted driver left no process behind."""
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from sweeps.cli import main as sweep_main


TRIALS = 3


@pytest.fixture(scope="module")
def setup(ray_local, sweep_cache, tmp_path_factory):
    from conftest import tiny_sweep_spec

    root = tmp_path_factory.mktemp("resume")
    # One trial at a time (one Ray worker, reused): once the first trial's file is there, at
    # least one trial is still to run when the signal arrives.
    spec = tiny_sweep_spec("tiny-resume", method="l2l", max_concurrent_trials=1,
                           grid={"alpha": [0.1, 0.25, 0.5]})
    (root / "spec.yaml").write_text(yaml.safe_dump(spec))
    return root, f"sqlite:///{root / 'mlflow.db'}", sweep_cache


def _start(root, uri, cache, sweep_id, address=None):
    args = [sys.executable, "-m", "sweeps", "run", str(root / "spec.yaml"), "--results",
            str(root / "results"), "--storage", str(root / "ray"), "--mlflow-uri", uri,
            "--cache-dir", str(cache), "--sweep-id", sweep_id]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    if address:
        args += ["--address", address]
    log = root / f"{sweep_id}.log"
    proc = subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env,
                            cwd=root, start_new_session=True)
    return proc, log


def _wait_for_first_trial(root, sweep_id, proc, log, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list((root / "results" / f"sweep_id={sweep_id}").glob("*.parquet")):
            return
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"no trial finished within {timeout} s: {log.read_text()[-3000:]}")


@pytest.mark.parametrize("how", ["sigint", "sigkill"])
def test_an_interrupted_sweep_resumes_with_every_trial_once(how, setup, capsys, monkeypatch):
    from conftest import stop_session

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    root, uri, cache = setup
    sweep_id = f"resume-{how}"
    # SIGINT: a laptop run with its own local Ray. SIGKILL: a driver on a cluster that stays up
    # (the test session's Ray), as when the head node's driver process dies.
    address = None if how == "sigint" else ray_address()
    proc, log = _start(root, uri, cache, sweep_id, address)
    try:
        _wait_for_first_trial(root, sweep_id, proc, log)
        proc.send_signal(signal.SIGINT if how == "sigint" else signal.SIGKILL)
        rc = proc.wait(120)
    finally:
        left = stop_session(proc)
    out = log.read_text()
    if how == "sigint":
        assert rc == 130, out[-3000:]
        assert "interrupted:" in out and f"l2l-sweep resume {sweep_id}" in out
    else:
        assert rc == -signal.SIGKILL
    assert left == [], f"processes left behind by the driver: {left}"

    if how == "sigint":  # the same `run` again, as a scheduler retries a job: it resumes
        assert sweep_main(["run", str(root / "spec.yaml"), "--results", str(root / "results"),
                           "--storage", str(root / "ray"), "--mlflow-uri", uri,
                           "--cache-dir", str(cache), "--sweep-id", sweep_id]) == 0
        out = capsys.readouterr().out
        assert f"sweep {sweep_id} exists in {root / 'ray'} with this spec: resuming it" in out
    else:
        assert sweep_main(["resume", sweep_id, "--storage", str(root / "ray")]) == 0
        out = capsys.readouterr().out
    assert f"resuming sweep {sweep_id}:" in out
    # without --address, the resume goes where the sweep ran (sweep.json records it)
    assert (f"Ray at {address} (recorded in sweep.json)" if address else
            "a new local Ray, as the sweep was started") in out
    assert f"{TRIALS} of {TRIALS} trials finished, 0 failed" in out

    files = sorted((root / "results" / f"sweep_id={sweep_id}").glob("*.parquet"))
    rows = pd.concat(pd.read_parquet(f).assign(file=f.name) for f in files)
    assert len(files) == TRIALS and set(rows.status) == {"ok"}
    assert rows.groupby("trial_id").file.nunique().eq(1).all()
    assert rows.groupby(["trial_id", "split", "metric"]).size().eq(1).all()  # exactly once

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("tiny-resume")
    runs = client.search_runs([exp.experiment_id], f"tags.sweep_id = '{sweep_id}'")
    parent = [r for r in runs if r.data.tags["kind"] == "sweep"]
    children = [r for r in runs if r.data.tags["kind"] == "trial"]
    assert len(parent) == 1 and parent[0].info.status == "FINISHED"
    assert sorted(c.data.tags["trial_id"] for c in children) == sorted(rows.trial_id.unique())
    assert {c.info.status for c in children} == {"FINISHED"}
    assert set(rows.mlflow_run_id) == {c.info.run_id for c in children}


def ray_address() -> str:
    import ray

    return ray.get_runtime_context().gcs_address


def test_resume_refuses_what_it_cannot_resume(setup, tmp_path, capsys):
    root, _, _ = setup
    assert sweep_main(["resume", "no-such-sweep", "--storage", str(root / "ray")]) == 2
    assert "error: sweep: no sweep 'no-such-sweep'" in capsys.readouterr().err
    (tmp_path / "bare").mkdir()
    assert sweep_main(["resume", str(tmp_path / "bare")]) == 2
    assert "has no sweep.json" in capsys.readouterr().err


def test_a_sweep_recorded_before_identity_versions_keeps_its_trial_ids(tmp_path):
    """sweep.json without `identity_version` (format 1): the sweep's trial ids were made with
    identity version 1, and a resume keeps making them so; a new sweep records version 2."""
    import json

    from conftest import tiny_sweep_spec
    from contract.identity import IDENTITY_VERSION
    from sweeps.spec import parse_spec
    from sweeps.sweepfile import FORMAT, SweepSettings, read_sweep_file, write_sweep_file

    raw = tiny_sweep_spec("ids")
    settings = SweepSettings(tmp_path / "results", tmp_path / "ray", None, None, "s1", "abc",
                             "ids", address="10.0.0.1:6379")
    write_sweep_file(settings, parse_spec(raw), None, None, {}, None)
    path = tmp_path / "ray" / "s1" / "sweep.json"
    rec = read_sweep_file(path.parent)
    assert rec.identity_version == IDENTITY_VERSION == 2 and rec.format == FORMAT == 3
    assert rec.settings.address == "10.0.0.1:6379"
    t = rec.spec.trials[0]
    assert t.trial_id.endswith(t.config.config_hash[:8])

    old = json.loads(path.read_text())
    del old["identity_version"]
    old["format"] = 1
    path.write_text(json.dumps(old))
    rec = read_sweep_file(path.parent)
    assert rec.identity_version == 1 and rec.format == 1
    t = rec.spec.trials[0]
    assert t.trial_id.endswith(t.config.identity_hash(1)[:8])
    assert t.config.identity_hash(1) != t.config.config_hash


def test_resume_picks_the_address_given_then_the_environment_then_the_recorded_one(monkeypatch):
    from sweeps.sweepfile import pick_address

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert pick_address(None, "a:1") == ("a:1", "recorded in sweep.json")
    assert pick_address(None, None)[0] is None
    monkeypatch.setenv("RAY_ADDRESS", "b:2")
    assert pick_address(None, "a:1") == ("b:2", "$RAY_ADDRESS")
    assert pick_address("c:3", "a:1") == ("c:3", "--address")


def test_a_sweep_carries_on_from_its_parquet_files_alone(setup, tmp_path, capsys, monkeypatch):
    """A new machine (no Tune state) with the results of an earlier one: `run` with the same
    sweep id runs only the trials without a finished file; a damaged file runs again; `resume`
    of the new run leaves the kept trials out too."""
    from sweeps.sweepfile import read_sweep_file

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    root, _, cache = setup
    results, sid = tmp_path / "results", "carry"

    def run(storage):
        return sweep_main(["run", str(root / "spec.yaml"), "--results", str(results),
                           "--storage", str(tmp_path / storage), "--mlflow-uri", "none",
                           "--cache-dir", str(cache), "--sweep-id", sid])

    assert run("ray-a") == 0
    capsys.readouterr()
    files = sorted((results / f"sweep_id={sid}").glob("*.parquet"))
    assert len(files) == TRIALS
    kept, damaged, lost = files
    kept_bytes = kept.read_bytes()
    damaged.write_bytes(damaged.read_bytes()[:100])
    lost.unlink()

    assert run("ray-b") == 0  # another machine: the Tune state of ray-a is not there
    out = capsys.readouterr().out
    assert f"sweep {sid}: 1 of {TRIALS} trials already have finished results" in out
    assert "running the other 2" in out and "sweep carry: 2 trials" in out
    rows = pd.concat(pd.read_parquet(f) for f in (results / f"sweep_id={sid}").glob("*.parquet"))
    assert rows.trial_id.nunique() == TRIALS and set(rows.status) == {"ok"}
    assert rows.groupby(["trial_id", "split", "metric"]).size().eq(1).all()
    assert kept.read_bytes() == kept_bytes  # a finished trial is not run again

    rec = read_sweep_file(tmp_path / "ray-b" / sid)  # what `resume` would run
    assert [t.trial_id for t in rec.spec.trials] == [damaged.stem, lost.stem]

    assert run("ray-c") == 0  # everything is there: nothing starts
    out = capsys.readouterr().out
    assert f"{TRIALS} of {TRIALS} trials already have finished results" in out
    assert "nothing to run" in out and not (tmp_path / "ray-c" / sid).exists()
