"""One line per trial event with counts and an estimate of the time left, instead of Tune's
full tables (which repeat every trial's whole config)."""
from __future__ import annotations

import time

from ray.tune import Callback


def _fmt_seconds(s: float) -> str:
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"


class Progress(Callback):
    def __init__(self, total: int):
        self.total = total
        self.t0 = time.monotonic()
        self.running: set[str] = set()
        self.done = self.failed = 0

    def _line(self, event: str, trial) -> None:
        tid = trial.config["trial"]["trial_id"]
        finished = self.done + self.failed
        eta = ""
        if finished and finished < self.total:
            # finished trials so far, paced by how many run side by side
            per = (time.monotonic() - self.t0) / finished
            eta = f", about {_fmt_seconds(per * (self.total - finished))} left"
        print(f"[{finished}/{self.total} done, {len(self.running)} running, "
                 f"{self.failed} failed{eta}] {tid} {event}", flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running.add(trial.trial_id)
        self._line("started", trial)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.running.discard(trial.trial_id)
        self.done += 1
        self._line("finished", trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.running.discard(trial.trial_id)
        self.failed += 1
        self._line("FAILED", trial)
