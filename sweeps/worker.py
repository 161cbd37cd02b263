"""What runs on a Ray worker: the two Tune trainables of a sweep.

  grid_trial    a grid point: one l2l trial, reported once, at the end
  search_point  a sampled point: every seed in turn, each a trial of its own, reported after
                each seed with a checkpoint of the seeds done

A grid trial's config arrives as the typed l2l config object in Tune's trial config
({"trial": {"trial_id": ..., "config": <config>}}); nothing is parsed here. A search point
builds each seed's config from the spec's base fields and the sampled (plain) values and parses
it once. Nothing here writes results: each report carries the finished trial as a `Unit` (its
rows and metrics), and the driver writes the Parquet file and the MLflow run
(sweeps/callbacks.py).

What a worker needs besides the trial's config (`WorkerContext`) comes through
`tune.with_parameters`, so it is not saved with every trial and a resume supplies it afresh.
Tune experiments saved before configs travelled as objects hold dicts: `grid_unit` parses them.
"""
from __future__ import annotations

import gc
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import ray
from ray import tune

from contract.schema import artifact_dir
from contract.storage import locate, staging
from l2l import experiment
from sweeps.spec import SearchSpec, Trial, point_config

UNIT = "unit"  # the key of the finished trial in a Tune report; the driver pops it


@dataclass(frozen=True)
class WorkerContext:
    sweep_id: str
    results_dir: str
    identity_version: int  # of the trial ids and the config_hash column (contract/identity.py)
    # Fault injection (tests): unit -> how many of its first attempts fail; a unit is a grid
    # trial id ("t000-ab12cd34") or a seed of a search point ("p001/seed=1").
    inject_failures: tuple[tuple[str, int], ...] = ()
    search: SearchSpec | None = None  # base fields, seeds and objective of a search
    model_store: str | None = None  # where unlearned models are kept (--save-models)


@dataclass(frozen=True)
class Unit:
    """A finished trial of the result schema, as reported to the driver."""
    trial_id: str
    config: Any  # the l2l config
    rows: list[dict[str, Any]]  # config, timing and metric columns (no run columns yet)
    metrics: dict[str, float]  # "<split>_<metric>" and the timings: MLflow and the objective
    artifacts: tuple[str, ...]  # files l2l wrote (sample grids, embeddings): paths or URIs
    node_id: str | None
    model: str | None = None  # the kept unlearned model (path or URI), with --save-models
    # the forgetting curve (eval.every) for MLflow: (images seen, {"<split>_<metric>": value})
    curve: tuple[tuple[int, dict[str, float]], ...] = ()


SEEN = "all_samples_seen"  # a curve point's x: the images unlearning drew until then


def metric_values(metrics) -> dict[str, float]:
    """MetricValues as MLflow and the objective name them: {"<split>_<metric>": value}."""
    return {f"{m.split}_{m.metric}": m.value for m in metrics}


def curve_points(result) -> tuple[tuple[int, dict[str, float]], ...]:
    """A trial's forgetting curve as MLflow step metrics: one point per measurement and the
    final metrics as the last, each at its images seen (MLflow's `step`: so the curves of
    methods with other batch sizes share an axis). Empty without a curve."""
    steps = sorted({m.step for m in result.curve})
    if not steps:
        return ()
    points = [metric_values(m for m in result.curve if m.step == s) for s in steps]
    final = {k: v for k, v in metric_values(result.metrics).items() if k in set().union(*points)}
    return tuple((int(p.get(SEEN, 0)), p) for p in [*points, final])


def grid_entry(trial: Trial) -> dict[str, Any]:
    """A grid point as Tune's trial config holds it. The id stays a plain string (Tune names
    the trial from it before it puts the config object back in place of its placeholder)."""
    return {"trial_id": trial.trial_id, "config": trial.config}


def grid_unit(entry: dict[str, Any]) -> Trial:
    """The grid point of a Tune trial's config. Experiments saved before configs travelled as
    objects hold the config's dict: it is parsed here."""
    cfg = entry["config"]
    return Trial(entry["trial_id"],
                 experiment.parse_config(cfg) if isinstance(cfg, Mapping) else cfg)


def seed_trial_id(point_id: str, cfg, identity_version: int) -> str:
    """The trial id of one seed of a search point (the same on every retry of the point)."""
    return f"{point_id}-{cfg.identity_hash(identity_version)[:8]}"


def node_id() -> str | None:
    try:
        return ray.get_runtime_context().get_node_id()
    except Exception:  # not in a Ray worker (a plain-Python call)
        return None


_logging_ready = False


def _setup_logging() -> None:
    """l2l's INFO lines in the worker's log, configured once per worker process."""
    global _logging_ready
    if not _logging_ready:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", force=True)
        _logging_ready = True


def _maybe_fail(ctx: WorkerContext, unit: str) -> None:
    """Injected failures (tests): the first n attempts of `unit` raise. Attempts are counted in
    a file next to the sweep's artifacts (shared storage), so retries on any node count."""
    n = dict(ctx.inject_failures).get(unit, 0)
    if not n:
        return
    counter = artifact_dir(locate(ctx.results_dir), ctx.sweep_id, ".attempts") \
        / unit.replace("/", "_")
    attempt = int(counter.read_bytes()) + 1 if counter.exists() else 1
    counter.write_text(str(attempt))
    if attempt <= n:
        raise RuntimeError(f"injected failure of {unit} (attempt {attempt} of {n} that fail)")


