"""Progress on the driver: one line per trial event, and the summary at the end.

One line per trial event with counts and an estimate of the time left, instead of Tune's
full tables (which repeat every trial's whole config):

    [3/8 done, 2 running, 0 failed, about 1.2 min left] t003-5c1d2e9a finished

Counts come from the trials' states, not from counters kept here, so a resumed sweep starts
with the trials its first run finished already.

The estimate of the time left (`Pace`): each trial left costs its dry-run estimate (sweeps/
plan.py: steps, images, generator) times the ratio of measured to estimated seconds of the
trials finished in this session, summed and divided by the trials that run side by side.
A trial's measured seconds leave out the models it trained for the cache (the original, the
classifier, a retrained reference: `build_seconds`), which later trials read for free; the
models still to train are added once each (plan.build_estimates, scaled by the builds measured
in this session), a model counting as trained once a trial that needs it has finished. On a
cold quickstart a plain pace (time / trials done) said 33 minutes were left after the first
trial, which had trained the original model, when under 3 were; counting trials alike also
misjudges a grid whose cheap trials (the originals, evaluated only) come first. Leaving the
models to come out said "about 24 min left" in a GAN sweep with 15 retrained models (6 min
each) still to train.
"""
from __future__ import annotations

import statistics
import time

from ray.tune import Callback

STATES = {"TERMINATED": "done", "ERROR": "failed", "RUNNING": "running"}


def _fmt_seconds(s: float) -> str:
    if s >= 5400:
        return f"{s / 3600:.1f} h"
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"


def trial_label(trial) -> str:
    """Our trial id (grid) or point id (search), not Tune's random one: the name the driver
    gave the trial (saved with the experiment); while Tune creates a grid trial, its id."""
    grid = (trial.config or {}).get("trial") or {}
    return trial.custom_trial_name or grid.get("trial_id") or str(trial)


class Pace:
    """Trial durations seen this session, and the time left they imply."""

    def __init__(self, estimates: dict[str, float] | None = None,
                 builds: dict[str, dict[str, float]] | None = None,
                 ready: frozenset[str] = frozenset()):
        self.estimates = estimates or {}  # trial label -> dry-run seconds
        self.builds = builds or {}  # trial label -> models it trains unless cached -> seconds
        self.ready = ready  # models trained before (by trials kept from earlier results)
        self.started: dict[str, float] = {}
        # measured / estimated seconds of this session's trials that built nothing, and of
        # those that did (cache builds left out, but not a new worker's start-up that comes
        # with them): the first are used as soon as there is one
        self.ratios: list[float] = []
        self.built: list[float] = []
        self.build_ratios: list[float] = []  # measured / estimated seconds of model builds
        self.charged: dict[str, float] = {}  # running trial -> estimated seconds of its builds
        self.plain: list[float] = []  # measured seconds (cache builds left out)
        self.side_by_side = 1

    def start(self, key: str, running: int, finished: set[str] | None = None) -> None:
        self.started[key] = time.monotonic()
        self.side_by_side = max(self.side_by_side, running)
        # the estimated seconds of the models this trial is to train, for its build rate
        self.charged[key] = self._to_build([key], finished or set(), scaled=False).get(key, 0.0)

    def finish(self, key: str, build_seconds: float = 0.0) -> None:
        t0 = self.started.pop(key, None)
        if t0 is None:  # started before a resume: its duration is unknown
            return
        d = max(0.0, time.monotonic() - t0 - build_seconds)
        self.plain.append(d)
        if self.estimates.get(key):
            (self.built if build_seconds > 0 else self.ratios).append(d / self.estimates[key])
        charged = self.charged.pop(key, 0.0)
        if build_seconds > 0 and charged > 0:
            self.build_ratios.append(build_seconds / charged)

    def _to_build(self, unfinished: list[str], finished: set[str],
                  scaled: bool = True) -> dict[str, float]:
        """Trial label -> seconds of the models it will train: each model no finished trial
        has needed, charged to the first unfinished trial that needs it (a running one first),
        `scaled` by the builds measured so far (else as estimated)."""
        ready = set(self.ready) | {m for k in finished for m in self.builds.get(k, {})}
        scale = statistics.median(self.build_ratios) if scaled and self.build_ratios else 1.0
        out: dict[str, float] = {}
        for k in sorted(unfinished, key=lambda k: k not in self.started):
            for model, seconds in self.builds.get(k, {}).items():
                if model not in ready:
                    ready.add(model)
                    out[k] = out.get(k, 0.0) + seconds * scale
        return out

    def left(self, unfinished: list[str], n_left: int,
             finished: set[str] | None = None) -> float | None:
        """Seconds left for the `unfinished` trial labels (without estimates: `n_left`
        trials alike); `finished`: the labels of the trials that have finished."""
        if not self.plain:
            return None
        ratios = self.ratios or self.built
        if ratios and unfinished and all(k in self.estimates for k in unfinished):
            scale = statistics.median(ratios)
            builds = self._to_build(unfinished, finished or set())
            now = time.monotonic()
            each = []
            for k in unfinished:
                expected = self.estimates[k] * scale + builds.get(k, 0.0)
                if k in self.started:  # running: what remains of it
                    expected = max(0.0, expected - (now - self.started[k]))
                each.append(expected)
            # side by side, but never shorter than the longest trial left
            return max(sum(each) / self.side_by_side, max(each))
        return statistics.median(self.plain) * n_left / self.side_by_side


