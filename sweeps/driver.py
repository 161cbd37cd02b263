"""The sweep driver: builds, runs and resumes the Tune experiment of a validated spec.

Grid: one Tune trial per grid point; its config holds the trial id and the typed l2l config
object (`sweeps.worker.grid_entry`). Search: one Tune trial per point Optuna samples; its
config is the sampled values, and the worker runs every seed of the spec (sweeps/worker.py).
What every worker needs besides (results directory, identity version, the search's base fields
and objective) is given through `tune.with_parameters`. Workers report finished trials; the
driver's callbacks write their Parquet files and MLflow runs (sweeps/callbacks.py) and the
progress lines (sweeps/progress.py). `<storage>/<sweep id>/sweep.json` records how the sweep
was started (sweeps/sweepfile.py), so `l2l-sweep resume` restores it as it was.
"""
from __future__ import annotations

import logging
import os
import sys
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

import pyarrow.fs  # noqa: E402
import ray  # noqa: E402
from ray import tune  # noqa: E402
from ray.tune.logger import JsonLoggerCallback  # noqa: E402

from contract.identity import IDENTITY_VERSION  # noqa: E402
from contract.schema import beside  # noqa: E402
from contract.storage import Location, locate  # noqa: E402
from sweeps import plan  # noqa: E402
from sweeps.callbacks import Destination, Recorder, RecordError  # noqa: E402
from sweeps.progress import Progress, print_summary, trial_label  # noqa: E402
from sweeps.spec import SweepSpec, point_config  # noqa: E402
from sweeps.sweepfile import (INJECT_ENV, SweepSettings, code_version,  # noqa: E402
                              parse_injections, pick_address, read_sweep_file,
                              write_sweep_file)
from sweeps.worker import (WorkerContext, grid_entry, grid_trial, grid_unit,  # noqa: E402
                           search_point)

log = logging.getLogger("sweeps")
SYNC_PERIOD = 15  # seconds; the state is a few kB (trial results and artifacts travel apart)
# Tune warns, one line each, about every trial of a restored experiment that has no results yet:
# on a resume those are just the trials still to run (109 lines for a table sweep).
logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


def init_ray(address: str | None) -> None:
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=True,
                 configure_logging=False)


def _resources_fn(spec: SweepSpec):
    """Per-trial resources after the GPU fallback (decided from the cluster Ray runs on)."""
    total = ray.cluster_resources()
    gpus = total.get("GPU", 0)
    plan.check_fits(spec.resources, total.get("CPU", 0), gpus)  # before anything is written
    resources, notices = plan.effective_resources(spec.resources, gpus)
    for n in notices:
        print(n, flush=True)

    def bundle(generator: str) -> tune.PlacementGroupFactory:
        res = plan.pick(resources, generator)
        b = {"CPU": res["cpu"]}
        if res["gpu"] > 0:
            b["GPU"] = res["gpu"]
        return tune.PlacementGroupFactory([b])

    if spec.search:
        base, seed = spec.search.base, spec.search.seeds[0]
        return lambda config: bundle(plan.generator_of(point_config(base, config["point"],
                                                                    seed)))
    return lambda config: bundle(grid_unit(config["trial"]).config.generator.name)


def _trainable(spec: SweepSpec, ctx: WorkerContext, resources_for):
    fn = search_point if spec.search else grid_trial
    return tune.with_resources(tune.with_parameters(fn, ctx=ctx), resources_for)


def point_name(trial) -> str:
    # experiment_tag starts with the search's running count (1-based): p000, p001, ...
    return f"p{int(trial.experiment_tag.split('_')[0]) - 1:03d}"


def search_space(spec: SweepSpec) -> dict[str, Any]:
    """The spec's search space as Tune domains (randint's high end included, as in the spec)."""
    dist = {"loguniform": lambda a: tune.loguniform(*a), "uniform": lambda a: tune.uniform(*a),
            "randint": lambda a: tune.randint(a[0], a[1] + 1),
            "choice": lambda a: tune.choice(list(a))}
    return {p.name: dist[p.kind](p.args) for p in spec.search.space}


def _param_space(spec: SweepSpec) -> dict[str, Any]:
    """Grid: the grid points (Tune keeps their config objects aside and puts them back into
    each trial's config); search: the space Optuna samples."""
    if spec.search:
        return {"point": search_space(spec)}
    return {"trial": tune.grid_search([grid_entry(t) for t in spec.trials])}


def _worker_context(spec: SweepSpec, settings: SweepSettings, identity_version: int
                    ) -> WorkerContext:
    inject = {**parse_injections(os.environ.get(INJECT_ENV)), **settings.inject_failures}
    models = beside(locate(settings.results_dir), "models").uri if settings.save_models \
        else None
    return WorkerContext(settings.sweep_id, settings.results_dir,
                         identity_version, tuple(sorted(inject.items())), spec.search, models)


