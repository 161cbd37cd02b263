"""A sweep's settings and its record, `<storage>/<sweep id>/sweep.json`, next to Tune's
experiment state: everything `l2l-sweep resume` needs to continue the sweep as it was started
(the spec as written, the runtime fields, the settings, the MLflow ids, the Ray address and the
identity version of its trial ids). No Ray import here.

Record formats: 1 (before identity versions: the trial ids are identity version 1), 2 (adds
`identity_version`), 3 (adds `kept_trials`: grid trials that had finished files in the results
before this sweep started, so not in its Tune state; `sweeps/finished.py`).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from contract.identity import IDENTITY_VERSION
from contract.storage import Location, locate
from sweeps.spec import SweepSpec, parse_spec

SWEEP_FILE = "sweep.json"
INJECT_ENV = "L2L_SWEEP_INJECT_FAILURES"
FORMAT = 3
LEGACY_IDENTITY_VERSION = 1  # a record without `identity_version`


@dataclass(frozen=True)
class SweepSettings:
    # Both as `contract.storage.locate` gives them: an absolute path or a URI (s3://...)
    results_dir: str
    storage_dir: str  # where Tune's experiments live (shared or object storage on a cluster)
    mlflow_uri: str | None
    artifact_dir: Path | None  # MLflow artifact root of a local store
    sweep_id: str
    code_version: str
    experiment: str
    address: str | None = None  # the Ray cluster it runs on (None: a local Ray)
    save_models: bool = False  # keep each unlearned model in <results>-models/
    # Fault injection for tests: unit -> how many of its first attempts fail ("t000-ab12cd34"
    # for a grid trial, "p001/seed=1" for a seed of a search point). Also from
    # $L2L_SWEEP_INJECT_FAILURES="unit:n,unit:n".
    inject_failures: dict[str, int] = field(default_factory=dict)

    @property
    def experiment_dir(self) -> Location:
        return locate(self.storage_dir) / self.sweep_id


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
                     spec_path: str | None, kept_trials: tuple[str, ...] = ()) -> None:
    d = settings.experiment_dir
    record = {
        "format": FORMAT, "sweep_id": settings.sweep_id, "kind": spec.kind,
        "identity_version": IDENTITY_VERSION, "spec_path": spec_path, "spec": spec.source,
        "runtime": runtime, "kept_trials": list(kept_trials),
        "settings": {k: (str(v) if isinstance(v, Path) else v)
                     for k, v in asdict(settings).items()},
        "experiment_id": experiment_id, "parent_run_id": parent_run_id,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    (d / SWEEP_FILE).write_text(json.dumps(record, indent=1, default=str))  # atomic


class SweepFileError(ValueError):
    """A sweep.json that cannot be resumed from; the message says why."""


_SETTING_TYPES = {"results_dir": str, "storage_dir": str, "mlflow_uri": (str, type(None)),
                  "artifact_dir": (str, type(None)), "sweep_id": str, "code_version": str,
                  "experiment": str, "address": (str, type(None)), "inject_failures": dict,
                  "save_models": bool}
_REQUIRED_SETTINGS = ("results_dir", "sweep_id", "code_version", "experiment")


def read_sweep_file(experiment_dir: Location | Path | str) -> SweepRecord:
    """The record of a sweep, checked whole: a missing, empty, truncated or hand-edited file,
    a field of the wrong type or a record written by a newer version is a SweepFileError
    naming the field, never a half-resumed sweep. A spec that no longer validates raises the
    spec's own error (SpecError)."""
    from contract.identity import KNOWN_VERSIONS
    from contract.inputs import InputError
    from contract.storage import read_text

    experiment_dir = locate(experiment_dir)
    path = experiment_dir / SWEEP_FILE
    try:
        text = read_text(path, SWEEP_FILE)
    except InputError as e:
        raise SweepFileError(str(e)) from None
    try:
        record = json.loads(text)
    except ValueError as e:
        raise SweepFileError(f"{SWEEP_FILE}: not valid JSON ({e.msg} at line {e.lineno})") \
            from None
    if not isinstance(record, dict):
        raise SweepFileError(f"{SWEEP_FILE}: expected a JSON object, got "
                             f"{type(record).__name__}")
    fmt = record.get("format", 1)
    if not isinstance(fmt, int) or isinstance(fmt, bool) or not 1 <= fmt <= FORMAT:
        raise SweepFileError(f"{SWEEP_FILE}: format {fmt!r} is not one this version reads "
                             f"(1 to {FORMAT}); resume it with the version that started it")
    version = record.get("identity_version", LEGACY_IDENTITY_VERSION)
    if version not in KNOWN_VERSIONS:
        raise SweepFileError(f"{SWEEP_FILE}: identity_version {version!r} unknown (known: "
                             f"{', '.join(map(str, KNOWN_VERSIONS))})")
    for key in ("spec", "runtime", "settings"):
        if not isinstance(record.get(key), dict):
            got = type(record[key]).__name__ if key in record else "nothing"
            raise SweepFileError(f"{SWEEP_FILE}: {key}: expected an object, got {got}")
    st = dict(record["settings"])
    unknown = set(st) - set(_SETTING_TYPES)
    if unknown:
        raise SweepFileError(f"{SWEEP_FILE}: settings.{sorted(unknown)[0]}: unknown field")
    for k in _REQUIRED_SETTINGS:
        if k not in st:
            raise SweepFileError(f"{SWEEP_FILE}: settings.{k}: missing")
    for k, v in st.items():
        if not isinstance(v, _SETTING_TYPES[k]):
            raise SweepFileError(f"{SWEEP_FILE}: settings.{k}: wrong type "
                                 f"{type(v).__name__}")
    st["artifact_dir"] = Path(st["artifact_dir"]) if st.get("artifact_dir") else None
    st["storage_dir"] = experiment_dir.parent.uri  # the directory may have moved
    # no trial cap: the sweep was accepted when it started (with its --max-trials)
    spec = parse_spec(record["spec"], record["runtime"], identity_version=version,
                      max_trials=None)
    for k in ("experiment_id", "parent_run_id"):
        if not isinstance(record.get(k), (str, type(None))):
            raise SweepFileError(f"{SWEEP_FILE}: {k}: expected a string")
    kept = record.get("kept_trials", [])
    if not isinstance(kept, list) or not all(isinstance(t, str) for t in kept):
        raise SweepFileError(f"{SWEEP_FILE}: kept_trials: expected a list of trial ids")
    if kept:  # they are not in the Tune state: the param space must not have them either
        known = {t.trial_id for t in spec.trials}
        if not set(kept) <= known:
            raise SweepFileError(f"{SWEEP_FILE}: kept_trials: {sorted(set(kept) - known)[0]} "
                                 "is not a trial of the spec")
        spec = replace(spec, trials=[t for t in spec.trials if t.trial_id not in set(kept)])
    return SweepRecord(fmt, spec, SweepSettings(**st), version,
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
