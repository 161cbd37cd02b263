"""One line per trial event with counts and an estimate of the time left, instead of Tune's
full tables (which repeat every trial's whole config):

    [3/8 done, 2 running, 0 failed, about 1.2 min left] t003-5c1d2e9a finished

Counts come from the trials' states, not from counters kept here, so a resumed sweep starts
with the trials its first run finished already. The estimate is this session's pace: seconds
since the sweep (or the resume) started divided by trials finished since, times those left;
it already reflects how many trials run side by side.
"""
from __future__ import annotations

import time

from ray.tune import Callback

STATES = {"TERMINATED": "done", "ERROR": "failed", "RUNNING": "running"}


def _fmt_seconds(s: float) -> str:
    if s >= 5400:
        return f"{s / 3600:.1f} h"
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"


def trial_label(trial) -> str:
    """Our trial id (grid) or point id (search), not Tune's random one."""
    cfg = trial.config or {}
    return (cfg.get("trial") or {}).get("trial_id") or trial.custom_trial_name or str(trial)


class Progress(Callback):
    def __init__(self, total: int, unit: str = "trials", seeds: int | None = None,
                 max_failures: int = 0):
        self.total = total  # grid: trials; search: points
        self.unit = unit
        self.seeds = seeds  # search: seeds a point runs (to tell early-stopped points)
        self.max_failures = max_failures
        self._start()

    def _start(self) -> None:
        self.t0 = time.monotonic()
        self.finished_here = 0

    def setup(self, **info):  # also after a resume: the pace is this session's
        self._start()

    def counts(self, trials, trial=None, state: str | None = None) -> dict[str, int]:
        c = {"done": 0, "failed": 0, "running": 0}
        for t in trials:
            s = state if t is trial and state else STATES.get(t.status)
            if s:
                c[s] += 1
        return c

    def line(self, trials, trial, state: str | None, event: str) -> str:
        c = self.counts(trials, trial, state)
        finished = c["done"] + c["failed"]
        eta = ""
        if self.finished_here and finished < self.total:
            per = (time.monotonic() - self.t0) / self.finished_here
            eta = f", about {_fmt_seconds(per * (self.total - finished))} left"
        return (f"[{c['done']}/{self.total} {self.unit} done, {c['running']} running, "
                f"{c['failed']} failed{eta}] {trial_label(trial)} {event}")

    def _print(self, *args) -> None:
        print(self.line(*args), flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._print(trials, trial, "running", "started")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.finished_here += 1
        event = "finished"
        res = trial.last_result or {}
        if self.seeds and "objective" in res:
            k = res.get("seeds_done", self.seeds)
            event = (f"finished, objective {res['objective']:.4g} over {k} seeds" if k >= self.seeds
                     else f"stopped early by ASHA after {k} of {self.seeds} seeds, objective "
                          f"{res['objective']:.4g}")
        self._print(trials, trial, "done", event)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._print(trials, trial, None,
                    f"failed, retrying (retry {trial.num_failures} of {self.max_failures})")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.finished_here += 1
        self._print(trials, trial, "failed", "FAILED for good")
