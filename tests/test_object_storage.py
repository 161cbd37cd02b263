"""Results, Tune state, artifacts and the model cache on object storage: a real S3-compatible
server (moto's, started on 127.0.0.1 by the `s3_server` fixture) holds them all. A sweep is
killed and resumed there, and `l2l-analysis` reads its tables back from the same URI."""
import os
import signal
import subprocess
import sys
import time
from contextlib import nullcontext

import pyarrow.dataset as ds
import pytest
import yaml

from conftest import make_bucket, stop_session
from contract.storage import StorageError, check_writable, locate


@pytest.fixture
def s3(s3_server, monkeypatch, request):
    """The server's variables in this process's environment, and a fresh bucket."""
    for k, v in s3_server.items():
        monkeypatch.setenv(k, v)
    name = "l2l-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    return make_bucket(s3_server, name)


def test_files_appear_whole_and_listings_skip_temporaries(s3):
    root = locate(f"{s3}/sweeps/results")
    assert not root.exists()
    check_writable(root, "--results")  # the bucket exists; nothing is created
    assert not root.exists()
    (root / "sweep_id=a" / "t1.parquet").write_bytes(b"one")
    (root / "sweep_id=a" / ".t2.parquet.tmp").write_bytes(b"half")
    assert [f.name for f in root.files(".parquet", recursive=True)] == ["t1.parquet"]
    assert [d.name for d in root.dirs()] == ["sweep_id=a"]
    assert (root / "sweep_id=a" / "t1.parquet").read_bytes() == b"one"
    assert root.beside("artifacts").uri == f"{s3}/sweeps/results-artifacts"
    with pytest.raises(StorageError, match="larger than 2 bytes"):
        (root / "sweep_id=a" / "t1.parquet").read_bytes(limit=2)

    with pytest.raises(StorageError, match="--results: .*bucket 'no-such-bucket' does not exist"):
        check_writable(locate("s3://no-such-bucket/results"), "--results")
    with pytest.raises(StorageError, match="--results: cannot open 'nope://x/y'"):
        locate("nope://x/y", "--results")
    with pytest.raises(StorageError, match="names no bucket"):
        locate("s3://", "--results")


def test_a_cache_on_object_storage_is_built_once_for_every_node(s3, tmp_path, monkeypatch):
    import torch

    from l2l import cache

    built = []

    def build():
        built.append(1)
        return {"w": torch.arange(6.0)}, {"note": "x"}

    uri = f"{s3}/cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "node-a"))
    state, hit = cache.get_or_build(uri, "generator", {"k": 1}, build)
    assert not hit.hit and built == [1]
    remote = locate(uri) / "generator" / hit.key
    assert {f.name for f in remote.files()} == {cache.WEIGHTS, cache.META}

    # another node (an empty local copy) reads the entry from the store
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "node-b"))
    state_b, hit_b = cache.get_or_build(uri, "generator", {"k": 1}, build)
    assert hit_b.hit and built == [1] and torch.equal(state_b["w"], state["w"])
    assert str(tmp_path / "node-b") in str(hit_b.path)

    # weights damaged in the store: a third node rebuilds rather than loading them
    (remote / cache.WEIGHTS).write_bytes(b"not weights")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "node-c"))
    _, hit_c = cache.get_or_build(uri, "generator", {"k": 1}, build)
    assert not hit_c.hit and built == [1, 1]


def test_bad_object_storage_arguments_are_one_line_and_write_nothing(s3, tmp_path, capsys,
                                                                      monkeypatch):
    from conftest import tiny_sweep_spec
    from sweeps.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(tiny_sweep_spec("bad-s3")))
    cases = [(["--results", "s3://no-such-bucket/r"], "--results: s3://no-such-bucket/r: "
              "bucket 'no-such-bucket' does not exist"),
             (["--storage", "s3://no-such-bucket/ray"], "--storage: s3://no-such-bucket/ray"),
             (["--cache-dir", "s3://no-such-bucket/c"], "--cache-dir: s3://no-such-bucket/c"),
             (["--results", "nope://bucket/r"], "--results: cannot open 'nope://bucket/r'")]
    for args, expected in cases:
        with pytest.raises(SystemExit) if args[1].startswith("nope") else nullcontext():
            rc = main(["run", "spec.yaml", *args, "--mlflow-uri", "none"])
            assert rc == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]  # no "s3:" directory
    assert not locate(f"{s3}/r").exists()


def _sweep(cmd: list[str], env: dict, cwd, log):
    return subprocess.Popen([sys.executable, "-m", "sweeps", *cmd], stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)


