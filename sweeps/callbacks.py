"""On the driver: every trial's Parquet file and MLflow run, written from Tune's callbacks.

Workers report a finished trial (`sweeps.worker.Unit`: its rows and metrics) and write nothing;
`Recorder` writes it when the report arrives:

  on_trial_result   a finished grid trial or seed of a search point: its Parquet file (atomic:
                    a rerun replaces it whole) and its MLflow run, FINISHED
  on_trial_recover  an attempt failed and will be retried; on_trial_error: failed for good.
                    Either way an error row and a FAILED run for the failing trial, also when
                    its worker process died (there is no Python exception to catch there)
  on_trial_start    (search) the point's run, with the sampled values
  on_trial_complete (search) the point's run ends; `stopped_early` when ASHA stopped it

Crash consistency: Tune calls these before it records the trial's new state (and saves the
experiment state only after the event is handled), so a trial Tune saved as finished has its
file and its run; one whose result arrived but was not saved yet runs again on `resume`, and its
file and run are rewritten, not added (the file is named by the trial id, the run found by its
tags). A search point's report carries a checkpoint: a resumed point skips the seeds saved there
and reruns at most the one whose result was not saved yet.

The Recorder is pickled with the Tuner (tuner.pkl) and is the one a resume uses: it holds
settings only; its MLflow client is made in `setup`.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from ray.tune import Callback

from contract.schema import artifact_ref, model_ref, trial_path, write_rows
from contract.storage import locate
from l2l import experiment
from sweeps.progress import trial_label
from sweeps.spec import point_config
from sweeps.worker import UNIT, Unit, grid_unit, point_state, seed_trial_id

log = logging.getLogger("sweeps")


class RecordError(RuntimeError):
    """A finished trial could not be written; the sweep stops (resume runs the trial again)."""


@dataclass(frozen=True)
class Destination:
    """Where and how a sweep's trials are recorded."""
    sweep_id: str
    results_dir: str
    code_version: str
    identity_version: int
    mlflow_uri: str | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def error_row(cfg, meta: dict[str, Any], msg: str, identity_version: int) -> dict[str, Any]:
    """The one row of a trial that failed: its config's columns, no metric value."""
    return {**cfg.columns(identity_version), **meta, "status": "error", "error": msg,
            "metric": "error", "created_at": now()}


def error_message(trial) -> str:
    err = trial.get_error()
    return str(err).strip().splitlines()[-1][:500] if err else "the trial failed"