def _tuner(spec: SweepSpec, settings: SweepSettings, dest: Destination, ctx: WorkerContext,
           resources_for, ready_models: frozenset[str] = frozenset()) -> tune.Tuner:
    s = spec.search
    callbacks = [Recorder(dest, tuple(s.seeds), s.base) if s else Recorder(dest),
                 Progress(s.num_samples if s else len(spec.trials), "points" if s else "trials",
                          len(s.seeds) if s else None, spec.max_failures,
                          None if s else plan.trial_estimates(spec),
                          None if s else plan.build_estimates(spec), ready_models),
                 JsonLoggerCallback()]
    path, fs = tune_storage(locate(settings.storage_dir))
    run_config = tune.RunConfig(
        name=settings.sweep_id, storage_path=path, storage_filesystem=fs, verbose=0,
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1), callbacks=callbacks,
        # The experiment state reaches --storage at most every SYNC_PERIOD seconds (Tune's
        # default, 300 s, would make a killed driver's resume redo up to 5 min of trials).
        sync_config=tune.SyncConfig(sync_period=SYNC_PERIOD))
    trainable = _trainable(spec, ctx, resources_for)
    if not s:
        return tune.Tuner(
            trainable, param_space=_param_space(spec),
            tune_config=tune.TuneConfig(
                max_concurrent_trials=spec.max_concurrent_trials, reuse_actors=True,
                trial_name_creator=trial_label, trial_dirname_creator=trial_label),
            run_config=run_config)

    import optuna
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "A new study created ..."
    sampler = optuna.samplers.TPESampler(seed=s.sampler_seed)  # multi-objective TPE as well
    if s.mode == "pareto":  # each term its own objective: Optuna keeps the front
        names, modes = s.pareto_metrics()
        searcher = ConcurrencyLimiter(OptunaSearch(metric=names, mode=modes, sampler=sampler),
                                      max_concurrent=s.max_concurrent)
    else:
        searcher = ConcurrencyLimiter(OptunaSearch(sampler=sampler),
                                      max_concurrent=s.max_concurrent)
    scheduler = FIFOScheduler()
    if s.asha:
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=len(s.seeds),
                                  grace_period=s.asha["grace_period"],
                                  reduction_factor=s.asha["reduction_factor"])
    return tune.Tuner(
        trainable, param_space=_param_space(spec),
        tune_config=tune.TuneConfig(
            metric=None if s.mode == "pareto" else "objective",
            mode=None if s.mode == "pareto" else s.mode, num_samples=s.num_samples,
            search_alg=searcher,
            scheduler=scheduler, reuse_actors=True,
            trial_name_creator=point_name, trial_dirname_creator=point_name),
        run_config=run_config)


def run_sweep(spec: SweepSpec, settings: SweepSettings, runtime: dict[str, Any] | None = None,
              spec_path: str | None = None, kept_trials: tuple[str, ...] = (),
              ready_models: frozenset[str] = frozenset()) -> int:
    """Runs every trial of `spec`; returns the number of failed trials (-1: interrupted).
    `kept_trials`: grid trials of the spec as written that were left out of `spec` because
    their results are already there (recorded so that `resume` leaves them out too);
    `ready_models`: the models they trained (plan.build_estimates' keys), which the progress
    line's estimate then does not count as still to train."""
    init_ray(settings.address)
    resources_for = _resources_fn(spec)
    experiment_id = parent_run_id = None
    if settings.mlflow_uri:
        from sweeps import tracking

        n = (f"{spec.search.num_samples} points x {len(spec.search.seeds)} seeds"
             if spec.search else str(len(spec.trials)))
        experiment_id, parent_run_id = tracking.start_sweep(
            settings.mlflow_uri, settings.experiment, settings.sweep_id,
            {"code_version": settings.code_version, "spec_name": spec.name, "n_trials": n,
             "sweep_kind": spec.kind, "identity_version": IDENTITY_VERSION},
            settings.artifact_dir, spec.source)
    write_sweep_file(settings, spec, experiment_id, parent_run_id, runtime or {}, spec_path,
                     kept_trials)
    if spec.search:
        s = spec.search
        print(f"sweep {settings.sweep_id}: search, {s.num_samples} points x {len(s.seeds)} seeds "
              f"({s.objective_text()}; at most {s.max_concurrent} points at a time"
              f"{', ASHA over seeds' if s.asha else ''})", flush=True)
    else:
        print(f"sweep {settings.sweep_id}: {len(spec.trials)} trials", flush=True)
    dest = Destination(settings.sweep_id, settings.results_dir,
                       settings.code_version, IDENTITY_VERSION, settings.mlflow_uri,
                       experiment_id, parent_run_id)
    tuner = _tuner(spec, settings, dest, _worker_context(spec, settings, IDENTITY_VERSION),
                   resources_for, ready_models)
    return _fit(tuner, spec, settings, experiment_id, parent_run_id)


def tune_storage(loc: Location) -> tuple[str, pyarrow.fs.FileSystem | None]:
    """Tune's storage path and file system for a location: a local path alone, or the path in
    the object store with its file system (Tune reads and writes through pyarrow.fs)."""
    return (loc.path, None) if loc.is_local else (loc.path, loc.fs)


