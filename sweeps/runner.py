"""Runs a validated sweep on Ray Tune, and resumes an interrupted one.

Grid: one Tune trial per grid point. Search: one Tune trial per point that Optuna samples; it
runs every seed of the spec in turn, reports the objective averaged over the seeds done after
each (so ASHA can stop a poor point between seeds) and checkpoints which seeds are done (so a
retried or resumed point skips them). Every (point, seed) and every grid point is a *trial* of
the result schema: it writes its rows to one Parquet file (named by its trial id, written
atomically, so a re-run replaces it) and has one MLflow run (found again by its tags).

The driver writes `<storage>/<sweep id>/sweep.json` next to Tune's experiment state, so that
`l2l-sweep resume` can restore the sweep with everything it was started with.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import tempfile
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Before Ray is imported: no auth token warning on a local cluster (saves ~1.5 s a start), and
# no CSV/TensorBoard loggers in every trial directory (results go to Parquet and MLflow); the
# JSON logger is added back below because Tune reads its results from it.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
# Tune's own tables and boxes: the Progress callback prints one line per event instead.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# A search point checkpoints after every seed and each checkpoint saves the experiment state
# (CheckpointConfig(num_to_keep=1)), on purpose: a resume then knows every finished seed.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")

import ray  # noqa: E402
from ray import tune  # noqa: E402
from ray.tune.logger import JsonLoggerCallback  # noqa: E402

from l2l import experiment  # noqa: E402
from sweeps import plan, tracking  # noqa: E402
from sweeps.progress import Progress, trial_label  # noqa: E402
from sweeps.results import artifact_dir, trial_path, write_rows  # noqa: E402
from sweeps.spec import SweepSpec, parse_spec, point_config  # noqa: E402

log = logging.getLogger("sweeps")
SWEEP_FILE = "sweep.json"
INJECT_ENV = "L2L_SWEEP_INJECT_FAILURES"


@dataclass(frozen=True)
class SweepSettings:
    results_dir: Path
    storage_dir: Path  # Tune's experiment directory (shared storage on a cluster)
    mlflow_uri: str | None
    artifact_dir: Path | None  # MLflow artifact root of a local store
    sweep_id: str
    code_version: str
    experiment: str
    address: str | None = None
    # Fault injection for tests: unit -> how many of its first attempts fail ("t000-ab12cd34"
    # for a grid trial, "p001/seed=1" for a seed of a search point). Also from
    # $L2L_SWEEP_INJECT_FAILURES="unit:n,unit:n".
    inject_failures: dict[str, int] = field(default_factory=dict)

    @property
    def experiment_dir(self) -> Path:
        return self.storage_dir.resolve() / self.sweep_id


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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# ----------------------------------------------------------------------------------------------
# Inside a trial (a Ray worker process)


def _node_id() -> str | None:
    try:
        return ray.get_runtime_context().get_node_id()
    except Exception:  # not in a Ray worker (a plain-Python call)
        return None


def _maybe_fail(ctx: dict[str, Any], unit: str) -> None:
    """Injected failures (tests): the first n attempts of `unit` raise."""
    n = dict(ctx.get("inject_failures", [])).get(unit, 0)
    if not n:
        return
    counter = (Path(ctx["results_dir"]) / "artifacts" / f"sweep_id={ctx['sweep_id']}" /
               ".attempts" / unit.replace("/", "_"))
    counter.parent.mkdir(parents=True, exist_ok=True)
    attempt = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempt))
    if attempt <= n:
        raise RuntimeError(f"injected failure of {unit} (attempt {attempt} of {n} that fail)")


def error_row(cfg, meta: dict[str, Any], msg: str) -> dict[str, Any]:
    """The one row of a trial that failed: its config's columns, no metric value."""
    return {**experiment.columns(cfg), **meta, "status": "error", "error": msg,
            "metric": "error", "created_at": _now()}


def seed_trial_id(point_id: str, cfg) -> str:
    """The trial id of one seed of a search point (the same on every retry of the point)."""
    return f"{point_id}-{cfg.config_hash[:8]}"


