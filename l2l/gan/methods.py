"""GAN unlearning baselines and references (the cascade and its ablations: l2l/gan/cascade.py);
registered in l2l/gan/config.py METHODS.

A method is `fn(gan, ctx) -> gan`: it receives a private copy of the original GAN (generator
and discriminator) and a `l2l.context.TrialContext`, and returns the unlearned pair. Real
images it trains on are drawn with `ctx.batch`, which counts them in `ctx.samples_seen` (the
"samples seen" of the efficiency comparison).
"""
from __future__ import annotations

import logging

from l2l.context import TrialContext
from l2l.gan.data import to_gan
from l2l.gan.models import GAN
from l2l.gan.pretrain import bce, gan_step, get_retrained, optimisers
from l2l.gan.stopping import unlearn_rounds

log = logging.getLogger("l2l.gan.methods")


def original(gan: GAN, ctx: TrialContext) -> GAN:
    ctx.reported_seconds = 0.0  # nothing was unlearned
    return gan


def retrain(gan: GAN, ctx: TrialContext) -> GAN:
    """The gold standard: the original's training on the retained images only, cached (its key
    adds the forget set); its time is the training time, also when read from the cache."""
    retrained, hit = get_retrained(ctx)
    log.info("retrain: %s %s", "loaded from cache" if hit.hit else "trained and cached", hit.path)
    ctx.caches["retrain"] = hit
    ctx.reported_seconds = float(hit.meta["train_seconds"])
    ctx.samples_seen = int(hit.meta["samples_seen"])
    ctx.epochs = float(hit.meta["epochs"])
    return retrained


def finetune_retain(gan: GAN, ctx: TrialContext) -> GAN:
    """Keeps training the GAN, on retained images only, for the unlearning budget's steps."""
    u = ctx.cfg.unlearn
    gan.train()
    opt_d, opt_g = optimisers(gan, u.lr)
    retain = to_gan(ctx.splits.retain.x)
    unlearn_rounds(gan, ctx, u.rounds_for(len(ctx.splits.forget)), lambda: gan_step(
        gan, ctx.batch(retain, u.batch_size), opt_d, opt_g, ctx.generator, ctx.device))
    return gan.eval()


def gradient_ascent(gan: GAN, ctx: TrialContext) -> GAN:
    """Negates the training loss on the forget images: the discriminator ascends its
    real-image loss on them (the generator's loss involves no real data, so it follows the
    updated discriminator with its usual step). Uses no retained data."""
    u = ctx.cfg.unlearn
    gan.train()
    opt_d, opt_g = optimisers(gan, u.lr)
    forget = to_gan(ctx.splits.forget.x)

    def one_round():
        loss_d = -bce(gan.D(ctx.batch(forget, u.batch_size)), 1.0)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = bce(gan.D(gan.G(ctx.latents(u.batch_size, gan.nz))), 1.0)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

    unlearn_rounds(gan, ctx, u.rounds_for(len(forget)), one_round)
    return gan.eval()


