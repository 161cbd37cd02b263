"""The cluster path: cluster.yaml passes Ray's own cluster-config validation, the KubeRay
manifests agree with it and with the pins, and a real two-node Ray cluster on this machine
(`ray start --head` plus a worker on 127.0.0.1) runs a sweep whose trials land on both nodes,
with results on shared local storage and runs in a real `mlflow server` over HTTP; and when a
worker node is killed mid-trial, its trial is rescheduled on another node and the sweep
completes."""
import copy
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]


def _pin(name: str) -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        m = re.match(rf"^{re.escape(name)}(\[[^\]]*\])?==(\S+)", line.strip())
        if m:
            return m.group(2)
    raise AssertionError(f"{name} is not pinned in requirements.txt")


def test_cluster_yaml_passes_rays_own_validation():
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    config = prepare_config(copy.deepcopy(raw))  # what `ray up` does before it validates
    validate_config(config)

    ray_version = _pin("ray")
    assert config["docker"]["image"] == f"rayproject/ray:{ray_version}-py311-gpu"
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"] == {"CPU": 0, "GPU": 0}  # the head runs no trials
    assert any("--num-cpus=0" in c for c in config["head_start_ray_commands"])
    workers = [t for name, t in types.items() if name != config["head_node_type"]]
    assert workers and all(t["resources"]["GPU"] >= 1 for t in workers)
    # shared storage for results, Tune's experiment directory and the cache, on every node
    assert any("/mnt/shared" in c and "mount" in c for c in config["initialization_commands"])
    assert "-v /mnt/shared:/mnt/shared" in config["docker"]["run_options"]
    assert any("/mnt/shared/ray_results" in c for c in config["setup_commands"])
    # the MLflow server the head runs, and its URI for the driver
    assert any("mlflow server" in c for c in config["head_start_ray_commands"])
    assert any("MLFLOW_TRACKING_URI=http://" in c for c in config["head_setup_commands"])
    assert any("requirements.txt" in c for c in config["setup_commands"])

    # and the validation does bite: a fractional GPU count on a node type is refused
    bad = copy.deepcopy(raw)
    bad["available_node_types"]["gpu-1x"]["resources"]["GPU"] = 0.5
    with pytest.raises(Exception, match="integer"):
        validate_config(prepare_config(bad))


def test_kuberay_manifests_agree_with_the_pins_and_each_other():
    docs = {}
    for f in sorted((ROOT / "deploy").glob("*.yaml")):
        for d in yaml.safe_load_all(f.read_text()):
            docs[(d["kind"], d["metadata"].get("name") or d["metadata"]["generateName"])] = d
    cluster = docs[("RayCluster", "l2l-sweeps")]["spec"]
    job = next(d for (k, _), d in docs.items() if k == "RayJob")["spec"]
    assert cluster["rayVersion"] == _pin("ray")
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert f"FROM rayproject/ray:{_pin('ray')}-py311-gpu" in dockerfile
    assert "requirements.txt" in dockerfile

    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # no trials on the head
    pods = [head["template"]["spec"]] + [g["template"]["spec"] for g in cluster["workerGroupSpecs"]]
    images = {c["image"] for p in pods for c in p["containers"]}
    assert len(images) == 1  # driver and workers run the same code
    for group in cluster["workerGroupSpecs"]:
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert int(limits["nvidia.com/gpu"]) >= 1
    for p in pods:  # every pod mounts the shared claim at /shared
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in p["volumes"]}
        mounts = {m["mountPath"]: claims[m["name"]] for c in p["containers"]
                  for m in c["volumeMounts"]}
        assert mounts["/shared"] == "l2l-shared"
    assert ("PersistentVolumeClaim", "l2l-shared") in docs
    assert "ReadWriteMany" in docs[("PersistentVolumeClaim", "l2l-shared")]["spec"]["accessModes"]

    # the tracking store is PostgreSQL; a Deployment holding a ReadWriteOnce claim is
    # replaced with Recreate, never rolled (two pods would need the volume at once)
    mlflow = docs[("Deployment", "l2l-mlflow")]["spec"]
    command = " ".join(mlflow["template"]["spec"]["containers"][0]["command"])
    assert "--backend-store-uri postgresql" in command and "sqlite" not in command
    rwo = {n for (k, n), d in docs.items() if k == "PersistentVolumeClaim"
           and "ReadWriteOnce" in d["spec"]["accessModes"]}
    for (kind, name), d in docs.items():
        if kind == "Deployment":
            claims = {v["persistentVolumeClaim"]["claimName"]
                      for v in d["spec"]["template"]["spec"].get("volumes", [])
                      if "persistentVolumeClaim" in v}
            if claims & rwo:
                assert d["spec"].get("strategy", {}).get("type") == "Recreate", name
                assert d["spec"]["replicas"] == 1, name
    svc = docs[("Service", "l2l-mlflow")]["spec"]["ports"][0]["port"]
    uri = f"http://l2l-mlflow:{svc}"
    env = {e["name"]: e["value"] for e in head["template"]["spec"]["containers"][0]["env"]}
    assert env["MLFLOW_TRACKING_URI"] == uri
    assert job["clusterSelector"]["ray.io/cluster"] == "l2l-sweeps"
    # token authentication on, nothing switching it off; a retried job resumes, within a
    # deadline
    assert cluster["authOptions"] == {"mode": "token"}
    assert all(e.get("name") != "RAY_AUTH_MODE" for p in pods for c in p["containers"]
               for e in c.get("env", []))
    assert job["backoffLimit"] >= 1 and job["activeDeadlineSeconds"] > 0
    entry = job["entrypoint"].split()
    assert entry[:2] == ["l2l-sweep", "run"]
    flags = dict(zip(entry[3::2], entry[4::2]))
    assert flags["--mlflow-uri"] == uri
    for flag in ("--results", "--storage", "--cache-dir"):
        assert flags[flag].startswith("/shared/")
    # the entrypoint parses with the real CLI
    from sweeps.cli import _parser

    args = _parser().parse_args(entry[1:])
    assert args.max_failures is not None


