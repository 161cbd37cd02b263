"""Training a DCGAN from scratch: the original model, and `retrain` (the same training on the
retained images only). Both are cached through l2l/cache.py under a content hash of what
determines them, like l2l/pretrain.py's generators.
"""
from __future__ import annotations

import logging
import time

import torch
from torch import nn

from l2l import cache
from l2l.data import ImageSet
from l2l.gan.config import GanTrialConfig
from l2l.gan.data import dataset_key, forget_mask, to_gan
from l2l.gan.models import GAN
from l2l.training import epoch_batches

log = logging.getLogger("l2l.gan.pretrain")
FORMAT = 1  # bump when the training code changes what a cached model is
BETAS = (0.5, 0.999)  # DCGAN's Adam


def bce(logits: torch.Tensor, target) -> torch.Tensor:
    """Binary cross-entropy on logits against a number or a tensor of targets."""
    if not torch.is_tensor(target):
        target = torch.full_like(logits, float(target))
    return nn.functional.binary_cross_entropy_with_logits(logits, target)


def build_gan(cfg: GanTrialConfig) -> GAN:
    g = cfg.generator
    return GAN(g.nz, g.ngf, g.ndf, cfg.channels)


def original_key(cfg: GanTrialConfig, exclude: dict | None = None) -> dict:
    """Everything that determines the original GAN, and nothing else (so trials share it).
    `retrain` models add what was left out of their training data."""
    key = {"format": FORMAT, "family": "gan", **dataset_key(cfg),
           "generator": {k: getattr(cfg.generator, k) for k in ("name", "nz", "ngf", "ndf")},
           "pretrain": vars(cfg.pretrain)}
    if exclude:
        key["exclude"] = exclude
    return key


def gan_step(gan: GAN, real: torch.Tensor, opt_d, opt_g, g: torch.Generator, device) -> None:
    """One DCGAN step: D on a real and a generated batch, then G (non-saturating loss)."""
    z = torch.randn(len(real), gan.nz, generator=g).to(device)
    fake = gan.G(z)
    loss_d = bce(gan.D(real), 1.0) + bce(gan.D(fake.detach()), 0.0)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    loss_g = bce(gan.D(fake), 1.0)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()


def optimisers(gan: GAN, lr: float):
    return (torch.optim.Adam(gan.D.parameters(), lr=lr, betas=BETAS),
            torch.optim.Adam(gan.G.parameters(), lr=lr, betas=BETAS))


def train_gan(cfg: GanTrialConfig, images: torch.Tensor, device: torch.device) -> GAN:
    """`pretrain.epochs` epochs over `images` ([N, 1, 32, 32] in [0, 1]); seeded, so the same
    config and images give the same weights."""
    p = cfg.pretrain
    torch.manual_seed(p.seed)
    gan = build_gan(cfg).to(device).train()
    opt_d, opt_g = optimisers(gan, p.lr)
    g = torch.Generator().manual_seed(p.seed)
    x = to_gan(images)
    t0 = time.perf_counter()
    for epoch in range(p.epochs):
        for idx in epoch_batches(len(x), p.batch_size, g):
            if len(idx) < 2:  # BatchNorm needs two images
                continue
            gan_step(gan, x[idx].to(device), opt_d, opt_g, g, device)
        log.info("dcgan %s: epoch %d/%d on %d images (%.0f s)", cfg.generator.size, epoch + 1,
                 p.epochs, len(x), time.perf_counter() - t0)
    return gan.eval()


def get_gan(cfg: GanTrialConfig, pool: ImageSet, device: torch.device, cache_dir,
            retrain: bool = False):
    """The original GAN (or with `retrain`, the one trained without the forget set), from the
    cache or trained now. Returns (GAN, CacheHit); meta holds train_seconds, epochs and
    samples_seen (real images shown to the discriminator)."""
    exclude = None
    if retrain:
        keep = ~forget_mask(cfg, pool)
        pool = pool.subset(torch.nonzero(keep).flatten())
        exclude = cfg.forget_set.to_dict()

    def build():
        t0 = time.perf_counter()
        gan = train_gan(cfg, pool.x, device)
        return gan.state_dict(), {"train_seconds": time.perf_counter() - t0,
                                  "device": str(device), "images": len(pool),
                                  "epochs": cfg.pretrain.epochs,
                                  "samples_seen": cfg.pretrain.epochs * len(pool)}

    state, hit = cache.get_or_build(cache_dir, "gan", original_key(cfg, exclude), build)
    gan = build_gan(cfg)
    gan.load_state_dict(state)
    return gan.to(device).eval(), hit
