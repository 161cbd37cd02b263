"""Shared fixtures: one tiny original model and one local Ray per test session; for the sweep
tests, an even smaller sweep spec with its warmed cache, and real services (a two-node Ray
cluster, an MLflow server) that are started and stopped by their own process ids.

The tiny config is the calibrated one (docs/benchmarks.md): a 64-dim, 2-block MAE trained on
2,000 images for 8 epochs learns centre inpainting well enough for the l2l effect to show.
"""
from __future__ import annotations

import copy
import os

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

TINY = {
    "dataset": "fashion_mnist",
    "task": {"kind": "center_inpaint", "mask_ratio": 0.5},
    "generator": {"name": "mae", "size": "tiny"},
    # The task's centre mask only, in pretraining and unlearning (random_masks 0): on this
    # budget it learns the task reliably (the protocol's specs use hybrid masks on more data).
    "pretrain": {"images": 2000, "epochs": 8, "batch_size": 64, "lr": 0.002, "seed": 0,
                 "random_masks": 0.0},
    "classifier": {"images": 10000, "epochs": 1},
    "forget_set": {"classes": [5, 7, 9]},
    "retain": {"mode": "full", "classes": [0, 1, 2, 3]},
    "unlearn": {"steps": 100, "batch_size": 64, "lr": 0.001, "images_per_class": 500,
                "random_masks": 0.0},
    # The optional extras (membership inference, a retrained reference model per generator)
    # are switched off here: test_evaluation covers them, and they would train a retrain model
    # for every generator the effect tests use.
    "eval": {"images_per_class": 100, "mia": False, "retrain_reference": False},
    "noise": "normal",
}


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """A model cache shared by the whole session, warmed with the tiny original model and
    classifier (about 30 s once), so every later test reads them from disk."""
    from l2l.config import TrialConfig
    from l2l.trial import run_trial

    d = tmp_path_factory.mktemp("l2l-cache")
    run_trial(TrialConfig.from_dict({**TINY, "method": "original", "cache_dir": str(d),
                                     "eval": {"images_per_class": 2}}))
    return d


@pytest.fixture
def tiny(cache_dir):
    """A fresh copy of the tiny trial dict pointing at the session cache."""
    return {**copy.deepcopy(TINY), "cache_dir": str(cache_dir)}


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the session: each start costs 6 to 8 s."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: a second intra-op thread only adds synchronisation, and on a loaded
    2-core machine it made the generator tests 10 to 20x slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ----------------------------------------------------------------------------------------------
# Real services for the sweep tests: a two-node Ray cluster and an MLflow server, started as
# their own process groups and stopped by those ids only (other Ray instances on the machine
# are left alone, so no `ray stop`).


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_members(sid: int) -> list[tuple[int, str]]:
    """Live (non-zombie) processes of session `sid`: (pid, command line)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = open(f"/proc/{d}/stat").read()
            state, _ppid, pgrp, session = stat[stat.rindex(")") + 2:].split()[:4]
            if state != "Z" and sid in (int(pgrp), int(session)):
                cmd = open(f"/proc/{d}/cmdline").read().replace("\0", " ").strip()
                out.append((int(d), cmd))
        except (OSError, ValueError):
            continue
    return out


def stop_session(proc, sig=None, timeout: float = 20.0) -> list[tuple[int, str]]:
    """Stops a process started with start_new_session=True and everything in its session;
    returns what was still alive after `sig` and `timeout` (then killed)."""
    import signal
    import time

    if proc.poll() is None:
        proc.send_signal(sig or signal.SIGTERM)
        try:
            proc.wait(timeout)
        except Exception:
            proc.kill()
            proc.wait(10)
    deadline = time.monotonic() + timeout
    while session_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = session_members(proc.pid)
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def _ray_bin() -> str:
    import sys
    from pathlib import Path

    return str(Path(sys.executable).with_name("ray"))


class RayNodes:
    """`ray start --head` plus `ray start --address=...` workers on 127.0.0.1, each `--block`
    in its own session: stopping that process stops its node (Ray's reaper kills the group)."""

    def __init__(self, root, head_cpus: int = 1, worker_cpus=(1,)):
        import subprocess

        import tempfile

        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
        env.pop("RAY_ADDRESS", None)
        # A private temp dir: `ray start` records its address in <temp dir>/ray_current_cluster,
        # and a plain ray.init() anywhere on the machine would join a cluster recorded in the
        # default /tmp/ray. Short, because Ray's socket paths live under it.
        self.temp_dir = tempfile.mkdtemp(prefix="l2lray-", dir="/tmp")
        common = ["--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
                  "--num-gpus=0", f"--temp-dir={self.temp_dir}"]
        self.procs = []
        self.logs = []

        def start(args, name):
            log = open(root / f"{name}.log", "w")
            self.logs.append(root / f"{name}.log")
            self.procs.append(subprocess.Popen(
                [_ray_bin(), "start", *args, *common], stdout=log, stderr=subprocess.STDOUT,
                env=env, start_new_session=True))

        start(["--head", f"--port={self.port}", f"--num-cpus={head_cpus}",
               '--resources={"head": 1}', "--include-dashboard=false",
               f"--dashboard-agent-listen-port={free_port()}"], "head")
        self._wait_for_port(self.port)
        for i, n in enumerate(worker_cpus):
            start([f"--address={self.address}", f"--num-cpus={n}",
                   f"--dashboard-agent-listen-port={free_port()}"], f"worker{i}")

    def _wait_for_port(self, port: int, timeout: float = 60.0) -> None:
        import socket
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[0].poll() is not None:
                raise RuntimeError(f"ray start --head exited: {self.logs[0].read_text()[-2000:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"Ray head did not open port {port} within {timeout} s")

    def wait_for_nodes(self, n: int, timeout: float = 60.0) -> list[str]:
        """Node ids of the alive nodes, once there are `n` (asked from a separate driver)."""
        import json
        import subprocess
        import sys

        code = ("import json, time, ray; ray.init(address=%r, configure_logging=False)\n"
                "t = time.time()\n"
                "while time.time() - t < %f:\n"
                "    ids = [x['NodeID'] for x in ray.nodes() if x['Alive']]\n"
                "    if len(ids) >= %d: break\n"
                "    time.sleep(0.5)\n"
                "print(json.dumps(ids))" % (self.address, timeout, n))
        env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=timeout + 60, env=env)
        ids = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else []
        if len(ids) < n:
            raise RuntimeError(f"{len(ids)} of {n} Ray nodes came up: {out.stderr[-2000:]}")
        return ids

    def stop(self) -> list[tuple[int, str]]:
        import shutil

        left = []
        for p in reversed(self.procs):  # workers first
            left += stop_session(p)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        return left


class MlflowServer:
    """`mlflow server` on 127.0.0.1, light on 2 cores (no job execution, one worker: up in
    about 6 s), on a sqlite file or on `backend` (a PostgreSQL database's URI)."""

    def __init__(self, root, backend: str | None = None):
        import subprocess
        import sys
        from pathlib import Path

        self.backend = backend or f"sqlite:///{root / 'server.db'}"
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.log = root / "mlflow-server.log"
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri",
             self.backend, "--artifacts-destination",
             str(root / "server-artifacts"), "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1"],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=env, cwd=root,
            start_new_session=True)

    def wait(self, timeout: float = 90.0) -> None:
        import time
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"mlflow server did not answer within {timeout} s")

    def stop(self) -> list[tuple[int, str]]:
        return stop_session(self.proc)


