"""MLflow, written by the sweep driver only: an experiment per study, a parent run per sweep, a
child run per trial.

    sweep run (tags sweep_id, code_version, spec_name; the spec as an artifact)
    ├── trial run       one per grid trial: curated params, final metrics, artifacts
    └── point run       one per search point: sampled values, the objective per seed
        └── trial run   one per seed of the point

Only curated params and final metrics reach MLflow (not Tune's bookkeeping). Workers never talk
to MLflow: the driver's callbacks (sweeps/callbacks.py) write a trial's run when its result or
its failure arrives, in a few batched calls. The same code talks to a sqlite file and to an
`mlflow server` over HTTP.

Exactly one run per trial: a run is keyed by its tags (`sweep_id`, `kind` and `trial_id` or
`point_id`). `Tracker` indexes a sweep's runs once (one query, also after a resume), so a
retried or resumed trial reopens its own run (`attempts` + 1) instead of adding a second one.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from contract.storage import local_copies

PARENT_TAG = "mlflow.parentRunId"
# Machine-specific paths: not part of what a trial is, so not params.
RUNTIME_PARAMS = ("cache_dir", "data_root")
ID_TAG = {"trial": "trial_id", "point": "point_id"}


def start_sweep(uri: str, experiment: str, sweep_id: str, tags: dict[str, str],
                artifact_root: Path | None, source: dict[str, Any] | None = None
                ) -> tuple[str, str]:
    """Creates (or reuses) the experiment and opens the sweep's parent run.
    Returns (experiment_id, parent_run_id)."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        # An absolute artifact root: the driver may run in another working directory later.
        loc = artifact_root.resolve().as_uri() if artifact_root else None
        exp_id = client.create_experiment(experiment, artifact_location=loc)
    else:
        exp_id = exp.experiment_id
    run = client.create_run(exp_id, run_name=sweep_id, tags={
        k: str(v) for k, v in {"sweep_id": sweep_id, "kind": "sweep", **tags}.items()})
    if source is not None:
        client.log_dict(run.info.run_id, source, "spec.json")
    return exp_id, run.info.run_id


def reopen(uri: str, run_id: str) -> None:
    """A resumed sweep's parent run is RUNNING again until the sweep ends."""
    MlflowClient(uri).update_run(run_id, status="RUNNING")


def end_run(uri: str, run_id: str, status: str) -> None:
    MlflowClient(uri).set_terminated(run_id, status)


def end_running(uri: str, experiment_id: str, sweep_id: str, status: str) -> int:
    """Ends the runs of a sweep's points and trials that are still RUNNING (an interrupted
    sweep); returns how many. `resume` reopens them when it runs their trials again."""
    client = MlflowClient(uri)
    query = f"tags.sweep_id = '{sweep_id}' and attributes.status = 'RUNNING'"
    running, token = [], None
    while True:  # every page first: ending runs while paging would shift the pages
        page = client.search_runs([experiment_id], query, max_results=5000, page_token=token)
        running += [r for r in page if r.data.tags.get("kind") != "sweep"]
        token = page.token
        if not token:
            break
    for r in running:
        client.set_terminated(r.info.run_id, status)
    return len(running)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def curated_params(config: dict[str, Any]) -> dict[str, str]:
    """The resolved trial config, flattened (`unlearn.lr`), without machine paths."""
    return {k: json.dumps(v) if isinstance(v, (list, tuple)) else str(v)
            for k, v in _flatten(config).items() if k not in RUNTIME_PARAMS}


@dataclass
class _Run:
    run_id: str
    attempts: int
    has_error: bool
    running: bool


