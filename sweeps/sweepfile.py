"""A sweep's settings and its record, `<storage>/<sweep id>/sweep.json`, next to Tune's
experiment state: everything `l2l-sweep resume` needs to continue the sweep as it was started
(the spec as written, the runtime fields, the settings, the MLflow ids, the Ray address and the
identity version of its trial ids). No Ray import here.

Record formats: 1 (before identity versions: the trial ids are identity version 1), 2 (adds
`identity_version`).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from contract.identity import IDENTITY_VERSION
from sweeps.spec import SweepSpec, parse_spec

SWEEP_FILE = "sweep.json"
INJECT_ENV = "L2L_SWEEP_INJECT_FAILURES"
FORMAT = 2
LEGACY_IDENTITY_VERSION = 1  # a record without `identity_version`


@dataclass(frozen=True)
class SweepSettings:
    results_dir: Path
    storage_dir: Path  # Tune's experiment directory (shared storage on a cluster)
    mlflow_uri: str | None
    artifact_dir: Path | None  # MLflow artifact root of a local store
    sweep_id: str
    code_version: str
    experiment: str
    address: str | None = None  # the Ray cluster it runs on (None: a local Ray)
    # Fault injection for tests: unit -> how many of its first attempts fail ("t000-ab12cd34"
    # for a grid trial, "p001/seed=1" for a seed of a search point). Also from
    # $L2L_SWEEP_INJECT_FAILURES="unit:n,unit:n".
    inject_failures: dict[str, int] = field(default_factory=dict)

    @property
    def experiment_dir(self) -> Path:
        return self.storage_dir.resolve() / self.sweep_id


@dataclass(frozen=True)
class SweepRecord:
    format: int
    spec: SweepSpec
    settings: SweepSettings
    identity_version: int
    experiment_id: str | None
    parent_run_id: str | None


def code_version() -> str:
    """The git commit of this checkout (`-dirty` when it has changes), else the package version."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=here, text=True,
                             capture_output=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               text=True, capture_output=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version
        try:
            return version("l2l-unlearning")
        except PackageNotFoundError:
            return "unknown"


def parse_injections(text: str | None) -> dict[str, int]:
    out = {}
    for part in (text or "").split(","):
        if part.strip():
            unit, _, n = part.strip().rpartition(":")
            out[unit] = int(n)
    return out


def write_sweep_file(settings: SweepSettings, spec: SweepSpec, experiment_id: str | None,
                     parent_run_id: str | None, runtime: dict[str, Any],
                     spec_path: str | None) -> None:
    d = settings.experiment_dir
    d.mkdir(parents=True, exist_ok=True)
    record = {
        "format": FORMAT, "sweep_id": settings.sweep_id, "kind": spec.kind,
        "identity_version": IDENTITY_VERSION, "spec_path": spec_path, "spec": spec.source,
        "runtime": runtime,
        "settings": {**{k: (str(v) if isinstance(v, Path) else v)
                        for k, v in asdict(settings).items()},
                     "results_dir": str(settings.results_dir.resolve()),
                     "storage_dir": str(settings.storage_dir.resolve())},
        "experiment_id": experiment_id, "parent_run_id": parent_run_id,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    tmp = d / f".{SWEEP_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(tmp, d / SWEEP_FILE)


def read_sweep_file(experiment_dir: Path) -> SweepRecord:
    record = json.loads((experiment_dir / SWEEP_FILE).read_text())
    st = dict(record["settings"])
    for k in ("results_dir", "storage_dir", "artifact_dir"):
        st[k] = Path(st[k]) if st.get(k) else None
    st["storage_dir"] = experiment_dir.resolve().parent  # the directory may have moved
    version = record.get("identity_version", LEGACY_IDENTITY_VERSION)
    spec = parse_spec(record["spec"], record["runtime"], identity_version=version)
    return SweepRecord(record.get("format", 1), spec, SweepSettings(**st), version,
                       record.get("experiment_id"), record.get("parent_run_id"))


def pick_address(given: str | None, recorded: str | None) -> tuple[str | None, str]:
    """The Ray address a resume connects to, and where it came from: --address, then
    $RAY_ADDRESS, then the one the sweep recorded; none of them: a new local Ray."""
    if given:
        return given, "--address"
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"], "$RAY_ADDRESS"
    if recorded:
        return recorded, f"recorded in {SWEEP_FILE}"
    return None, "a new local Ray, as the sweep was started"
