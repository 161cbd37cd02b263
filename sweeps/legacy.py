"""Resuming sweeps saved before sweeps/runner.py was split (sweep.json format 1).

Their tuner.pkl pickled `sweeps.runner.Finalizer` (the callback that ended MLflow runs and wrote
the error rows of dead workers) and `sweeps.runner._point_name`; the driver maps that module
name to this one before it restores them (sweeps/driver.py `_legacy_names`). The old Finalizer
comes back as a `Recorder` with the settings it held. Their trial configs are dicts, which
`sweeps.worker.grid_unit` parses, and their trial ids are identity version 1.
"""
from __future__ import annotations

from typing import Any

from sweeps.callbacks import Destination, Recorder
from sweeps.driver import point_name as _point_name  # noqa: F401  (pickled by name)
from sweeps.spec import point_config
from sweeps.sweepfile import LEGACY_IDENTITY_VERSION


class Finalizer(Recorder):
    """The old callback's pickled state ({"ctx": ..., "search": {"seeds": ...} | None}) as a
    Recorder. A legacy search point's config holds its base fields itself."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        ctx, search = state["ctx"], state.get("search")
        Recorder.__init__(
            self, Destination(ctx["sweep_id"], ctx["results_dir"], ctx["code_version"],
                              LEGACY_IDENTITY_VERSION, ctx["mlflow_uri"], ctx["experiment_id"],
                              ctx["parent_run_id"]),
            tuple(search["seeds"]) if search else None)

    def _seed_config(self, trial, seed: int) -> dict[str, Any]:
        return point_config(trial.config["base"], trial.config["point"], seed)