def run_unit(ctx: dict[str, Any], trial_id: str, config: dict[str, Any],
             parent_run_id: str | None, tags: dict[str, str] | None = None,
             unit: str | None = None) -> tuple[dict[str, float], Any, str | None]:
    """One trial of the result schema: l2l's trial, its Parquet file and its MLflow run.
    Returns (final metrics, l2l's result, MLflow run id). On failure writes an error row,
    marks the run FAILED and raises."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", force=True)
    cfg = experiment.parse_config(config)
    uri = ctx["mlflow_uri"]
    run_id = None
    if uri:
        run_id = tracking.ensure_run(
            uri, ctx["experiment_id"], parent_run_id, trial_id,
            key={"sweep_id": ctx["sweep_id"], "kind": "trial", "trial_id": trial_id},
            tags={"config_hash": cfg.config_hash,
                  "code_version": ctx["code_version"], "family": experiment.family(cfg),
                  "generator": cfg.generator.name, "method": cfg.method,
                  "ray_node_id": _node_id() or "", **(tags or {})})
    meta = {"sweep_id": ctx["sweep_id"], "trial_id": trial_id, "code_version": ctx["code_version"],
            "mlflow_run_id": run_id}
    path = trial_path(ctx["results_dir"], ctx["sweep_id"], trial_id)
    art = artifact_dir(ctx["results_dir"], ctx["sweep_id"], trial_id)
    meta["artifact_dir"] = str(art.relative_to(ctx["results_dir"]))
    try:
        _maybe_fail(ctx, unit or trial_id)
        result = experiment.run(cfg, artifact_dir=art)
    except Exception as e:
        # Record the failure where analysts look, then let Tune retry or mark the trial errored.
        msg = f"{type(e).__name__}: {e}"
        write_rows(path, [error_row(cfg, meta, msg)])
        if uri:
            tracking.set_tags(uri, run_id, {"error": msg})
            tracking.end_run(uri, run_id, ok=False)
        log.error("trial %s failed: %s\n%s", trial_id, msg, traceback.format_exc())
        raise
    rows = [{**r, **meta, "status": "ok", "error": None, "created_at": _now()}
            for r in result.rows()]
    write_rows(path, rows)
    metrics = {f"{m.split}_{m.metric}": m.value for m in result.metrics}
    for k in ("pretrain_seconds", "unlearn_seconds", "eval_seconds", "peak_memory_mb"):
        if getattr(result, k) is not None:
            metrics[k] = getattr(result, k)
    if uri:
        files = [Path(p) for p in result.artifacts.values()]
        tracking.log_trial(uri, run_id, cfg.to_dict(), metrics, [*files, path])
        tracking.end_run(uri, run_id, ok=True)
    return metrics, result, run_id


def _cache_metrics(result) -> dict[str, Any]:
    caches = result.caches
    out = {}
    for kind in ("generator", "classifier"):
        if kind in caches:
            out[f"{kind}_cache_hit"] = caches[kind].get("hit")
            out[f"{kind}_cache_path"] = caches[kind].get("path")
    return out


def grid_trial(config: dict[str, Any]) -> None:
    """The Tune trainable of a grid point: one l2l trial, end to end. A trial is one function
    call with no useful intermediate state (the expensive original model is cached on disk),
    so it reports once, at the end, with no checkpoint: a retried trial starts over."""
    ctx, trial = config["ctx"], config["trial"]
    metrics, result, run_id = run_unit(ctx, trial["trial_id"], trial["config"],
                                       ctx["parent_run_id"])
    # Last statement: Tune may stop the function at its final report.
    tune.report({**metrics, **_cache_metrics(result), "mlflow_run_id": run_id,
                 "node_id": _node_id()})


def objective(metrics: dict[str, float], weights: list[list]) -> float:
    """Sum of weight x metric over the spec's (split, metric, weight) triples."""
    total = 0.0
    for split, metric, w in weights:
        key = f"{split}_{metric}"
        if key not in metrics:
            raise KeyError(f"search.metric.{split}.{metric}: the trial has no such metric "
                           f"(it has: {', '.join(sorted(metrics))})")
        total += w * metrics[key]
    return total