class Progress(Callback):
    def __init__(self, total: int, unit: str = "trials", seeds: int | None = None,
                 max_failures: int = 0, estimates: dict[str, float] | None = None,
                 builds: dict[str, dict[str, float]] | None = None,
                 ready: frozenset[str] = frozenset()):
        self.total = total  # grid: trials; search: points
        self.unit = unit
        self.seeds = seeds  # search: seeds a point runs (to tell early-stopped points)
        self.max_failures = max_failures
        self.estimates = estimates or {}  # grid: trial id -> dry-run seconds
        self.builds = builds or {}  # grid: trial id -> models it trains unless cached
        self.ready = ready  # models the trials kept from earlier results trained
        self._start()

    def _start(self) -> None:
        # (a Progress unpickled from a sweep started before estimates has none)
        self.pace = Pace(getattr(self, "estimates", None), getattr(self, "builds", None),
                         getattr(self, "ready", frozenset()))

    def setup(self, **info):  # also after a resume: the pace is this session's
        self._start()

    def counts(self, trials, trial=None, state: str | None = None) -> dict[str, int]:
        c = {"done": 0, "failed": 0, "running": 0}
        for t in trials:
            s = state if t is trial and state else STATES.get(t.status)
            if s:
                c[s] += 1
        return c

    @staticmethod
    def _states(trials, trial, state: str | None) -> tuple[set[str], set[str]]:
        """The labels of the trials that ended (done or failed) and of those done, `trial`
        taken as in `state`."""
        states = {trial_label(t): state if t is trial and state else STATES.get(t.status)
                  for t in trials}
        return ({k for k, s in states.items() if s in ("done", "failed")},
                {k for k, s in states.items() if s == "done"})

    def line(self, trials, trial, state: str | None, event: str) -> str:
        c = self.counts(trials, trial, state)
        finished = c["done"] + c["failed"]
        eta = ""
        ended, done = self._states(trials, trial, state)
        left = self.pace.left([k for k in self.pace.estimates if k not in ended],
                              self.total - finished, done)
        if left is not None and finished < self.total:
            eta = f", about {_fmt_seconds(left)} left"
        return (f"[{c['done']}/{self.total} {self.unit} done, {c['running']} running, "
                f"{c['failed']} failed{eta}] {trial_label(trial)} {event}")

    def _print(self, *args) -> None:
        print(self.line(*args), flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.pace.start(trial_label(trial), self.counts(trials, trial, "running")["running"],
                        self._states(trials, trial, "running")[1])
        self._print(trials, trial, "running", "started")

    def on_trial_complete(self, iteration, trials, trial, **info):
        res = trial.last_result or {}
        self.pace.finish(trial_label(trial), res.get("build_seconds", 0.0))
        event = "finished"
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
        self.pace.started.pop(trial_label(trial), None)  # a failure says nothing of the pace
        self._print(trials, trial, "failed", "FAILED for good")


def print_summary(results, trials, expected: int, spec, settings) -> None:
    """What a sweep did: trials finished and failed, the best point of a search, whether the
    original models were trained or read from the cache, and where the results are."""
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
        if full and spec.search.mode == "pareto":
            from contract.pareto import front

            names, modes = spec.search.pareto_metrics()
            signs = [1.0 if m == "max" else -1.0 for m in modes]
            best = front([[s * r.metrics[n] for s, n in zip(signs, names)] for r in full])
            print(f"Pareto front: {len(best)} of {len(full)} points; `l2l-analysis tables` "
                  "writes it as the `front` table")
            for i in sorted(best, key=lambda i: -signs[0] * full[i].metrics[names[0]]):
                r = full[i]
                print("  " + _point_text(r.config["point"]) + ": " + ", ".join(
                    f"{n.removeprefix('mean_')} {r.metrics[n]:.4g}" for n in names)
                    + f" ({', '.join(r.metrics['trial_ids'])})")
        elif full:
            key = (lambda r: r.metrics["objective"])
            b = max(full, key=key) if spec.search.mode == "max" else min(full, key=key)
            pt = _point_text(b.config["point"])
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
    from contract.schema import sweep_dir
    from contract.storage import locate

    print(f"Parquet results: {sweep_dir(locate(settings.results_dir), settings.sweep_id).uri}")
    if settings.mlflow_uri:
        print(f"MLflow store:    {settings.mlflow_uri} (experiment {settings.experiment!r})")
    print(f"Tune experiment: {settings.experiment_dir.uri}", flush=True)


def _point_text(point: dict) -> str:
    """A search point's sampled values, e.g. `alpha=0.2512, unlearn.lr=0.001`."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in point.items())