def resume_sweep(experiment_dir: Location, address: str | None = None) -> int:
    """Continues an interrupted sweep (Ctrl-C, a killed driver) where it stopped: finished
    trials stay, unfinished and failed ones run again (a search point from its checkpoint).
    Ray: `address`, else $RAY_ADDRESS, else the address the sweep was started with."""
    rec = read_sweep_file(experiment_dir)
    spec, settings = rec.spec, rec.settings
    address, source = pick_address(address, settings.address)
    before = _states(experiment_dir)
    unit = "points" if spec.search else "trials"
    failed = f", {before['ERROR']} failed (they run again)" if before.get("ERROR") else ""
    expected = spec.search.num_samples if spec.search else len(spec.trials)
    where = f"Ray at {address} ({source})" if address else source
    print(f"resuming sweep {settings.sweep_id}: {before.get('TERMINATED', 0)} of {expected} "
          f"{unit} finished{failed}; Tune experiment {experiment_dir.uri}; {where}", flush=True)
    now = code_version()
    if now != settings.code_version:
        print(f"notice: the code is now {now}; the sweep started with {settings.code_version} "
              "and its rows keep that version", flush=True)
    if rec.identity_version != IDENTITY_VERSION:
        print(f"notice: the sweep's trial ids are identity version {rec.identity_version} "
              f"(this code makes {IDENTITY_VERSION}); its rows keep version "
              f"{rec.identity_version}", flush=True)
    init_ray(address)
    resources_for = _resources_fn(spec)
    if settings.mlflow_uri:
        from sweeps import tracking

        tracking.reopen(settings.mlflow_uri, rec.parent_run_id)
    _legacy_names()
    ctx = _worker_context(spec, settings, rec.identity_version)
    # The param space again: Tune saves trials it created, not the config objects of grid
    # points it has yet to create. (Format 1 sweeps hold dicts and a param space of another
    # shape: theirs is kept.)
    path, fs = tune_storage(experiment_dir)
    tuner = tune.Tuner.restore(path, _trainable(spec, ctx, resources_for),
                               resume_errored=True, storage_filesystem=fs,
                               param_space=_param_space(spec) if rec.format >= 2 else None)
    return _fit(tuner, spec, settings, rec.experiment_id, rec.parent_run_id)


def _legacy_names() -> None:
    """Experiments saved before this layout pickled the callbacks and name functions of
    `sweeps.runner` (tuner.pkl); they resolve to sweeps/legacy.py."""
    from sweeps import legacy

    sys.modules.setdefault("sweeps.runner", legacy)


def saved_trials(experiment_dir: Location) -> list:
    """The trials of a Tune experiment, from its saved state."""
    path, fs = tune_storage(experiment_dir)
    return tune.ExperimentAnalysis(path, storage_filesystem=fs).trials


def _states(experiment_dir: Location) -> dict[str, int]:
    """Trial states of a Tune experiment, read from its saved state."""
    _legacy_names()
    out: dict[str, int] = {}
    for t in saved_trials(experiment_dir):
        out[t.status] = out.get(t.status, 0) + 1
    return out


def _caused_by(e: BaseException, kind: type) -> BaseException | None:
    while e is not None:
        if isinstance(e, kind):
            return e
        e = e.__cause__ or e.__context__
    return None


def _fit(tuner, spec: SweepSpec, settings: SweepSettings, experiment_id: str | None,
         parent_run_id: str | None) -> int:
    status, results, stopped = "FAILED", [], None
    expected = spec.search.num_samples if spec.search else len(spec.trials)
    try:
        try:
            results = list(tuner.fit())
        except Exception as e:
            stopped = _caused_by(e, RecordError)
            if stopped is None:
                raise
        trials = saved_trials(settings.experiment_dir)
        unfinished = [t for t in trials if t.status not in ("TERMINATED", "ERROR")]
        interrupted = bool(unfinished) or len(trials) < expected or stopped is not None
        failed = sum(1 for t in trials if t.status == "ERROR")
        status = "KILLED" if interrupted else ("FINISHED" if not failed else "FAILED")
    except KeyboardInterrupt:  # a second Ctrl-C: Tune skipped its last save
        status = "KILLED"
        raise
    finally:  # the parent run never stays RUNNING, also on a driver error
        if settings.mlflow_uri:
            from sweeps import tracking

            if status == "KILLED":  # runs of stopped points: reopened by `resume`
                tracking.end_running(settings.mlflow_uri, experiment_id, settings.sweep_id,
                                     "KILLED")
            tracking.end_run(settings.mlflow_uri, parent_run_id, status)
    if stopped is not None:
        print(f"error: {stopped}; the sweep stopped", file=sys.stderr, flush=True)
    print_summary(results, trials, expected, spec, settings)
    if interrupted:
        print(f"\ninterrupted: {len(unfinished) + expected - len(trials)} of {expected} "
              f"{'points' if spec.search else 'trials'} unfinished. Continue with:\n"
              f"  l2l-sweep resume {settings.sweep_id} --storage {settings.storage_dir}",
              flush=True)
        return -1
    return failed