def _load_state() -> dict[str, Any]:
    ckpt = tune.get_checkpoint()
    if ckpt is None:
        return {"seeds": []}
    with ckpt.as_directory() as d:
        return json.loads((Path(d) / "point.json").read_text())


def search_point(config: dict[str, Any]) -> None:
    """The Tune trainable of a search point: every seed in turn, each a trial of its own.

    After each seed it reports the objective averaged over the seeds done so far, with a
    checkpoint listing them: ASHA compares points after the same number of seeds, and a retried
    or resumed point continues with its next seed instead of starting over."""
    ctx, point, seeds = config["ctx"], config["point"], config["seeds"]
    point_id = tune.get_context().get_trial_name()
    uri = ctx["mlflow_uri"]
    done = _load_state()["seeds"]
    point_run = None
    if uri:
        point_run = tracking.ensure_run(
            uri, ctx["experiment_id"], ctx["parent_run_id"], point_id,
            key={"sweep_id": ctx["sweep_id"], "kind": "point", "point_id": point_id},
            tags={"code_version": ctx["code_version"]})
        tracking.log_params_metrics(uri, point_run, {
            **{f"space.{k}": str(v) for k, v in point.items()},
            "seeds": json.dumps(seeds)}, {})
    if done and len(done) == len(seeds):  # resumed after its last seed: only the report is due
        if uri:
            tracking.end_run(uri, point_run, ok=True)
        _report_point(done, point_run)
        return
    for seed in seeds[len(done):]:
        cfg_dict = point_config(config["base"], point, seed)
        trial_id = seed_trial_id(point_id, experiment.parse_config(cfg_dict))
        try:
            metrics, _, _ = run_unit(ctx, trial_id, cfg_dict, point_run,
                                     tags={"point_id": point_id}, unit=f"{point_id}/seed={seed}")
            value = objective(metrics, ctx["objective"])
        except Exception as e:
            if uri:
                tracking.set_tags(uri, point_run, {"error": f"{type(e).__name__}: {e}"})
                tracking.end_run(uri, point_run, ok=False)
            raise
        done.append({"seed": seed, "trial_id": trial_id, "objective": value,
                     "metrics": metrics})
        mean, means = _point_means(done)
        if uri:
            tracking.log_params_metrics(uri, point_run, {}, {"objective": mean, **means},
                                        step=len(done))
            tracking.set_tags(uri, point_run, {"seeds_done": len(done)})
            if len(done) == len(seeds):  # before the report: Tune may stop the function there
                tracking.end_run(uri, point_run, ok=True)
        _report_point(done, point_run)


def _point_means(done: list[dict[str, Any]]) -> tuple[float, dict[str, float]]:
    """The objective and every metric, averaged over the seeds done."""
    mean = sum(d["objective"] for d in done) / len(done)
    keys = set.intersection(*(set(d["metrics"]) for d in done))
    return mean, {k: sum(d["metrics"][k] for d in done) / len(done) for k in sorted(keys)}


def _report_point(done: list[dict[str, Any]], point_run: str | None) -> None:
    mean, means = _point_means(done)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "point.json").write_text(json.dumps({"seeds": done}))
        tune.report({"objective": mean, "seeds_done": len(done), "point_run_id": point_run,
                     "trial_ids": [d["trial_id"] for d in done], "node_id": _node_id(),
                     **{f"mean_{k}": v for k, v in means.items()}},
                    checkpoint=tune.Checkpoint.from_directory(tmp))


# ----------------------------------------------------------------------------------------------
# The driver