class Tracker:
    """The driver's MLflow writer for one sweep: finds, opens and finishes its runs."""

    def __init__(self, uri: str, experiment_id: str, sweep_id: str):
        self.client = MlflowClient(uri)
        self.experiment_id = experiment_id
        self.sweep_id = sweep_id
        self._runs: dict[tuple[str, str], _Run] = {}

    def load(self) -> "Tracker":
        """Indexes the sweep's point and trial runs (runs of an earlier session or attempt)."""
        self._runs.clear()
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id],
                                           f"tags.sweep_id = '{self.sweep_id}'",
                                           max_results=5000, page_token=token)
            for r in page:
                kind = r.data.tags.get("kind")
                unit = r.data.tags.get(ID_TAG.get(kind, ""))
                if unit:
                    self._runs[(kind, unit)] = _Run(
                        r.info.run_id, int(r.data.tags.get("attempts", "1")),
                        "error" in r.data.tags, r.info.status == "RUNNING")
            token = page.token
            if not token:
                return self

    def run_id(self, kind: str, unit: str) -> str | None:
        run = self._runs.get((kind, unit))
        return run.run_id if run else None

    def is_running(self, kind: str, unit: str) -> bool:
        run = self._runs.get((kind, unit))
        return bool(run and run.running)

    def open(self, kind: str, unit: str, parent_run_id: str, tags: dict[str, Any]) -> str:
        """The run of a point or trial: created, or reopened after a failed attempt, a retry or
        a resume (attempts + 1, the earlier attempt's error tag removed). Returns its id."""
        key = {"sweep_id": self.sweep_id, "kind": kind, ID_TAG[kind]: unit}
        all_tags = {PARENT_TAG: parent_run_id, **key, **tags}
        run = self._runs.get((kind, unit))
        if run is None:
            run_id = self.client.create_run(
                self.experiment_id, run_name=unit,
                tags={k: str(v) for k, v in {**all_tags, "attempts": 1}.items()}).info.run_id
            self._runs[(kind, unit)] = _Run(run_id, 1, False, True)
            return run_id
        run.attempts += 1
        if run.has_error:
            self.client.delete_tag(run.run_id, "error")
            run.has_error = False
        self.client.update_run(run.run_id, status="RUNNING")
        run.running = True
        self.log(run.run_id, tags={**all_tags, "attempts": run.attempts})
        return run.run_id

    def log(self, run_id: str, params: dict[str, str] | None = None,
            metrics: dict[str, float] | None = None, tags: dict[str, Any] | None = None,
            step: int = 0) -> None:
        """One batch: params (logging the same value again after a retry is allowed), metrics
        at `step` (non-finite values left out: MLflow cannot plot them) and tags."""
        now = int(time.time() * 1000)
        ms = [Metric(k, float(v), now, step) for k, v in (metrics or {}).items()
              if v is not None and math.isfinite(float(v))]
        ps = [Param(k, v) for k, v in (params or {}).items()]
        ts = [RunTag(k, str(v)[:5000]) for k, v in (tags or {}).items()]
        if ms or ps or ts:
            self.client.log_batch(run_id, metrics=ms, params=ps, tags=ts)

    def finish(self, kind: str, unit: str, params: dict[str, str] | None = None,
               metrics: dict[str, float] | None = None, tags: dict[str, Any] | None = None,
               config: dict[str, Any] | None = None, artifacts: Iterable[str | Path] = (),
               ok: bool = True) -> None:
        """Logs what is given (one batch; the resolved config as config.json; files) and ends
        the run FINISHED, or FAILED with `ok=False`."""
        run = self._runs[(kind, unit)]
        self.log(run.run_id, params, metrics, tags)
        if config is not None:
            self.client.log_dict(run.run_id, config, "config.json")
        with local_copies(artifacts) as files:  # files on object storage: fetched first
            for path in files:
                self.client.log_artifact(run.run_id, str(path))
        self.client.set_terminated(run.run_id, "FINISHED" if ok else "FAILED")
        run.running = False
        run.has_error = run.has_error or bool(tags and "error" in tags)

    def fail(self, kind: str, unit: str, message: str) -> None:
        self.finish(kind, unit, tags={"error": message}, ok=False)
