"""The cluster path: cluster.yaml passes Ray's own cluster-config validation, the KubeRay
manifests agree with it and with the pins, and a real two-node Ray cluster on this machine
(`ray start --head` plus a worker on 127.0.0.1) runs a sweep whose trials land on both nodes,
with results on shared local storage and runs in a real `mlflow server` over HTTP."""
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

    svc = docs[("Service", "l2l-mlflow")]["spec"]["ports"][0]["port"]
    uri = f"http://l2l-mlflow:{svc}"
    env = {e["name"]: e["value"] for e in head["template"]["spec"]["containers"][0]["env"]}
    assert env["MLFLOW_TRACKING_URI"] == uri
    assert job["clusterSelector"]["ray.io/cluster"] == "l2l-sweeps"
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
def cluster(tmp_path_factory):
    from conftest import MlflowServer, RayNodes

    root = tmp_path_factory.mktemp("cluster")
    server = MlflowServer(root)  # starts while the Ray nodes come up
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
    r, shared, node_ids, server = two_node_sweep
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