class Finalizer(tune.Callback):
    """Driver side: every trial ends with a terminal MLflow run and a Parquet file, also when
    its worker process died (no Python exception to catch there) or ASHA stopped it."""

    def __init__(self, ctx: dict[str, Any], search: dict[str, Any] | None):
        self.ctx = ctx
        self.search = search  # {"base": ..., "seeds": [...]} for a search

    def on_trial_complete(self, iteration, trials, trial, **info):
        uri, res = self.ctx["mlflow_uri"], trial.last_result or {}
        run_id = res.get("point_run_id") if self.search else res.get("mlflow_run_id")
        if not uri or not run_id:
            return
        try:
            if tracking.run_status(uri, run_id) == "RUNNING":
                if self.search and res.get("seeds_done", 0) < len(self.search["seeds"]):
                    tracking.set_tags(uri, run_id, {"stopped_early": "true"})  # by ASHA
                tracking.end_run(uri, run_id, ok=True)
        except Exception as e:  # tracking trouble must not stop the sweep
            log.warning("could not finish the MLflow run of %s: %s", trial_label(trial), e)

    def on_trial_error(self, iteration, trials, trial, **info):
        err = trial.get_error()
        msg = str(err).strip().splitlines()[-1][:500] if err else "the trial failed"
        try:
            self._record_failure(trial, msg)
        except Exception as e:
            log.warning("could not record the failure of %s: %s", trial_label(trial), e)

    def _record_failure(self, trial, msg: str) -> None:
        ctx, uri = self.ctx, self.ctx["mlflow_uri"]
        cfg = trial.config or {}
        if self.search:
            done = (trial.last_result or {}).get("seeds_done", 0)
            seeds = cfg.get("seeds", [])
            if done >= len(seeds):
                return
            unit_cfg = point_config(cfg["base"], cfg["point"], seeds[done])
            trial_id = seed_trial_id(trial_label(trial), experiment.parse_config(unit_cfg))
            key = {"sweep_id": ctx["sweep_id"], "kind": "point", "point_id": trial_label(trial)}
        else:
            unit_cfg, trial_id = cfg["trial"]["config"], cfg["trial"]["trial_id"]
            key = {"sweep_id": ctx["sweep_id"], "kind": "trial", "trial_id": trial_id}
        path = trial_path(ctx["results_dir"], ctx["sweep_id"], trial_id)
        if not path.exists():  # the worker died before it could write its error row
            meta = {"sweep_id": ctx["sweep_id"], "trial_id": trial_id,
                    "code_version": ctx["code_version"], "mlflow_run_id": None,
                    "artifact_dir": None}
            write_rows(path, [error_row(experiment.parse_config(unit_cfg), meta, msg)])
        if uri:
            for k in ([key] + ([{"sweep_id": ctx["sweep_id"], "kind": "trial",
                                 "trial_id": trial_id}] if self.search else [])):
                run = tracking.find_run(uri, ctx["experiment_id"], k)
                if run is not None and run.info.status == "RUNNING":
                    tracking.set_tags(uri, run.info.run_id, {"error": msg})
                    tracking.end_run(uri, run.info.run_id, ok=False)


def _init_ray(address: str | None) -> None:
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=True,
                 configure_logging=False)


def _resources_fn(spec: SweepSpec):
    """Per-trial resources after the GPU fallback (decided from the cluster Ray runs on)."""
    gpus = ray.cluster_resources().get("GPU", 0)
    resources, notices = plan.effective_resources(spec.resources, gpus)
    for n in notices:
        print(n, flush=True)

    def resources_for(config: dict[str, Any]):
        trial_cfg = config["trial"]["config"] if "trial" in config else \
            point_config(config["base"], config["point"], config["seeds"][0])
        res = plan.pick(resources, plan.generator_of(trial_cfg))
        bundle = {"CPU": res["cpu"]}
        if res["gpu"] > 0:
            bundle["GPU"] = res["gpu"]
        return tune.PlacementGroupFactory([bundle])

    return resources_for


def _trainable(spec: SweepSpec, resources_for):
    fn = search_point if spec.search else grid_trial
    return tune.with_resources(fn, resources_for)


