"""MLflow: an experiment per study, a parent run per sweep, a child run per trial.

Only curated params and final metrics reach MLflow (not Tune's bookkeeping). The client API is
used throughout (no global "active run"), so trials in worker processes cannot interfere.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

PARENT_TAG = "mlflow.parentRunId"


def default_tracking_uri(directory: Path) -> str:
    return f"sqlite:///{(directory / 'mlflow.db').resolve()}"


def start_sweep(uri: str, experiment: str, sweep_id: str, tags: dict[str, str],
                artifact_root: Path | None) -> tuple[str, str]:
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
    run = client.create_run(exp_id, run_name=sweep_id, tags={"sweep_id": sweep_id, **tags})
    return exp_id, run.info.run_id


def end_run(uri: str, run_id: str, ok: bool) -> None:
    MlflowClient(uri).set_terminated(run_id, "FINISHED" if ok else "FAILED")


def start_trial(uri: str, experiment_id: str, parent_run_id: str, trial_id: str,
                tags: dict[str, str]) -> str:
    run = MlflowClient(uri).create_run(
        experiment_id, run_name=trial_id,
        tags={PARENT_TAG: parent_run_id, "trial_id": trial_id, **tags})
    return run.info.run_id


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def log_trial(uri: str, run_id: str, config: dict[str, Any], metrics: dict[str, float],
              artifacts: list[Path]) -> None:
    """Curated params (the resolved trial config, flattened), final metrics and artifacts."""
    client = MlflowClient(uri)
    params = [Param(k, json.dumps(v) if isinstance(v, (list, tuple)) else str(v))
              for k, v in _flatten(config).items()]
    client.log_batch(run_id, params=params,
                     metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items()])
    client.log_dict(run_id, config, "config.json")
    for path in artifacts:
        client.log_artifact(run_id, str(path))