def test_a_sweep_on_object_storage_is_killed_resumed_and_analysed(s3, tmp_path, capsys,
                                                                  monkeypatch):
    """The cluster path without a shared file system: results, Tune state, artifacts and the
    model cache all on S3. The driver is killed (SIGKILL) after its first trial; `resume`
    finishes the sweep; the rows are there exactly once; `l2l-analysis` reads them from the
    same URI and writes its tables beside them."""
    from conftest import tiny_sweep_spec
    from mlflow.tracking import MlflowClient

    from analysis.cli import main as analysis_main

    spec = tiny_sweep_spec("s3-sweep", method="l2l", max_concurrent_trials=1,
                           grid={"alpha": [0.1, 0.25, 0.5]})
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    results, storage, cache = f"{s3}/results", f"{s3}/ray", f"{s3}/cache"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "node-cache")  # the cache's local copy
    sweep = "on-s3"
    proc = _sweep(["run", "spec.yaml", "--results", results, "--storage", storage,
                   "--cache-dir", cache, "--mlflow-uri", uri, "--sweep-id", sweep,
                   "--save-models"], env, tmp_path, tmp_path / "run.log")
    part = locate(results) / f"sweep_id={sweep}"
    try:
        deadline = time.monotonic() + 300
        while not part.files(".parquet"):
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()[-3000:]
            time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    finally:
        stop_session(proc)
    assert len(part.files(".parquet")) < 3  # killed before the end
    assert (locate(storage) / sweep / "sweep.json").is_file()
    assert not (tmp_path / "s3:").exists() and not (tmp_path / "results").exists()

    proc = _sweep(["resume", sweep, "--storage", storage], env, tmp_path,
                  tmp_path / "resume.log")
    try:
        rc = proc.wait(600)
    finally:
        stop_session(proc)
    out = (tmp_path / "resume.log").read_text()
    assert rc == 0, out[-3000:]
    assert f"resuming sweep {sweep}:" in out and "3 of 3 trials finished, 0 failed" in out

    # any hive reader opens the root on S3: every trial's rows, each metric once
    root = locate(results)
    rows = ds.dataset(root.path, filesystem=root.fs, format="parquet",
                      partitioning="hive").to_table().to_pandas()
    assert set(rows.sweep_id) == {sweep} and set(rows.status) == {"ok"}
    assert rows.trial_id.nunique() == 3
    assert rows.groupby(["trial_id", "split", "metric"]).size().eq(1).all()
    # the trials' artifacts beside the root, where each row's artifact_dir points
    for ref in set(rows.artifact_dir):
        assert (root.parent / ref.removeprefix("../")).files(), ref
    # every trial's MLflow run is finished, with its Parquet file among its artifacts
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("s3-sweep")
    runs = [r for r in client.search_runs([exp.experiment_id], f"tags.sweep_id = '{sweep}'")
            if r.data.tags["kind"] == "trial"]
    assert sorted(r.data.tags["trial_id"] for r in runs) == sorted(rows.trial_id.unique())
    assert {r.info.status for r in runs} == {"FINISHED"}
    for r in runs:
        names = {a.path for a in client.list_artifacts(r.info.run_id)}
        assert f"{r.data.tags['trial_id']}.parquet" in names, names
    # every unlearned model kept beside the root; evaluated again, it gives its row's numbers
    from l2l.stored_model import reevaluate

    assert rows.model.notna().all() and rows.groupby("trial_id").model.nunique().eq(1).all()
    one = rows[rows.trial_id == rows.trial_id.iloc[0]]
    model = root.parent / one.model.iloc[0].removeprefix("../")
    assert model.uri.startswith(f"{s3}/results-models/") and model.is_file()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "node-cache"))
    again = reevaluate(model.uri, runtime={"cache_dir": cache})
    got = {(m.split, m.metric): m.value for m in again.metrics}
    assert {(r.split, r.metric): r.value for r in one.itertuples()} == pytest.approx(got)
    # the model cache is in the bucket (the original model and the classifier)
    assert {d.name for d in locate(cache).dirs()} >= {"generator", "classifier"}

    capsys.readouterr()
    assert analysis_main(["table", "--results", results]) == 0
    out, err = capsys.readouterr()
    assert "| l2l" in out or "l2l" in out
    table = root.beside("tables") / f"{sweep}.md"
    assert table.read_bytes().decode() == out
    assert f"table written to {table.uri}" in err and "/tmp/l2l-analysis-" not in err
    assert analysis_main(["figures", "--results", results]) == 0
    out, err = capsys.readouterr()
    assert root.beside("figures").files(".png", recursive=True)
    assert all(line.startswith(f"{s3}/results-figures/") for line in out.splitlines()), out


def test_a_store_that_does_not_answer_is_an_error_line_not_a_hang(monkeypatch):
    """A server that accepts the connection and never answers (a wrong endpoint, a firewall
    that drops replies): the first question asked of it has a deadline."""
    import socket

    from contract.storage import probe

    with socket.socket() as quiet:
        quiet.bind(("127.0.0.1", 0))
        quiet.listen(8)
        for k, v in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{quiet.getsockname()[1]}",
                     "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                     "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(k, v)
        t0 = time.monotonic()
        with pytest.raises(StorageError, match=r"--results: no answer from s3://quiet/x "
                                               r"within 1 s"):
            probe(locate("s3://quiet/x"), "--results", seconds=1)
        assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("uri, expected", [
    ("nope://bucket/x", "cannot open 'nope://bucket/x'"),
    ("abfs://c@account.dfs.core.windows.net/x", "abfs:// is not supported"),
    ("https://example.org/results", "https:// is not supported"),
    ("s3:///x", "Missing bucket name"),
    ("s3://bucket/x?color=red", "Unexpected query parameter"),
])
def test_uris_no_store_can_serve_are_refused_with_the_reason(uri, expected, capsys):
    from analysis.cli import main as analysis_main
    from sweeps.cli import main as sweep_main

    with pytest.raises(SystemExit) as e:
        sweep_main(["run", "spec.yaml", "--results", uri])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert analysis_main(["table", "--results", uri]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