def _point_name(trial) -> str:
    # experiment_tag starts with the search's running count (1-based): p000, p001, ...
    return f"p{int(trial.experiment_tag.split('_')[0]) - 1:03d}"


def search_space(spec: SweepSpec) -> dict[str, Any]:
    """The spec's search space as Tune domains (randint's high end included, as in the spec)."""
    dist = {"loguniform": lambda a: tune.loguniform(*a), "uniform": lambda a: tune.uniform(*a),
            "randint": lambda a: tune.randint(a[0], a[1] + 1),
            "choice": lambda a: tune.choice(list(a))}
    return {p.name: dist[p.kind](p.args) for p in spec.search.space}


def _tuner(spec: SweepSpec, settings: SweepSettings, ctx: dict[str, Any], resources_for):
    callbacks = [Progress(len(spec.trials) if not spec.search else spec.search.num_samples,
                          "trials" if not spec.search else "points",
                          len(spec.search.seeds) if spec.search else None, spec.max_failures),
                 Finalizer(ctx, {"seeds": list(spec.search.seeds)} if spec.search else None),
                 JsonLoggerCallback()]
    run_config = tune.RunConfig(
        name=settings.sweep_id, storage_path=str(settings.storage_dir.resolve()), verbose=0,
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=callbacks)
    if not spec.search:
        trials = [{"trial_id": t.trial_id, "config": t.config.to_dict()} for t in spec.trials]
        return tune.Tuner(
            _trainable(spec, resources_for),
            param_space={"trial": tune.grid_search(trials), "ctx": ctx},
            tune_config=tune.TuneConfig(
                max_concurrent_trials=spec.max_concurrent_trials, reuse_actors=True,
                trial_name_creator=trial_label, trial_dirname_creator=trial_label),
            run_config=run_config)

    import optuna
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "A new study created ..."
    s = spec.search
    searcher = ConcurrencyLimiter(
        OptunaSearch(sampler=optuna.samplers.TPESampler(seed=s.sampler_seed)),
        max_concurrent=s.max_concurrent)
    scheduler = FIFOScheduler()
    if s.asha:
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=len(s.seeds),
                                  grace_period=s.asha["grace_period"],
                                  reduction_factor=s.asha["reduction_factor"])
    return tune.Tuner(
        _trainable(spec, resources_for),
        param_space={"ctx": ctx, "base": s.base, "seeds": list(s.seeds),
                     "point": search_space(spec)},
        tune_config=tune.TuneConfig(
            metric="objective", mode=s.mode, num_samples=s.num_samples, search_alg=searcher,
            scheduler=scheduler, reuse_actors=True,
            trial_name_creator=_point_name, trial_dirname_creator=_point_name),
        run_config=run_config)


def _write_sweep_file(settings: SweepSettings, spec: SweepSpec, ctx: dict[str, Any],
                      runtime: dict[str, Any], spec_path: str | None) -> None:
    d = settings.experiment_dir
    d.mkdir(parents=True, exist_ok=True)
    record = {
        "format": 1, "sweep_id": settings.sweep_id, "kind": spec.kind, "spec_path": spec_path,
        "spec": spec.source, "runtime": runtime,
        "settings": {**{k: (str(v) if isinstance(v, Path) else v)
                        for k, v in asdict(settings).items()},
                     "results_dir": str(settings.results_dir.resolve()),
                     "storage_dir": str(settings.storage_dir.resolve())},
        "experiment_id": ctx["experiment_id"], "parent_run_id": ctx["parent_run_id"],
        "created_at": _now().isoformat(),
    }
    tmp = d / f".{SWEEP_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(tmp, d / SWEEP_FILE)


def read_sweep_file(experiment_dir: Path) -> tuple[SweepSpec, SweepSettings, dict[str, Any]]:
    record = json.loads((experiment_dir / SWEEP_FILE).read_text())
    st = dict(record["settings"])
    for k in ("results_dir", "storage_dir", "artifact_dir"):
        st[k] = Path(st[k]) if st.get(k) else None
    st["storage_dir"] = experiment_dir.resolve().parent  # the directory may have moved
    settings = SweepSettings(**st)
    spec = parse_spec(record["spec"], record["runtime"])
    return spec, settings, record


