"""Runs a validated sweep on Ray Tune: one Tune trial per grid point.

Each trial runs l2l's `run_trial`, writes its rows to one Parquet file and logs an MLflow child
run under the sweep's parent run. The driver prints a summary: trials, caches, where results are.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Before Ray is imported: no auth token warning on a local cluster (saves ~1.5 s a start), and
# no CSV/TensorBoard loggers in every trial directory (results go to Parquet and MLflow); the
# JSON logger is added back below because Tune reads its results from it.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

import ray  # noqa: E402
from ray import tune  # noqa: E402
from ray.tune.logger import JsonLoggerCallback  # noqa: E402

from l2l import experiment  # noqa: E402
from sweeps import tracking  # noqa: E402
from sweeps.progress import Progress  # noqa: E402
from sweeps.results import artifact_dir, trial_path, write_rows  # noqa: E402
from sweeps.spec import SweepSpec  # noqa: E402

log = logging.getLogger("sweeps")


@dataclass(frozen=True)
class SweepSettings:
    results_dir: Path
    storage_dir: Path  # Tune's experiment directory (shared storage on a cluster)
    mlflow_uri: str | None
    artifact_dir: Path | None
    sweep_id: str
    code_version: str
    experiment: str


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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def trainable(config: dict[str, Any]) -> None:
    """The Tune trainable: one trial, end to end. Also usable without Ray (tune.report aside)."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", force=True)
    ctx, trial = config["ctx"], config["trial"]
    cfg = experiment.parse_config(trial["config"])
    trial_id, uri = trial["trial_id"], ctx["mlflow_uri"]
    run_id = None
    if uri:
        run_id = tracking.start_trial(uri, ctx["experiment_id"], ctx["parent_run_id"], trial_id,
                                      {"sweep_id": ctx["sweep_id"], "config_hash": cfg.config_hash,
                                       "code_version": ctx["code_version"]})
    meta = {"sweep_id": ctx["sweep_id"], "trial_id": trial_id, "code_version": ctx["code_version"],
            "mlflow_run_id": run_id}
    path = trial_path(ctx["results_dir"], ctx["sweep_id"], trial_id)
    art = artifact_dir(ctx["results_dir"], ctx["sweep_id"], trial_id)
    meta["artifact_dir"] = str(art.relative_to(ctx["results_dir"]))
    try:
        result = experiment.run(cfg, artifact_dir=art)
    except Exception as e:
        # Record the failure where analysts look, then let Tune mark the trial as errored.
        msg = f"{type(e).__name__}: {e}"
        write_rows(path, [{**experiment.columns(cfg), **meta, "status": "error", "error": msg,
                           "metric": "error", "created_at": _now()}])
        if uri:
            tracking.end_run(uri, run_id, ok=False)
        log.error("trial %s failed: %s\n%s", trial_id, msg, traceback.format_exc())
        raise
    rows = [{**r, **meta, "status": "ok", "error": None, "created_at": _now()}
            for r in result.rows()]
    write_rows(path, rows)
    metrics = {f"{m.split}_{m.metric}": m.value for m in result.metrics}
    metrics.update(pretrain_seconds=result.pretrain_seconds,
                   unlearn_seconds=result.unlearn_seconds, eval_seconds=result.eval_seconds)
    if uri:
        tracking.log_trial(uri, run_id, cfg.to_dict(), metrics, [path])
        tracking.end_run(uri, run_id, ok=True)
    tune.report({**metrics,
                 "generator_cache_hit": result.caches["generator"]["hit"],
                 "classifier_cache_hit": result.caches["classifier"]["hit"],
                 "generator_cache_path": result.caches["generator"]["path"]})


def _gpu_fallback(spec: SweepSpec) -> dict[str, dict[str, float]]:
    """Per-generator resources; GPU requests become CPU-only, with a notice, on a cluster
    without GPUs, so the same spec runs on a laptop."""
    gpus = ray.cluster_resources().get("GPU", 0)
    out = {}
    for gen, res in spec.resources.items():
        if res["gpu"] > 0 and gpus == 0:
            print(f"notice: resources.{gen} asks for {res['gpu']:g} GPU but the Ray cluster has "
                  "none; running on the CPU", flush=True)
            res = {**res, "gpu": 0.0, "cpu": max(res["cpu"], 1.0)}
        out[gen] = res
    return out