def run_unit(ctx: WorkerContext, trial_id: str, cfg, unit: str | None = None
             ) -> tuple[Unit, dict[str, dict[str, Any]]]:
    """One l2l trial: the finished trial and l2l's cache records. Raises what the trial
    raises (the driver records the failure)."""
    _setup_logging()
    _maybe_fail(ctx, unit or trial_id)
    where = artifact_dir(locate(ctx.results_dir), ctx.sweep_id, trial_id)
    with staging(where) as local:  # on object storage: written here, then uploaded
        result = experiment.run(cfg, artifact_dir=local, model_store=ctx.model_store)
        files = tuple((where / Path(p).relative_to(local).as_posix()).uri
                      for name, p in result.artifacts.items() if name != "model")
    metrics = metric_values(result.metrics)
    timings = {"pretrain_seconds": result.pretrain_seconds,
               "unlearn_seconds": result.unlearn_seconds, "eval_seconds": result.eval_seconds,
               "peak_memory_mb": result.peak_memory_mb}
    metrics.update({k: v for k, v in timings.items() if v is not None})
    unit = Unit(trial_id, cfg, result.rows(ctx.identity_version), metrics,
                files, node_id(), result.artifacts.get("model"), curve_points(result))
    caches = result.caches
    del result
    # A reused worker runs trial after trial: a trial's models and optimisers left in
    # reference cycles hold their tensors until Python's cyclic collector runs, and with few
    # (but large) objects it rarely does. Uncollected, they grew a worker by about 0.5 GB a
    # trial (20 GB after 80 GAN trials on a 24 GiB machine). A failed trial's garbage waits
    # for the next trial's collection: one trial's worth, not a growth.
    gc.collect()
    return unit, caches


def _cache_summary(caches: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Whether the original model and the classifier were read from the cache (the driver's
    summary says what a sweep trained), and the seconds the trial spent building cache entries
    of any kind (the progress line's estimate leaves those out)."""
    built = [c for c in caches.values() if c.get("hit") is False]
    out = {"build_seconds": float(sum(c.get("seconds", 0.0) for c in built))}
    for kind in ("generator", "classifier"):
        if kind in caches:
            out[f"{kind}_cache_hit"] = caches[kind].get("hit")
            out[f"{kind}_cache_path"] = caches[kind].get("path")
    return out


def grid_trial(config: dict[str, Any], ctx: WorkerContext) -> None:
    """The trainable of a grid point. A trial is one function call with no useful intermediate
    state (the expensive original model is cached on disk), so it reports once, at the end,
    with no checkpoint: a retried trial starts over."""
    trial = grid_unit(config["trial"])
    unit, caches = run_unit(ctx, trial.trial_id, trial.config)
    # Last statement: Tune may stop the function at its final report.
    tune.report({UNIT: unit, "node_id": unit.node_id, **_cache_summary(caches)})


def objective(metrics: dict[str, float], search: SearchSpec) -> float:
    """Sum of weight x metric over the spec's (split, metric) -> weight; a metric with a
    target (mia_auc: 0.5) counts as its distance to it, so an inverted attack is no better."""
    total = 0.0
    for (split, metric), w in search.objective.items():
        key = f"{split}_{metric}"
        if key not in metrics:
            raise KeyError(f"search.metric.{split}.{metric}: the trial has no such metric "
                           f"(it has: {', '.join(sorted(metrics))})")
        target = search.target(split, metric)
        total += w * (metrics[key] if target is None else abs(metrics[key] - target))
    return total


def point_state(checkpoint: tune.Checkpoint | None) -> list[dict[str, Any]]:
    """The seeds a point finished, from its checkpoint: [{seed, trial_id, objective, metrics}]."""
    if checkpoint is None:
        return []
    with checkpoint.as_directory() as d:
        return json.loads((Path(d) / "point.json").read_text())["seeds"]


def search_point(config: dict[str, Any], ctx: WorkerContext) -> None:
    """The trainable of a search point: every seed in turn, each a trial of its own.

    After each seed it reports the objective averaged over the seeds done so far, with a
    checkpoint listing them: ASHA compares points after the same number of seeds, and a retried
    or resumed point continues with its next seed instead of starting over."""
    s = ctx.search
    point_id = tune.get_context().get_trial_name()
    done = point_state(tune.get_checkpoint())
    if len(done) == len(s.seeds):  # resumed after its last seed: only the report is due
        _report_point(done, None)
        return
    for seed in s.seeds[len(done):]:
        cfg = experiment.parse_config(point_config(s.base, config["point"], seed))
        trial_id = seed_trial_id(point_id, cfg, ctx.identity_version)
        unit, _ = run_unit(ctx, trial_id, cfg, f"{point_id}/seed={seed}")
        done.append({"seed": seed, "trial_id": trial_id, "metrics": unit.metrics,
                     "objective": objective(unit.metrics, s)})
        _report_point(done, unit)


def point_means(done: list[dict[str, Any]]) -> tuple[float, dict[str, float]]:
    """The objective and every metric, averaged over the seeds done."""
    mean = sum(d["objective"] for d in done) / len(done)
    keys = set.intersection(*(set(d["metrics"]) for d in done))
    return mean, {k: sum(d["metrics"][k] for d in done) / len(done) for k in sorted(keys)}


def _report_point(done: list[dict[str, Any]], unit: Unit | None) -> None:
    mean, means = point_means(done)
    report = {"objective": mean, "seeds_done": len(done), "node_id": node_id(),
              "trial_ids": [d["trial_id"] for d in done],
              **{f"mean_{k}": v for k, v in means.items()}}
    if unit is not None:
        report[UNIT] = unit
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "point.json").write_text(json.dumps({"seeds": done}))
        tune.report(report, checkpoint=tune.Checkpoint.from_directory(tmp))