def run_sweep(spec: SweepSpec, settings: SweepSettings, address: str | None = None,
              runtime: dict[str, Any] | None = None, spec_path: str | None = None) -> int:
    """Runs every trial of `spec`; returns the number of failed trials (-1: interrupted)."""
    _init_ray(address)
    resources_for = _resources_fn(spec)
    ctx = {"sweep_id": settings.sweep_id, "results_dir": str(settings.results_dir.resolve()),
           "mlflow_uri": settings.mlflow_uri, "code_version": settings.code_version,
           "experiment_id": None, "parent_run_id": None,
           # pairs, not a mapping: Tune flattens config keys on "/"
           "inject_failures": sorted({**parse_injections(os.environ.get(INJECT_ENV)),
                                      **settings.inject_failures}.items())}
    if spec.search:
        ctx["objective"] = [[sp, m, w] for (sp, m), w in spec.search.objective.items()]
    if settings.mlflow_uri:
        n = (f"{spec.search.num_samples} points x {len(spec.search.seeds)} seeds"
             if spec.search else str(len(spec.trials)))
        ctx["experiment_id"], ctx["parent_run_id"] = tracking.start_sweep(
            settings.mlflow_uri, settings.experiment, settings.sweep_id,
            {"code_version": settings.code_version, "spec_name": spec.name, "n_trials": n,
             "sweep_kind": spec.kind}, settings.artifact_dir, spec.source)
    _write_sweep_file(settings, spec, ctx, runtime or {}, spec_path)
    if spec.search:
        s = spec.search
        print(f"sweep {settings.sweep_id}: search, {s.num_samples} points x {len(s.seeds)} seeds "
              f"({s.objective_text()}; at most {s.max_concurrent} points at a time"
              f"{', ASHA over seeds' if s.asha else ''})", flush=True)
    else:
        print(f"sweep {settings.sweep_id}: {len(spec.trials)} trials", flush=True)
    tuner = _tuner(spec, settings, ctx, resources_for)
    return _fit(tuner, spec, settings, ctx)


def resume_sweep(experiment_dir: Path, address: str | None = None) -> int:
    """Continues an interrupted sweep (Ctrl-C, a killed driver) where it stopped: finished
    trials stay, unfinished and failed ones run again (a search point from its checkpoint)."""
    spec, settings, record = read_sweep_file(experiment_dir)
    _init_ray(address)
    resources_for = _resources_fn(spec)
    ctx = {"sweep_id": settings.sweep_id, "mlflow_uri": settings.mlflow_uri,
           "parent_run_id": record["parent_run_id"], "experiment_id": record["experiment_id"]}
    before = _states(experiment_dir)
    unit = "points" if spec.search else "trials"
    failed = f", {before['ERROR']} failed (they run again)" if before.get("ERROR") else ""
    expected = spec.search.num_samples if spec.search else len(spec.trials)
    print(f"resuming sweep {settings.sweep_id}: {before.get('TERMINATED', 0)} of {expected} "
          f"{unit} finished{failed}; Tune experiment {experiment_dir}", flush=True)
    now = code_version()
    if now != settings.code_version:
        print(f"notice: the code is now {now}; the sweep started with {settings.code_version} "
              "and its rows keep that version", flush=True)
    if settings.mlflow_uri:
        tracking.reopen(settings.mlflow_uri, record["parent_run_id"])
    tuner = tune.Tuner.restore(str(experiment_dir), _trainable(spec, resources_for),
                               resume_errored=True)
    return _fit(tuner, spec, settings, ctx)


def _states(experiment_dir: Path) -> dict[str, int]:
    """Trial states of a Tune experiment, read from its saved state."""
    out: dict[str, int] = {}
    for t in tune.ExperimentAnalysis(str(experiment_dir)).trials:
        out[t.status] = out.get(t.status, 0) + 1
    return out