# ----------------------------------------------------------------------------------------------
# A real two-node cluster and a real MLflow server (started once for the module)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, request):
    from conftest import MlflowServer, RayNodes, _pg_bin

    root = tmp_path_factory.mktemp("cluster")
    # The tracking server on PostgreSQL, as a team's runs (deploy/mlflow.yaml); on sqlite
    # where no PostgreSQL is installed
    backend = request.getfixturevalue("postgres")("mlflow_server") if _pg_bin("initdb") \
        else None
    server = MlflowServer(root, backend)  # starts while the Ray nodes come up
    nodes = None
    try:
        nodes = RayNodes(root, head_cpus=1, worker_cpus=(1,))
        node_ids = nodes.wait_for_nodes(2)
        server.wait()
        yield root, nodes, node_ids, server
    finally:
        left = (nodes.stop() if nodes else []) + server.stop()
        assert left == [], f"processes that had to be killed: {left}"


@pytest.fixture(scope="module")
def two_node_sweep(cluster, sweep_cache):
    from conftest import tiny_sweep_spec

    root, nodes, node_ids, server = cluster
    shared = root / "shared"  # one directory every node sees: "shared storage" on one machine
    # Half a GPU a trial, as on a GPU cluster: this cluster has none, so they fall back.
    spec = tiny_sweep_spec("two-node", method="l2l", grid={"alpha": [0.1, 0.5]},
                           resources={"mae": {"cpu": 1, "gpu": 0.5}})
    (root / "spec.yaml").write_text(yaml.safe_dump(spec))
    r = subprocess.run(
        [sys.executable, "-m", "sweeps", "run", str(root / "spec.yaml"), "--address",
         nodes.address, "--mlflow-uri", server.uri, "--results", str(shared / "results"),
         "--storage", str(shared / "ray_results"), "--cache-dir", str(sweep_cache),
         "--sweep-id", "two-node"],
        cwd=root, capture_output=True, text=True, timeout=600)
    return r, shared, node_ids, server


def test_a_sweep_runs_on_both_nodes_with_results_on_shared_storage(two_node_sweep):
    r, shared, node_ids, server = two_node_sweep
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "2 of 2 trials finished, 0 failed" in r.stdout
    assert "notice: resources.mae asks for 0.5 GPU but the Ray cluster has none" in r.stdout
    files = sorted((shared / "results" / "sweep_id=two-node").glob("*.parquet"))
    rows = pd.concat(pd.read_parquet(f) for f in files)
    assert len(files) == 2 and set(rows.status) == {"ok"}
    assert (shared / "ray_results" / "two-node" / "sweep.json").is_file()

    client = MlflowClient(server.uri)
    exp = client.get_experiment_by_name("two-node")
    trials = client.search_runs([exp.experiment_id], "tags.kind = 'trial'")
    assert {t.data.tags["ray_node_id"] for t in trials} == set(node_ids)  # one on each node


