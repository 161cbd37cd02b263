"""MLflow: an experiment per study, a parent run per sweep, a child run per trial.

    sweep run (tags sweep_id, code_version, spec_name; the spec as an artifact)
    ├── trial run       one per grid trial: curated params, final metrics, artifacts
    └── point run       one per search point: sampled values, the objective per seed
        └── trial run   one per seed of the point

Only curated params and final metrics reach MLflow (not Tune's bookkeeping). The client API is
used throughout (no global "active run"), so trials in worker processes cannot interfere. The
same code talks to a sqlite file and to an `mlflow server` over HTTP.

Exactly one run per trial: a run is found again by its tags (`sweep_id` plus `trial_id` or
`point_id`) before one is created, so a retried or resumed trial reopens its own run instead of
leaving a second one behind.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

PARENT_TAG = "mlflow.parentRunId"
# Machine-specific paths: not part of what a trial is, so not params.
RUNTIME_PARAMS = ("cache_dir", "data_root")


def start_sweep(uri: str, experiment: str, sweep_id: str, tags: dict[str, str],
                artifact_root: Path | None, source: dict[str, Any] | None = None
                ) -> tuple[str, str]:
    """Creates (or reuses) the experiment and opens the sweep's parent run.
    Returns (experiment_id, parent_run_id)."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        # An absolute artifact root: trials run in other working directories (Ray trial dirs).
        loc = artifact_root.resolve().as_uri() if artifact_root else None
        exp_id = client.create_experiment(experiment, artifact_location=loc)
    else:
        exp_id = exp.experiment_id
    run = client.create_run(exp_id, run_name=sweep_id,
                            tags={"sweep_id": sweep_id, "kind": "sweep", **tags})
    if source is not None:
        client.log_dict(run.info.run_id, source, "spec.json")
    return exp_id, run.info.run_id


def reopen(uri: str, run_id: str) -> None:
    """A resumed sweep's parent run is RUNNING again until the sweep ends."""
    MlflowClient(uri).update_run(run_id, status="RUNNING")


def end_run(uri: str, run_id: str, ok: bool | str) -> None:
    status = ok if isinstance(ok, str) else ("FINISHED" if ok else "FAILED")
    MlflowClient(uri).set_terminated(run_id, status)


def end_running(uri: str, experiment_id: str, sweep_id: str, status: str) -> int:
    """Ends the runs of a sweep's trials that are still RUNNING (an interrupted sweep); returns
    how many. `resume` reopens them when it runs their trials again."""
    client = MlflowClient(uri)
    runs = client.search_runs([experiment_id], f"tags.sweep_id = '{sweep_id}' and "
                              "attributes.status = 'RUNNING'", max_results=5000)
    n = 0
    for r in runs:
        if r.data.tags.get("kind") != "sweep":
            client.set_terminated(r.info.run_id, status)
            n += 1
    return n


def run_status(uri: str, run_id: str) -> str:
    return MlflowClient(uri).get_run(run_id).info.status


def find_run(uri: str, experiment_id: str, key: dict[str, str]):
    """The run whose tags match `key` (e.g. sweep_id and trial_id), or None."""
    flt = " and ".join(f"tags.{k} = '{v}'" for k, v in sorted(key.items()))
    runs = MlflowClient(uri).search_runs([experiment_id], flt, max_results=2)
    return runs[0] if runs else None


def ensure_run(uri: str, experiment_id: str, parent_run_id: str, name: str,
               key: dict[str, str], tags: dict[str, str]) -> str:
    """The run of `key` (created, or reopened after a retry or a resume); returns its id."""
    client = MlflowClient(uri)
    tags = {PARENT_TAG: parent_run_id, **key, **tags}
    old = find_run(uri, experiment_id, key)
    if old is None:
        return client.create_run(experiment_id, run_name=name,
                                 tags={**tags, "attempts": "1"}).info.run_id
    run_id = old.info.run_id
    client.update_run(run_id, status="RUNNING")
    if "error" in old.data.tags:  # the error of an earlier attempt
        client.delete_tag(run_id, "error")
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
    client.set_tag(run_id, "attempts", str(int(old.data.tags.get("attempts", "1")) + 1))
    return run_id


def set_tags(uri: str, run_id: str, tags: dict[str, Any]) -> None:
    MlflowClient(uri).log_batch(run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])


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


def log_params_metrics(uri: str, run_id: str, params: dict[str, str],
                       metrics: dict[str, float], step: int = 0) -> None:
    """Params (logged once; logging the same value again after a retry is allowed) and
    metrics at `step`. Non-finite metric values are left out: MLflow cannot plot them."""
    ms = [Metric(k, float(v), 0, step) for k, v in metrics.items()
          if v is not None and math.isfinite(float(v))]
    MlflowClient(uri).log_batch(run_id, params=[Param(k, v) for k, v in params.items()],
                                metrics=ms)


def log_trial(uri: str, run_id: str, config: dict[str, Any], metrics: dict[str, float],
              artifacts: Iterable[Path]) -> None:
    """Curated params (the resolved trial config), final metrics and artifacts: the resolved
    config as config.json, the trial's sample grids / embeddings and its Parquet file."""
    log_params_metrics(uri, run_id, curated_params(config), metrics)
    client = MlflowClient(uri)
    client.log_dict(run_id, config, "config.json")
    for path in artifacts:
        if Path(path).is_file():
            client.log_artifact(run_id, str(path))