def _fit(tuner, spec: SweepSpec, settings: SweepSettings, ctx: dict[str, Any]) -> int:
    status = "FAILED"
    try:
        grid = tuner.fit()
        trials = tune.ExperimentAnalysis(str(settings.experiment_dir)).trials
        unfinished = [t for t in trials if t.status not in ("TERMINATED", "ERROR")]
        expected = spec.search.num_samples if spec.search else len(spec.trials)
        interrupted = bool(unfinished) or len(trials) < expected
        failed = sum(1 for t in trials if t.status == "ERROR")
        status = "KILLED" if interrupted else ("FINISHED" if not failed else "FAILED")
    except KeyboardInterrupt:  # a second Ctrl-C: Tune skipped its last save
        status = "KILLED"
        raise
    finally:  # the parent run never stays RUNNING, also on a driver error
        if settings.mlflow_uri:
            if status == "KILLED":  # runs of stopped trials: reopened by `resume`
                tracking.end_running(settings.mlflow_uri, ctx["experiment_id"],
                                     settings.sweep_id, "KILLED")
            tracking.end_run(settings.mlflow_uri, ctx["parent_run_id"], ok=status)
    _print_summary(grid, trials, expected, spec, settings)
    if interrupted:
        print(f"\ninterrupted: {len(unfinished) + expected - len(trials)} of {expected} "
              f"{'points' if spec.search else 'trials'} unfinished. Continue with:\n"
              f"  l2l-sweep resume {settings.sweep_id} --storage {settings.storage_dir}",
              flush=True)
        return -1
    return failed


def _print_summary(grid, trials, expected: int, spec: SweepSpec, settings: SweepSettings) -> None:
    results = [r for r in grid]
    ok = [r for r in results if r.error is None and r.metrics]
    failed = [t for t in trials if t.status == "ERROR"]
    unit = "points" if spec.search else "trials"
    done = sum(1 for t in trials if t.status == "TERMINATED")
    print(f"\nsweep {settings.sweep_id}: {done} of {expected} {unit} finished, "
          f"{len(failed)} failed")
    for t in failed:
        err = t.get_error()
        line = str(err).strip().splitlines()[-1][:200] if err else "?"
        print(f"  failed: {trial_label(t)}: {line}")
    if spec.search:
        scored = [r for r in ok if "objective" in r.metrics]
        # Only points that ran every seed compete: a mean over fewer seeds is not comparable.
        full = [r for r in scored if r.metrics.get("seeds_done") == len(spec.search.seeds)]
        if full:
            key = (lambda r: r.metrics["objective"])
            b = max(full, key=key) if spec.search.mode == "max" else min(full, key=key)
            pt = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in b.config["point"].items())
            print(f"best point: {pt}: objective {b.metrics['objective']:.4g} over "
                  f"{b.metrics['seeds_done']} seeds ({', '.join(b.metrics['trial_ids'])}); "
                  f"{len(scored) - len(full)} of {len(scored)} points stopped early")
    else:
        built = {r.metrics.get("generator_cache_path") for r in ok
                 if r.metrics.get("generator_cache_hit") is False}
        caches = {r.metrics.get("generator_cache_path") for r in ok}
        for p in sorted(c for c in caches if c):
            print(f"original model {p}: " + ("trained in this sweep" if p in built
                                              else "reused from the cache, nothing retrained"))
        if any("classifier_cache_hit" in r.metrics for r in ok):
            clf_built = any(r.metrics.get("classifier_cache_hit") is False for r in ok)
            print("classifier: " + ("trained in this sweep" if clf_built else
                                    "reused from the cache, nothing retrained"))
    print(f"Parquet results: {settings.results_dir.resolve() / f'sweep_id={settings.sweep_id}'}")
    if settings.mlflow_uri:
        print(f"MLflow store:    {settings.mlflow_uri} (experiment {settings.experiment!r})")
    print(f"Tune experiment: {settings.experiment_dir}", flush=True)
