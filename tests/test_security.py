"""Security: what the project loads, runs and exposes.

- Checkpoints load with `weights_only=True`: every `torch.load` in the source says so, and a cache
  entry holding a pickled object (with a matching hash, as someone who can write the shared
  cache could leave it) is refused and rebuilt without running the object's code. Weights files a
  user names (Inception, CLIP) go through third-party loaders: they must not unpickle code either.
- YAML is read with the safe loader only: a `!!python/...` tag in a spec or a trial config is an
  error, and its payload never runs.
- No shell command is built from input: no shell-string subprocess call, `os.system` or
  `os.popen`; every subprocess gets an argument list.
- The MLflow server binds 127.0.0.1 unless a command says otherwise, and the commands that say
  otherwise (a cluster head, a Kubernetes Service) are explicit, accept the host names their
  clients use, and are documented.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
import shlex
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ("l2l", "sweeps", "analysis", "contract", "benchmarks", "scripts",
                             "tests")
                 for p in (ROOT / d).rglob("*.py"))
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _dotted(f: ast.AST) -> str:
    """`torch.jit.load` for the expression torch.jit.load; `?.x` where a part is not a name."""
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        return f"{_dotted(f.value)}.{f.attr}"
    return "?"


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield _dotted(node.func), node


def _kw(node: ast.Call, name: str):
    return next((k.value for k in node.keywords if k.arg == name), None)


@pytest.fixture(scope="module")
def trees():
    return {p.relative_to(ROOT).as_posix(): ast.parse(p.read_text(), str(p)) for p in SOURCES}


# ---------------------------------------------------------------------------------------------
# Static checks over the source


def test_sources_were_found(trees):
    assert "l2l/cache.py" in trees and "sweeps/cli.py" in trees and len(trees) > 40


def test_every_torch_load_says_weights_only_true(trees):
    bad, seen = [], 0
    for path, tree in trees.items():
        for name, node in _calls(tree):
            if name == "torch.load":
                seen += 1
                w = _kw(node, "weights_only")
                if not (isinstance(w, ast.Constant) and w.value is True):
                    bad.append(f"{path}:{node.lineno}")
    assert seen >= 1 and bad == [], f"torch.load without weights_only=True: {bad}"


def test_no_other_unpickling(trees):
    """pickle / numpy's pickle path / torch.jit are never used to read files. Tests may
    round-trip objects they made themselves (as Tune saves and restores its callbacks)."""
    bad = []
    for path, tree in trees.items():
        if path.startswith("tests/"):
            continue
        for name, node in _calls(tree):
            if name in ("pickle.load", "pickle.loads", "cloudpickle.load", "cloudpickle.loads",
                        "torch.jit.load", "joblib.load"):
                bad.append(f"{path}:{node.lineno} {name}")
            if name == "np.load" or name == "numpy.load":
                ap = _kw(node, "allow_pickle")
                if ap is not None and not (isinstance(ap, ast.Constant) and ap.value is False):
                    bad.append(f"{path}:{node.lineno} np.load(allow_pickle=...)")
    assert bad == []


def test_yaml_is_read_with_the_safe_loader_only(trees):
    unsafe = {"yaml.load", "yaml.load_all", "yaml.unsafe_load", "yaml.unsafe_load_all",
              "yaml.full_load", "yaml.full_load_all"}
    bad = [f"{path}:{node.lineno} {name}" for path, tree in trees.items()
           for name, node in _calls(tree) if name in unsafe]
    loaders = [f"{path}:{n.lineno}" for path, tree in trees.items() for n in ast.walk(tree)
               if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
               and n.value.id == "yaml" and n.attr in ("Loader", "UnsafeLoader", "FullLoader")]
    assert bad == [] and loaders == []


def test_no_shell_and_every_subprocess_gets_a_list(trees):
    bad = []
    spawners = {"subprocess.run", "subprocess.Popen", "subprocess.call", "subprocess.check_call",
                "subprocess.check_output"}
    for path, tree in trees.items():
        for name, node in _calls(tree):
            if name in ("os.system", "os.popen", "subprocess.getoutput",
                        "subprocess.getstatusoutput", "os.execl", "os.execlp", "os.spawnl"):
                bad.append(f"{path}:{node.lineno} {name}")
            shell = _kw(node, "shell")
            if shell is not None and not (isinstance(shell, ast.Constant) and not shell.value):
                bad.append(f"{path}:{node.lineno} shell=...")
            if name in spawners and node.args:
                arg = node.args[0]
                # a string (literal, f-string, concatenation, format) would be one program name
                # at best, a shell line at worst; lists and names bound to lists are fine
                if isinstance(arg, (ast.Constant, ast.JoinedStr)) or (
                        isinstance(arg, ast.BinOp) and isinstance(arg.op, (ast.Add, ast.Mod))
                        and not isinstance(arg.left, (ast.List, ast.Tuple))) or (
                        isinstance(arg, ast.Call) and getattr(arg.func, "attr", "") in
                        ("format", "join")):
                    bad.append(f"{path}:{node.lineno} {name}(<string>)")
    assert bad == [], bad


# ---------------------------------------------------------------------------------------------
# Behaviour: refused payloads never run


class _Payload:
    """Unpickling this creates `marker`: the observable sign that a loader ran code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_cache_entry_with_a_pickled_object_is_refused_and_rebuilt(tmp_path, caplog):
    from l2l import cache

    marker = tmp_path / "payload-ran"
    calls = []

    def build():
        calls.append(1)
        return {"w": torch.ones(2)}, {}

    _, first = cache.get_or_build(tmp_path / "c", "generator", {"k": 1}, build)
    weights = first.path / cache.WEIGHTS
    torch.save({"w": _Payload(marker)}, weights)  # what an attacker with cache access writes
    meta = json.loads((first.path / cache.META).read_text())
    meta["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()  # and a matching hash
    (first.path / cache.META).write_text(json.dumps(meta))

    state, again = cache.get_or_build(tmp_path / "c", "generator", {"k": 1}, build)
    assert not marker.exists(), "the cache loader ran pickled code"
    assert again.hit is False and len(calls) == 2 and torch.equal(state["w"], torch.ones(2))
    assert "unreadable" in caplog.text  # said why it rebuilt
    # and the rebuilt entry is plain tensors again
    assert torch.load(weights, weights_only=True)["w"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("where", ["spec", "trial config"])
def test_yaml_with_a_python_tag_is_refused_and_its_payload_never_runs(where, tmp_path):
    marker = tmp_path / "payload-ran"
    text = (f"name: x\nforget_set: {{classes: [5]}}\n"
            f"method: !!python/object/apply:builtins.open ['{marker}', 'w']\n")
    path = tmp_path / "in.yaml"
    path.write_text(text)
    if where == "spec":
        from sweeps.spec import SpecError, load_spec

        with pytest.raises(SpecError, match="could not determine a constructor for the tag"):
            load_spec(path)
    else:
        from l2l.cli import _load
        from l2l.errors import ConfigError

        with pytest.raises(ConfigError, match="YAML syntax error"):
            _load(path)
    assert not marker.exists()
    with pytest.raises(yaml.YAMLError):  # the loader both use
        yaml.safe_load(text)


def test_an_inception_weights_file_with_a_pickled_object_is_refused(tmp_path):
    pytest.importorskip("torch_fidelity")
    from l2l.features import InceptionFeatures

    marker = tmp_path / "payload-ran"
    weights = tmp_path / "weights-inception.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": _Payload(marker)}, weights)
    with pytest.raises(Exception):
        InceptionFeatures(weights)
    assert not marker.exists(), "loading the Inception weights ran pickled code"