def test_the_mlflow_server_has_the_runs_over_http(two_node_sweep):
    """One parent, every child, every metric of every trial with the time it was logged,
    read back over HTTP from a server on PostgreSQL."""
    r, shared, node_ids, server = two_node_sweep
    assert server.backend.startswith("postgresql") or not _pg_installed()
    client = MlflowClient(server.uri)
    exp = client.get_experiment_by_name("two-node")
    runs = client.search_runs([exp.experiment_id])
    parent = [x for x in runs if x.data.tags["kind"] == "sweep"]
    trials = [x for x in runs if x.data.tags["kind"] == "trial"]
    assert len(parent) == 1 and parent[0].info.status == "FINISHED"
    assert len(trials) == 2 and {t.info.status for t in trials} == {"FINISHED"}
    assert {t.data.tags["mlflow.parentRunId"] for t in trials} == {parent[0].info.run_id}
    files = (shared / "results" / "sweep_id=two-node").glob("*.parquet")
    rows = pd.concat(pd.read_parquet(f) for f in files)
    assert set(rows.mlflow_run_id) == {t.info.run_id for t in trials}
    t = trials[0]
    assert float(t.data.params["alpha"]) in (0.1, 0.5) and "forget_fid" in t.data.metrics
    arts = {a.path for a in client.list_artifacts(t.info.run_id)}  # uploaded over HTTP
    assert "config.json" in arts and f"{t.data.tags['trial_id']}.parquet" in arts
    started = min(x.info.start_time for x in runs)
    for t in trials:  # every metric row of the trial's Parquet file, logged at a real time
        mine = rows[(rows.trial_id == t.data.tags["trial_id"]) & rows.value.notna()]
        mine = mine[mine.value.abs() != float("inf")]  # MLflow takes finite values only
        assert {f"{s}_{m}" for s, m in zip(mine.split, mine.metric)} <= set(t.data.metrics)
        for key in ("forget_fid", "retain_fid"):
            (m,) = client.get_metric_history(t.info.run_id, key)
            assert started <= m.timestamp <= t.info.end_time


def _pg_installed() -> bool:
    from conftest import _pg_bin

    return _pg_bin("initdb") is not None


# ----------------------------------------------------------------------------------------------
# A worker node lost mid-sweep