def _bundle(res: dict[str, float]) -> tune.PlacementGroupFactory:
    b = {"CPU": res["cpu"]}
    if res["gpu"] > 0:
        b["GPU"] = res["gpu"]
    return tune.PlacementGroupFactory([b])


def run_sweep(spec: SweepSpec, settings: SweepSettings, address: str | None = None) -> int:
    """Runs every trial of `spec`; returns the number of failed trials."""
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=True,
                 configure_logging=False)
    resources = _gpu_fallback(spec)
    ctx = {"sweep_id": settings.sweep_id, "results_dir": str(settings.results_dir.resolve()),
           "mlflow_uri": settings.mlflow_uri, "code_version": settings.code_version,
           "experiment_id": None, "parent_run_id": None}
    if settings.mlflow_uri:
        ctx["experiment_id"], ctx["parent_run_id"] = tracking.start_sweep(
            settings.mlflow_uri, settings.experiment, settings.sweep_id,
            {"code_version": settings.code_version, "spec_name": spec.name,
             "n_trials": str(len(spec.trials))}, settings.artifact_dir)
    trials = [{"trial_id": t.trial_id, "config": t.config.to_dict()} for t in spec.trials]
    print(f"sweep {settings.sweep_id}: {len(trials)} trials", flush=True)

    def resources_for(config: dict[str, Any]):
        gen = config["trial"]["config"]["generator"]["name"]
        return _bundle(resources.get(gen, resources["default"]))

    tuner = tune.Tuner(
        tune.with_resources(trainable, resources_for),
        param_space={"trial": tune.grid_search(trials), "ctx": ctx},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=spec.max_concurrent_trials,
            trial_name_creator=lambda t: t.config["trial"]["trial_id"],
            trial_dirname_creator=lambda t: t.config["trial"]["trial_id"]),
        run_config=tune.RunConfig(
            name=settings.sweep_id, storage_path=str(settings.storage_dir.resolve()), verbose=0,
            failure_config=tune.FailureConfig(max_failures=0),
            callbacks=[Progress(len(trials)), JsonLoggerCallback()]),
    )
    ok = False
    try:
        grid = tuner.fit()
        ok = grid.num_errors == 0
    finally:  # the parent run never stays RUNNING, also on Ctrl-C or a driver error
        if settings.mlflow_uri:
            tracking.end_run(settings.mlflow_uri, ctx["parent_run_id"], ok=ok)
    _print_summary(grid, settings)
    return grid.num_errors


def _print_summary(grid, settings: SweepSettings) -> None:
    built = [r for r in grid if r.metrics and r.metrics.get("generator_cache_hit") is False]
    ok = [r for r in grid if r.error is None]
    print(f"\nsweep {settings.sweep_id}: {len(ok)} of {len(grid)} trials finished, "
          f"{grid.num_errors} failed")
    for r in grid:
        if r.error is not None:
            tid = (r.config or {}).get("trial", {}).get("trial_id", "?")
            print(f"  failed: {tid}: {str(r.error).strip().splitlines()[-1][:200]}")
    caches = {r.metrics.get("generator_cache_path") for r in ok if r.metrics}
    clf_built = sum(1 for r in ok if r.metrics and r.metrics.get("classifier_cache_hit") is False)
    built_paths = {r.metrics.get("generator_cache_path") for r in built}
    for p in sorted(c for c in caches if c):
        print(f"original model {p}: " + ("trained in this sweep" if p in built_paths
                                          else "reused from the cache, nothing retrained"))
    print("classifier: " + ("trained in this sweep" if clf_built else
                            "reused from the cache, nothing retrained"))
    print(f"Parquet results: {settings.results_dir.resolve() / f'sweep_id={settings.sweep_id}'}")
    if settings.mlflow_uri:
        print(f"MLflow store:    {settings.mlflow_uri} (experiment {settings.experiment!r})")
    print(f"Tune experiment: {settings.storage_dir.resolve() / settings.sweep_id}", flush=True)