def test_clip_weights_go_through_open_clips_weights_only_loader():
    """ClipFeatures passes the file to open_clip.create_model(pretrained=path): open_clip loads
    it with torch.load(weights_only=True) unless told otherwise, and l2l never tells it."""
    import inspect

    open_clip = pytest.importorskip("open_clip")
    from open_clip import factory

    assert inspect.signature(factory.load_checkpoint).parameters["weights_only"].default is True
    assert inspect.signature(open_clip.create_model).parameters["weights_only"].default is True
    tree = ast.parse((ROOT / "l2l" / "features.py").read_text())
    clip = next(n for n in ast.walk(tree)
                if isinstance(n, ast.ClassDef) and n.name == "ClipFeatures")
    overrides = [n.lineno for _, n in _calls(clip) if _kw(n, "weights_only") is not None]
    assert overrides == []


# ---------------------------------------------------------------------------------------------
# Network exposure: the MLflow server


def _server_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every `mlflow server` / `mlflow ui` command the project documents or
    runs: cluster.yaml, deploy/*.yaml, the docs, scripts and the test helpers."""
    found = []

    def from_shell(where: str, text: str) -> None:
        for line in text.splitlines():
            for part in re.split(r"[;&|]+", line):
                m = re.search(r"\bmlflow\s+(server|ui)\b[^`]*", part)  # to a closing `
                if m and not re.search(r"\b(pkill|pgrep)\b", part):  # a name, not a command
                    try:
                        argv = shlex.split(m.group(0).strip(" \\"))
                    except ValueError:  # prose around it
                        argv = m.group(0).split()
                    found.append((where, argv))

    def from_yaml(where: str, node) -> None:
        if isinstance(node, dict):
            for v in node.values():
                from_yaml(where, v)
        elif isinstance(node, list):
            if node[:2] in (["mlflow", "server"], ["mlflow", "ui"]):
                found.append((where, [str(x) for x in node]))
            for v in node:
                from_yaml(where, v)
        elif isinstance(node, str) and re.search(r"\bmlflow\s+(server|ui)\b", node):
            from_shell(where, node)

    for f in [ROOT / "cluster.yaml", *sorted((ROOT / "deploy").glob("*.yaml"))]:
        for doc in yaml.safe_load_all(f.read_text()):
            from_yaml(f.name if f.parent == ROOT else f"deploy/{f.name}", doc)
    for f in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
              *sorted((ROOT / "scripts").glob("*.sh"))]:
        from_shell(f.relative_to(ROOT).as_posix(), f.read_text())
    for f in sorted((ROOT / "tests").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.List) and any(
                    isinstance(e, ast.Constant) and e.value == "server" for e in node.elts):
                argv = [e.value if isinstance(e, ast.Constant) else "<expr>" for e in node.elts]
                if "--backend-store-uri" in argv:
                    found.append((f.relative_to(ROOT).as_posix(),
                                  ["mlflow", *argv[argv.index("server"):]]))
    return found


def _host(argv: list[str]) -> str | None:
    for i, a in enumerate(argv):
        if a in ("--host", "-h") and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--host="):
            return a.split("=", 1)[1]
    return None


def _allowed_hosts(argv: list[str]) -> list[str] | None:
    for i, a in enumerate(argv):
        if a == "--allowed-hosts" and i + 1 < len(argv):
            return [h.strip() for h in argv[i + 1].split(",")]
        if a.startswith("--allowed-hosts="):
            return [h.strip() for h in a.split("=", 1)[1].split(",")]
    return None


def test_mlflow_servers_bind_loopback_unless_a_cluster_config_says_otherwise():
    from mlflow.cli import server

    default = next(p.default for p in server.params if p.name == "host")
    assert default in LOOPBACK  # a command without --host binds loopback
    commands = _server_commands()
    wheres = {w for w, _ in commands}
    # the ones this project has: the head of cluster.yaml, the Kubernetes Deployment, the test
    # helper; and the browse commands of the docs
    assert {"cluster.yaml", "deploy/mlflow.yaml", "tests/conftest.py"} <= wheres, wheres
    for where, argv in commands:
        host = _host(argv) or default
        if host in LOOPBACK:
            continue
        # Reachable from other machines: only cluster configs, and only when written out.
        assert where in ("cluster.yaml", "deploy/mlflow.yaml"), (where, argv)
        assert _host(argv) is not None, (where, argv)


def test_exposed_servers_accept_the_host_names_their_clients_use():
    """MLflow 3.17 rejects requests whose Host header is not allowed (DNS-rebinding guard):
    default localhost and private IPs only. A server that listens beyond loopback must allow
    the names its clients put in MLFLOW_TRACKING_URI."""
    from mlflow.server.security_utils import get_default_allowed_hosts, is_allowed_host_header

    clients = {
        # cluster.yaml: MLFLOW_TRACKING_URI=http://$(hostname -I ...):5000, a VPC-private IP
        "cluster.yaml": ["10.0.12.34:5000", "172.31.5.6:5000", "localhost:5000"],
        # deploy/: the Service name, as raycluster.yaml and rayjob.yaml use it; port-forward
        "deploy/mlflow.yaml": ["l2l-mlflow:5000", "localhost:5000"],
    }
    for where, argv in _server_commands():
        if (_host(argv) or "127.0.0.1") in LOOPBACK:
            continue
        allowed = _allowed_hosts(argv) or get_default_allowed_hosts()
        for host in clients[where]:
            assert is_allowed_host_header(allowed, host), (where, host, argv)


def test_the_exposed_server_is_documented():
    text = (ROOT / "docs" / "cluster.md").read_text()
    assert "0.0.0.0" in text and "authentication" in text