def _cheap_eval(images_per_class: int) -> dict:
    """Evaluation without the optional extras (membership inference, a retrained reference
    model) where this version of l2l has them: the sweep tests check plumbing."""
    import dataclasses

    from l2l.config import EvalConfig

    names = {f.name for f in dataclasses.fields(EvalConfig)}
    return {"images_per_class": images_per_class,
            **{k: False for k in ("mia", "retrain_reference") if k in names}}


def tiny_sweep_spec(name: str, **overrides) -> dict:
    """The smallest sweep that still runs the whole path: a 500-image, 2-epoch MAE, 10
    unlearning steps, 30 evaluation images a class (plumbing, not science: see
    test_unlearning_effect for that)."""
    spec = copy.deepcopy(TINY)
    spec.update(name=name, pretrain={**TINY["pretrain"], "images": 500, "epochs": 2},
                classifier={"images": 2000, "epochs": 1},
                unlearn={**TINY["unlearn"], "steps": 10},
                eval=_cheap_eval(30),
                grid={"method": ["original", "l2l"], "alpha": [0.25], "seed": [0, 1]},
                resources={"cpu": 1})
    spec.update(overrides)
    return spec


@pytest.fixture(scope="session")
def sweep_cache(tmp_path_factory):
    """A model cache warmed with tiny_sweep_spec's original model and classifier (a few
    seconds once), shared by the sweep tests that do not check cache behaviour themselves."""
    from l2l import experiment

    d = tmp_path_factory.mktemp("sweep-cache")
    spec = tiny_sweep_spec("warm")
    cfg = {k: v for k, v in spec.items() if k not in ("name", "grid", "resources")}
    experiment.run(experiment.parse_config({**cfg, "method": "original", "cache_dir": str(d)}))
    return d


def _pg_bin(name: str) -> str | None:
    """A PostgreSQL server binary: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    import glob
    import shutil

    found = shutil.which(name)
    if found:
        return found
    hits = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return hits[-1] if hits else None


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server in a temporary directory on 127.0.0.1 (Debian's `postgresql`
    package, which scripts/setup.sh installs); a function `new_db(name) -> URI` creating a
    database on it. initdb refuses to run as root, so as root the server runs as the
    `postgres` user. Skipped where no server binaries are installed."""
    import shutil
    import subprocess

    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    import tempfile
    from pathlib import Path

    psycopg = pytest.importorskip("psycopg")
    # under /tmp itself: pytest's own temporary directories are private to their user
    root = Path(tempfile.mkdtemp(prefix="l2l-postgres-"))
    as_user = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True, timeout=120)
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True, timeout=120)

    def new_db(name: str) -> str:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                             autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{port}/{name}"

    yield new_db
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "stop"],
                   capture_output=True, timeout=120)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server on 127.0.0.1 (moto's standalone server, from PyPI), in a
    process group of its own; yields the AWS variables that point a client at it (pyarrow.fs,
    Ray Tune and boto3 all read them). Buckets are made by the tests (`make_bucket`)."""
    import subprocess
    import sys
    import time
    import urllib.request

    pytest.importorskip("moto")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_session(proc)
                pytest.fail("moto's S3 server did not start")
            time.sleep(0.2)
    yield {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    stop_session(proc)


def make_bucket(env: dict, name: str) -> str:
    """Creates a bucket on the s3_server; returns `s3://<name>`."""
    import boto3

    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing") \
        .create_bucket(Bucket=name)
    return f"s3://{name}"
