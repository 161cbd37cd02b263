"""One trial of any family, as a plain function: config -> data -> original model -> unlearning
-> evaluation -> `TrialResult`.

Nothing here knows about Ray, MLflow or Parquet; `sweeps` wraps `run_trial`, and
`python -m l2l trial CONFIG` runs it alone. What differs between families lives in their
`TrialSteps` (l2l/i2i.py, l2l/gan/steps.py), found through the family registry
(l2l/experiment.py); the order of the steps, the timers and the result are the same for both.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

from l2l.cache import CacheHit, CacheRoot, cache_info, open_cache
from l2l.classifier import get_classifier
from l2l.context import TrialContext
from l2l.data import ImageSet
from l2l.result import MetricValue, TrialResult
from l2l.training import peak_memory_mb, reset_peak_memory, resolve_device

log = logging.getLogger("l2l.trial")


@dataclass
class Prepared:
    """The data a trial starts from, loaded before any model."""

    train: ImageSet
    test: ImageSet
    pool: ImageSet  # the original model's training images
    classifier: torch.nn.Module  # the project classifier (features and labels of metrics)
    classifier_hit: CacheHit


@dataclass
class Evaluation:
    metrics: list[MetricValue]
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> path
    caches: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> {hit, ...}
    # Seconds inside evaluation that are not evaluation (training a reference model).
    excluded_seconds: float = 0.0


class TrialSteps(Protocol):
    """What a family implements; each step gets the results of the ones before it."""

    def load(self, cfg, split: str, download_dir: Path) -> ImageSet:
        """The `train` or `test` split of the trial's data set, [N, C, 32, 32] in [0, 1]."""

    def dataset_key(self, cfg) -> dict:
        """What identifies the data set in cache keys (the classifier's among them)."""

    def training_pool(self, cfg, train: ImageSet) -> ImageSet:
        """The original model's training images."""

    def build(self, cfg) -> torch.nn.Module:
        """An untrained model of the trial's architecture (stored weights go into it)."""

    def original(self, cfg, prep: Prepared, device: torch.device,
                 cache_dir: CacheRoot) -> tuple[torch.nn.Module, CacheHit]: ...

    def splits(self, cfg, prep: Prepared) -> Any: ...

    def context(self, cfg, prep: Prepared, splits: Any, original: torch.nn.Module,
                device: torch.device, cache_dir: CacheRoot) -> TrialContext: ...

    def curve(self, cfg, prep: Prepared, model: torch.nn.Module, ctx: TrialContext
              ) -> Callable[[torch.nn.Module], list[MetricValue]]:
        """The forgetting curve's measurement of a model (`eval.every`, l2l/monitor.py)."""

    def relearn(self, cfg, model: torch.nn.Module, ctx: TrialContext) -> torch.nn.Module:
        """The relearning attack of `cfg.relearn` on the unlearned model (l2l/relearn.py)."""

    def evaluate(self, cfg, prep: Prepared, model: torch.nn.Module, ctx: TrialContext,
                 artifact_dir: Path | None) -> Evaluation: ...


def prepare(steps: TrialSteps, cfg, device: torch.device, cache_dir: CacheRoot) -> Prepared:
    """The data set's splits, the project classifier (trained once per data set and cached)
    and the original model's training sample."""
    train = steps.load(cfg, "train", cache_dir.local / "data")
    test = steps.load(cfg, "test", cache_dir.local / "data")
    classifier, hit = get_classifier(cfg.classifier, steps.dataset_key(cfg), train, test, device,
                                     cache_dir)
    return Prepared(train, test, steps.training_pool(cfg, train), classifier, hit)


def _set_up(family, cfg, prep: Prepared, original, device, cache_dir: CacheRoot):
    """The trial's context (its splits, seeded generator) and its method's function."""
    steps: TrialSteps = family.steps
    splits = steps.splits(cfg, prep)
    torch.manual_seed(cfg.seed)
    ctx = steps.context(cfg, prep, splits, original, device, cache_dir)
    return ctx, family.methods.get(cfg.method).load(cfg.method)


def unlearned_model(cfg, prep: Prepared, device, cache_dir: CacheRoot) -> torch.nn.Module:
    """The model a trial's unlearning leaves, without evaluating it (the start of a later
    deletion request, l2l/sequence.py): the same steps as `run_trial`'s, so the same model."""
    from l2l.experiment import FAMILIES

    family = FAMILIES.get(cfg.family)
    original, _ = family.steps.original(cfg, prep, device, cache_dir)
    ctx, method = _set_up(family, cfg, prep, original, device, cache_dir)
    return method(copy.deepcopy(original), ctx)


def run_trial(cfg, artifact_dir: Path | None = None, model_store=None) -> TrialResult:
    """One trial. `model_store` (a path or URI): keep the unlearned model there
    (l2l/stored_model.py); its location is the result's `model` artifact."""
    from l2l.experiment import FAMILIES

    family = FAMILIES.get(cfg.family)
    steps: TrialSteps = family.steps
    device = resolve_device(cfg.device)
    reset_peak_memory(device)
    cache_dir = open_cache(cfg.cache_dir)
    prep = prepare(steps, cfg, device, cache_dir)
    log.info("classifier: %s", "loaded from cache" if prep.classifier_hit.hit else "trained")

    t0 = time.perf_counter()
    original, gen_hit = steps.original(cfg, prep, device, cache_dir)
    pretrain_seconds = time.perf_counter() - t0
    log.info("original %s/%s: %s %s (%.1f s)", cfg.generator.name, cfg.generator.size,
             "loaded from cache" if gen_hit.hit else "trained and cached", gen_hit.path,
             pretrain_seconds)

    ctx, method = _set_up(family, cfg, prep, original, device, cache_dir)
    private = copy.deepcopy(original)  # copying is not unlearning: outside the timer
    if cfg.eval.every:  # the forgetting curve: its step 0 now, then every eval.every steps
        ctx.monitor.measure_every(cfg.eval.every, steps.curve(cfg, prep, private, ctx),
                                  private, ctx)
    excluded, t0 = ctx.excluded_seconds, time.perf_counter()  # step 0 is before the timer
    model = method(private, ctx)
    unlearn_seconds = time.perf_counter() - t0 - (ctx.excluded_seconds - excluded)
    if ctx.reported_seconds is not None:  # original: 0; a cached retrain: its training time
        unlearn_seconds = ctx.reported_seconds

    if cfg.relearn is not None:  # the attacker's, after unlearning: outside its timer
        model = steps.relearn(cfg, model, ctx)
    stored = {}
    if model_store is not None:  # outside the timers: keeping a model is not unlearning
        from l2l.stored_model import save

        stored["model"] = save(model, ctx, model_store)
    t0 = time.perf_counter()
    ev = steps.evaluate(cfg, prep, model, ctx, None if artifact_dir is None else
                        Path(artifact_dir))
    eval_seconds = time.perf_counter() - t0 - ev.excluded_seconds
    caches = {"classifier": cache_info(prep.classifier_hit), "generator": cache_info(gen_hit),
              **{k: cache_info(v) for k, v in ctx.caches.items()}, **ev.caches}
    return TrialResult(cfg, ev.metrics, pretrain_seconds, unlearn_seconds, eval_seconds,
                       str(device), peak_memory_mb(device), caches, {**ev.artifacts, **stored},
                       ctx.monitor.curve_rows())