def _start_worker(nodes, root, name: str, cpus: int, tries: int = 2):
    """One more `ray start --address=...` worker in its own session, like RayNodes' workers;
    returns once it runs. On this loaded 2-core machine a raylet now and then misses Ray's
    30 s registration deadline: such a start is tried again."""
    import os
    import time

    from conftest import _ray_bin, free_port, stop_session

    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    for attempt in range(tries):
        log = root / f"{name}-{attempt}.log"
        proc = subprocess.Popen(
            [_ray_bin(), "start", f"--address={nodes.address}", f"--num-cpus={cpus}", "--block",
             "--node-ip-address=127.0.0.1", "--disable-usage-stats", "--num-gpus=0",
             f"--temp-dir={nodes.temp_dir}", f"--dashboard-agent-listen-port={free_port()}",
             # small: trials pass no objects, and four nodes' default stores (30% of memory
             # each) overrun /dev/shm, which crashes a raylet at start
             "--object-store-memory=200000000"],
            stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if "will now block forever" in log.read_text():
                return proc
            time.sleep(0.3)
        left = stop_session(proc)
        assert left == [], left
    raise RuntimeError(f"worker {name} did not start in {tries} tries: "
                       f"{log.read_text()[-2000:]}")


def _runs_a_trial(proc) -> bool:
    """Whether a node runs a Tune trial: one of its processes is a trial actor (Ray titles it
    `ray::ImplicitFunc`, plus the method it runs)."""
    for pid in _node_processes(proc):
        try:
            if open(f"/proc/{pid}/cmdline").read().startswith("ray::ImplicitFunc"):
                return True
        except OSError:
            continue
    return False


def _node_processes(proc) -> list[int]:
    """Every live process of a `ray start --block` node: its session and the descendants of
    those (Ray's workers run in process groups of their own)."""
    import os

    from conftest import session_members

    pids = {pid for pid, _ in session_members(proc.pid)}
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open(f"/proc/{d}/stat").read()
                fields = stat[stat.rindex(")") + 2:].split()
                if fields[0] != "Z":
                    children.setdefault(int(fields[1]), []).append(int(d))
            except (OSError, ValueError):
                continue
    todo = list(pids)
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in pids:
                pids.add(c)
                todo.append(c)
    return sorted(pids)


def test_a_trial_on_a_killed_worker_node_is_rescheduled_and_the_sweep_completes(cluster,
                                                                                 sweep_cache):
    """Two more worker nodes join the cluster with 2 CPUs each, and the sweep's two trials ask
    for 1.5 CPUs, which only those nodes have: one trial lands on each. As soon as a trial runs
    on one of them (its node has a Tune trial actor process) and before any trial finished,
    every process of that node is SIGKILLed, as when a machine is lost. Tune retries the trial
    (max_failures 1) on the surviving node; the sweep completes, each trial's rows are in
    Parquet once, each has one finished MLflow run, and the retried one says attempts = 2 (the
    lost attempt's run, FAILED, was reopened) and names the surviving node."""
    import os
    import re
    import signal
    import time

    from conftest import session_members, stop_session, tiny_sweep_spec

    root, nodes, node_ids, server = cluster
    work = root / "worker-kill"
    work.mkdir()
    workers, driver, left = {}, None, []
    try:
        for name in ("spare-a", "spare-b"):  # one after the other: steadier than together
            workers[name] = _start_worker(nodes, work, name, cpus=2)
        ids = nodes.wait_for_nodes(len(node_ids) + 2)
        new = set(ids) - set(node_ids)
        assert len(new) == 2, (ids, node_ids)
        node_of = {}  # node id -> its `ray start` process
        for proc in workers.values():
            cmds = " ".join(cmd for _, cmd in session_members(proc.pid))
            node_of.update({n: proc for n in new if f"--node_id={n}" in cmds})
        assert set(node_of) == new, "could not tell which process runs which node"

        spec = tiny_sweep_spec("worker-kill", method="l2l", grid={"alpha": [0.1, 0.5]},
                               resources={"cpu": 1.5}, max_failures=1,
                               unlearn={**tiny_sweep_spec("x")["unlearn"], "steps": 40})
        (work / "spec.yaml").write_text(yaml.safe_dump(spec))
        shared = work / "shared"
        results = shared / "results" / "sweep_id=worker-kill"
        log = work / "driver.log"
        driver = subprocess.Popen(
            [sys.executable, "-m", "sweeps", "run", str(work / "spec.yaml"), "--address",
             nodes.address, "--mlflow-uri", server.uri, "--results", str(shared / "results"),
             "--storage", str(shared / "ray_results"), "--cache-dir", str(sweep_cache),
             "--sweep-id", "worker-kill"],
            cwd=work, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True,
            env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})

        client = MlflowClient(server.uri)
        deadline, victim_node = time.monotonic() + 300, None
        while victim_node is None and time.monotonic() < deadline:
            assert driver.poll() is None, log.read_text()[-3000:]
            victim_node = next((n for n, proc in sorted(node_of.items())
                                if _runs_a_trial(proc)), None)
            if victim_node is None:
                time.sleep(0.2)
        assert victim_node is not None, \
            f"no trial started on the new nodes: {log.read_text()[-3000:]}"
        assert not list(results.glob("*.parquet"))  # killed mid-trial, not after
        doomed = node_of[victim_node]
        for pid in _node_processes(doomed):  # the machine is gone: everything at once
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        doomed.wait(30)

        rc = driver.wait(480)
        out = log.read_text()
        assert rc == 0, out[-4000:]
        retries = re.findall(r"\] (t\d{3}-[0-9a-f]{8}) failed, retrying \(retry 1 of 1\)", out)
        assert len(retries) == 1, out[-4000:]
        victim_trial = retries[0]
        assert "2 of 2 trials finished, 0 failed" in out

        files = sorted(results.glob("*.parquet"))
        rows = pd.concat(pd.read_parquet(f) for f in files)
        assert len(files) == 2 and set(rows.status) == {"ok"}
        assert rows.groupby(["trial_id", "split", "metric"]).size().eq(1).all()  # once
        exp = client.get_experiment_by_name("worker-kill")
        trials = client.search_runs([exp.experiment_id], "tags.kind = 'trial'")
        assert len(trials) == 2 and {t.info.status for t in trials} == {"FINISHED"}
        assert set(rows.mlflow_run_id) == {t.info.run_id for t in trials}
        retried = next(t for t in trials if t.data.tags["trial_id"] == victim_trial)
        assert retried.data.tags["attempts"] == "2"
        survivor = (new - {victim_node}).pop()
        assert retried.data.tags["ray_node_id"] == survivor  # rescheduled on the other node
        assert _node_processes(doomed) == []  # nothing of the lost node survived
    finally:
        if driver is not None:
            left += stop_session(driver)
        for proc in workers.values():
            left += stop_session(proc)
    assert left == [], f"processes that had to be killed: {left}"
