"""Unlearning that stops when it has forgotten (`unlearn.stop_every`): the GAN paper's claim is
that unlearning reaches what retraining reaches, so the budget is spent only until the
forgetting measure gets to the retrained model's level.

The measure and the reference:
  class  the share of the GAN's samples the classifier puts in a forgotten class; reached when
         it is at or below the retrained model's upper 95% bound (its share + 1.96 x its
         standard error over the samples);
  item   the discriminator's membership AUC on the forgotten items against held-out images;
         reached when it lies inside the retrained model's 95% interval (bootstrap over the
         images).
The retrained model is the `retrain` method's (cached: a sweep trains it once). The measure is
taken every `stop_every` rounds, and after the budget's last, on a fixed set of latents, by the
trial's monitor (l2l/monitor.py, the mechanism of the forgetting curve too); its time is left
out of the unlearning seconds (`TrialContext.excluded_seconds`), so a stopped run's time is the
time to forget.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch

from l2l import scores
from l2l.context import TrialContext
from l2l.gan.models import GAN

Z = 1.959964  # the normal quantile of a two-sided 95% interval
CHECK_SAMPLES = 1000  # samples (class) per check; item checks use the evaluation's images


@dataclass(frozen=True)
class Reference:
    """The retrained model's level: `value` ± `half` (95%); `upper_only` for the class
    measure (lower is better: at or below its upper bound is enough)."""
    value: float
    half: float
    upper_only: bool

    def reached(self, measure: float) -> bool:
        if self.upper_only:
            return measure <= self.value + self.half
        return abs(measure - self.value) <= self.half


def measure(gan: GAN, ctx: TrialContext) -> tuple[float, float]:
    """(forgetting measure, its standard error) of `gan` for the trial's setting."""
    from l2l.gan.data import to_unit
    from l2l.gan.evaluate import d_scores

    cfg = ctx.cfg
    was = gan.training
    gan.eval()
    try:
        if cfg.setting == "class":
            g = torch.Generator().manual_seed(cfg.seed * 7 + 3)  # the same latents every check
            samples = to_unit(gan.sample(CHECK_SAMPLES, g, ctx.device, cfg.eval.batch_size))
            with torch.no_grad():
                logits = torch.cat([ctx.classifier(samples[i:i + 512].to(ctx.device)).cpu()
                                    for i in range(0, len(samples), 512)])
            hit = scores.in_classes(logits, cfg.forget_classes)
            return float(hit.double().mean()), scores.mean_se(hit)
        members = ctx.splits.forget.x[:cfg.eval.mia_images]
        m = d_scores(gan, members, ctx.device, cfg.eval.batch_size)
        h = d_scores(gan, ctx.splits.heldout.x, ctx.device, cfg.eval.batch_size)
        return scores.roc_auc(m, h), scores.bootstrap_se(scores.roc_auc, m, h, paired=False,
                                                         seed=cfg.seed)
    finally:
        gan.train(was)


def reference(ctx: TrialContext) -> Reference:
    """The retrained model's level (retrained now unless cached)."""
    from l2l.gan.pretrain import get_retrained

    retrained, hit = get_retrained(ctx)
    ctx.caches["retrain"] = hit
    value, se = measure(retrained, ctx)
    return Reference(value, Z * (se if math.isfinite(se) else 0.0), ctx.cfg.setting == "class")


class Stopper:
    """The stopping rule's check for the monitor (l2l/monitor.py, which leaves its time out of
    the unlearning seconds): measures and says whether the reference is reached."""

    def __init__(self, gan: GAN, ctx: TrialContext):
        self.ctx = ctx
        t0 = time.perf_counter()
        self.ref = reference(ctx)
        ctx.excluded_seconds += time.perf_counter() - t0

    def __call__(self, gan: GAN) -> bool:
        return self.ref.reached(measure(gan, self.ctx)[0])


def unlearn_rounds(gan: GAN, ctx: TrialContext, rounds: int, step: Callable[[], None]) -> None:
    """Runs a method's rounds, each followed by `ctx.after_step` (the curve's measurements and,
    with `unlearn.stop_every`, the stopping rule, which may end them early); with the rule,
    records the rounds run and whether retrain's level was reached (`ctx.stopping`, metrics
    rounds_run and reached_retrain)."""
    every = ctx.cfg.unlearn.stop_every
    if every:
        ctx.monitor.stop_every(every, Stopper(gan, ctx))
    for r in range(1, rounds + 1):
        step()
        if ctx.after_step(gan, last=r == rounds):
            break
    if every:
        ctx.stopping = {"rounds_run": ctx.monitor.step, "reached_retrain":
                        float(ctx.monitor.reached)}
