"""GAN unlearning methods by name: the paper's cascade (l2l/gan/cascade.py) and its baselines.

A method is `fn(gan, ctx) -> gan`: it receives a private copy of the original GAN (generator
and discriminator) and a `GanContext`, and returns the unlearned pair. It counts the real
images it trains on in `ctx.samples_seen` (the "samples seen" of the efficiency comparison).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from l2l.gan.config import GanTrialConfig
from l2l.gan.data import GanSplits, to_gan
from l2l.gan.models import GAN
from l2l.gan.pretrain import bce, gan_step, get_gan, optimisers
from l2l.registry import Registry

log = logging.getLogger("l2l.gan.methods")
METHODS: Registry = Registry("gan method")


@dataclass
class GanContext:
    cfg: GanTrialConfig
    splits: GanSplits
    classifier: torch.nn.Module  # the project's classifier, [N, 1, 32, 32] in [0, 1] -> logits
    device: torch.device
    generator: torch.Generator  # seeded: batches and latents are reproducible
    cache_dir: Path
    caches: dict = field(default_factory=dict)  # cache entries a method used, by name
    samples_seen: int = 0  # real (or substitute) images trained on
    epochs: float | None = None  # set by methods that count whole epochs (retrain)

    def batch(self, images: torch.Tensor, size: int) -> torch.Tensor:
        """`size` images drawn with replacement, on the device; counted as seen."""
        self.samples_seen += size
        return images[torch.randint(len(images), (size,), generator=self.generator)] \
            .to(self.device)

    def latents(self, n: int, nz: int) -> torch.Tensor:
        return torch.randn(n, nz, generator=self.generator).to(self.device)


@METHODS.register("original")
def original(gan: GAN, ctx: GanContext) -> GAN:
    return gan


@METHODS.register("retrain")
def retrain(gan: GAN, ctx: GanContext) -> GAN:
    """The gold standard: the original's training on the retained images only, cached (its key
    adds the forget set); its time is the training time, also when read from the cache."""
    retrained, hit = get_gan(ctx.cfg, ctx.splits.pool, ctx.device, ctx.cache_dir, retrain=True)
    log.info("retrain: %s %s", "loaded from cache" if hit.hit else "trained and cached", hit.path)
    ctx.caches["retrain"] = hit
    ctx.samples_seen = int(hit.meta["samples_seen"])
    ctx.epochs = float(hit.meta["epochs"])
    return retrained


@METHODS.register("finetune_retain")
def finetune_retain(gan: GAN, ctx: GanContext) -> GAN:
    """Keeps training the GAN, on retained images only, for `unlearn.rounds` steps."""
    u = ctx.cfg.unlearn
    gan.train()
    opt_d, opt_g = optimisers(gan, u.lr)
    retain = to_gan(ctx.splits.retain.x)
    for _ in range(u.rounds):
        gan_step(gan, ctx.batch(retain, u.batch_size), opt_d, opt_g, ctx.generator, ctx.device)
    return gan.eval()


@METHODS.register("gradient_ascent")
def gradient_ascent(gan: GAN, ctx: GanContext) -> GAN:
    """Negates the training loss on the forget images: the discriminator ascends its
    real-image loss on them (the generator's loss involves no real data, so it follows the
    updated discriminator with its usual step). Uses no retained data."""
    u = ctx.cfg.unlearn
    gan.train()
    opt_d, opt_g = optimisers(gan, u.lr)
    forget = to_gan(ctx.splits.forget.x)
    for _ in range(u.rounds):
        loss_d = -bce(gan.D(ctx.batch(forget, u.batch_size)), 1.0)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = bce(gan.D(gan.G(ctx.latents(u.batch_size, gan.nz))), 1.0)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
    return gan.eval()


# Registration of the cascade and its ablations.
from l2l.gan import cascade as _cascade  # noqa: E402,F401