class Recorder(Callback):
    def __init__(self, dest: Destination, seeds: tuple[int, ...] | None = None,
                 base: dict[str, Any] | None = None):
        self.dest = dest
        self.seeds = seeds  # a search: the seeds every point runs, and its base fields
        self.base = base
        self._tracker = None

    def __getstate__(self):
        return {**self.__dict__, "_tracker": None}

    def setup(self, **info):  # on the driver, before any trial (also after a resume)
        if self.dest.mlflow_uri:
            from sweeps.tracking import Tracker

            self._tracker = Tracker(self.dest.mlflow_uri, self.dest.experiment_id,
                                    self.dest.sweep_id).load()

    # ------------------------------------------------------------------------ what Tune calls

    def on_trial_start(self, iteration, trials, trial, **info):
        if self.seeds is None or self._tracker is None:
            return
        point = trial.config["point"]
        try:
            run = self._tracker.open("point", trial_label(trial), self.dest.parent_run_id,
                                     {"code_version": self.dest.code_version})
            self._tracker.log(run, params={**{f"space.{k}": str(v) for k, v in point.items()},
                                           "seeds": str(list(self.seeds))})
        except Exception as e:  # its seeds' runs then nest under the sweep's run
            log.warning("could not open the MLflow run of %s: %s", trial_label(trial), e)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        unit = result.pop(UNIT, None)  # not kept in Tune's results: rows belong in Parquet
        if unit is None:
            return
        try:
            result["mlflow_run_id"] = self._record(trial, unit, result)
        except Exception as e:
            raise RecordError(f"could not record trial {unit.trial_id}: "
                              f"{type(e).__name__}: {e}") from e

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._record_failure(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._record_failure(trial)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if self.seeds is None or self._tracker is None:
            return
        point = trial_label(trial)
        if not self._tracker.is_running("point", point):
            return
        try:
            done = (trial.last_result or {}).get("seeds_done", 0)
            tags = {"stopped_early": "true"} if done < len(self.seeds) else None  # by ASHA
            self._tracker.finish("point", point, tags=tags)
        except Exception as e:  # tracking trouble must not stop the sweep
            log.warning("could not finish the MLflow run of %s: %s", point, e)

    # ---------------------------------------------------------------------------- the writes

    def _meta(self, trial_id: str, run_id: str | None) -> dict[str, Any]:
        d = self.dest
        return {"sweep_id": d.sweep_id, "trial_id": trial_id, "code_version": d.code_version,
                "mlflow_run_id": run_id,
                "artifact_dir": artifact_ref(d.sweep_id, trial_id, locate(d.results_dir).name),
                "model": None}

    def _open_trial_run(self, trial, trial_id: str, cfg, node: str | None) -> str | None:
        if self._tracker is None:
            return None
        parent, tags = self.dest.parent_run_id, {}
        if self.seeds is not None:
            point = trial_label(trial)
            parent, tags = self._tracker.run_id("point", point) or parent, {"point_id": point}
        return self._tracker.open("trial", trial_id, parent, {
            "config_hash": cfg.identity_hash(self.dest.identity_version),
            "identity_version": self.dest.identity_version,
            "code_version": self.dest.code_version, "family": cfg.family,
            "generator": cfg.generator.name, "method": cfg.method, "ray_node_id": node or "",
            **tags})

    def _record(self, trial, unit: Unit, result: dict[str, Any]) -> str | None:
        run_id = self._open_trial_run(trial, unit.trial_id, unit.config, unit.node_id)
        meta = {**self._meta(unit.trial_id, run_id), "status": "ok", "error": None,
                "created_at": now()}
        if unit.model:
            meta["model"] = model_ref(locate(unit.model), locate(self.dest.results_dir))
        path = write_rows(trial_path(locate(self.dest.results_dir), self.dest.sweep_id,
                                     unit.trial_id),
                          [{**r, **meta} for r in unit.rows])
        if self._tracker is not None:
            from sweeps.tracking import curated_params

            config = unit.config.to_dict()
            for seen, values in unit.curve:  # the forgetting curve: step metrics
                self._tracker.log(run_id, metrics={f"curve.{k}": v for k, v in values.items()},
                                  step=seen)
            self._tracker.finish("trial", unit.trial_id, curated_params(config), unit.metrics,
                                 config=config, artifacts=[*unit.artifacts, path.uri],
                                 tags={"model": unit.model} if unit.model else None)
            point = self._tracker.run_id("point", trial_label(trial)) if self.seeds else None
            if point is not None:  # the point's objective over the seeds done
                means = {k[len("mean_"):]: v for k, v in result.items()
                         if k.startswith("mean_")}
                self._tracker.log(point, metrics={"objective": result["objective"], **means},
                                  tags={"seeds_done": result["seeds_done"]},
                                  step=result["seeds_done"])
        return run_id

    def _failed_unit(self, trial) -> tuple[str, Any] | None:
        """(trial id, config) of the trial that was running when `trial` failed."""
        if self.seeds is None:
            t = grid_unit(trial.config["trial"])
            return t.trial_id, t.config
        done = len(point_state(trial.checkpoint))  # the retry starts from this checkpoint
        if done >= len(self.seeds):
            return None  # failed after its last seed: no trial of the schema failed
        cfg = experiment.parse_config(self._seed_config(trial, self.seeds[done]))
        return seed_trial_id(trial_label(trial), cfg, self.dest.identity_version), cfg

    def _seed_config(self, trial, seed: int) -> dict[str, Any]:
        return point_config(self.base, trial.config["point"], seed)

    def _record_failure(self, trial) -> None:
        msg = error_message(trial)
        try:
            unit = self._failed_unit(trial)
            if unit is not None:
                trial_id, cfg = unit
                run_id = self._open_trial_run(trial, trial_id, cfg, None)
                path = trial_path(locate(self.dest.results_dir), self.dest.sweep_id, trial_id)
                write_rows(path, [error_row(cfg, self._meta(trial_id, run_id), msg,
                                            self.dest.identity_version)])
                if run_id is not None:
                    self._tracker.fail("trial", trial_id, msg)
            if self.seeds is not None and self._tracker is not None:
                point = trial_label(trial)
                if self._tracker.is_running("point", point):
                    self._tracker.fail("point", point, msg)
        except Exception as e:  # the sweep goes on; Tune's own record says the trial failed
            log.warning("could not record the failure of %s: %s", trial_label(trial), e)
