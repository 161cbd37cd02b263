"""Training a DCGAN from scratch: the original model, and `retrain` (the same training on the
retained images only). Both are cached through l2l/cache.py under a content hash of what
determines them, like l2l/pretrain.py's generators.

Both train to the same criterion: `pretrain.epochs` epochs, or with `pretrain.fid_patience`
until the FID of their samples against held-out real images stops improving (`FidCheck`,
`train_gan`). The seconds recorded are training only, up to the epoch whose weights are kept:
the measurements, and the patience epochs after the best one, are left out, so a retrained
model's cost is never inflated by the criterion that chose it.
"""
from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from l2l import cache, scores
from l2l.checkpoint import Checkpoint
from l2l.data import ImageSet
from l2l.gan.config import GanTrialConfig
from l2l.gan.data import dataset_key, forget_mask, to_gan, to_unit
from l2l.gan.models import GAN
from l2l.training import epoch_batches

log = logging.getLogger("l2l.gan.pretrain")
FORMAT = 1  # bump when the training code changes what a cached model is
CHECK_SAMPLES = 1000  # samples the FID criterion draws after each epoch
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
    pretrain = vars(cfg.pretrain)
    if cfg.pretrain.fid_patience is None:  # as before the criterion: those models stay cached
        pretrain = {k: v for k, v in pretrain.items() if not k.startswith("fid_")}
    key = {"format": FORMAT, "family": "gan", **dataset_key(cfg),
           "generator": {k: getattr(cfg.generator, k) for k in ("name", "nz", "ngf", "ndf")},
           "pretrain": pretrain}
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


@dataclass
class FidCheck:
    """The FID criterion's measure: FID of CHECK_SAMPLES samples (fixed latents) against
    held-out real images, in the project classifier's feature space (as the evaluation's)."""

    classifier: nn.Module
    real: torch.Tensor  # held-out real images [N, C, 32, 32] in [0, 1]
    batch_size: int = 256
    _real_features: torch.Tensor | None = field(default=None, repr=False)

    def __call__(self, gan: GAN, device) -> float:
        from l2l.gan.evaluate import embed

        if self._real_features is None:
            self._real_features, _ = embed(self.classifier, self.real, device, self.batch_size)
        was = gan.training
        g = torch.Generator().manual_seed(12345)  # the same latents every epoch
        samples = to_unit(gan.eval().sample(CHECK_SAMPLES, g, device, self.batch_size))
        gan.train(was)
        fake, _ = embed(self.classifier, samples, device, self.batch_size)
        return scores.fid(self._real_features, fake)


@dataclass
class Training:
    """What training a GAN recorded: the epochs whose weights were kept, the seconds spent
    training up to them (measurements excluded), the epochs and seconds run in all, and the
    FID after each epoch (with the criterion)."""

    epochs: int
    seconds: float
    epochs_run: int
    seconds_run: float
    fid: list[float]


def train_gan(cfg: GanTrialConfig, images: torch.Tensor, device: torch.device,
              check: FidCheck | None = None, checkpoint: Checkpoint | None = None
              ) -> tuple[GAN, Training]:
    """Trains on `images` ([N, C, 32, 32] in [0, 1]); seeded, so the same config and images
    give the same weights. Without `pretrain.fid_patience`, `pretrain.epochs` epochs; with it,
    `check` after each epoch, until `fid_patience` epochs in a row lower the best FID by less
    than `fid_tolerance` (relative), keeping the best epoch's weights. `checkpoint`: saved
    after every epoch, resumed from when it holds one (l2l/checkpoint.py)."""
    p = cfg.pretrain
    if p.fid_patience is not None and check is None:
        raise ValueError("pretrain.fid_patience needs a FidCheck")
    checkpoint = checkpoint or Checkpoint(None)
    torch.manual_seed(p.seed)
    gan = build_gan(cfg).to(device).train()
    opt_d, opt_g = optimisers(gan, p.lr)
    g = torch.Generator().manual_seed(p.seed)
    x = to_gan(images)
    state = {"model": gan, "opt_d": opt_d, "opt_g": opt_g, "data": g}
    epoch, extra = checkpoint.resume("train", state)
    # the training seconds of the epochs kept count across a stop; the measurements never do
    seconds, history = extra.get("seconds", 0.0), extra.get("history", [])
    best = tuple(extra.get("best", (math.inf, 0, 0.0, None)))  # FID, epoch, seconds, weights
    stopped = check is not None and epoch and epoch - best[1] >= p.fid_patience
    for epoch in range(epoch + 1, 0 if stopped else p.epochs + 1):
        t0 = time.perf_counter()
        for idx in epoch_batches(len(x), p.batch_size, g):
            if len(idx) < 2:  # BatchNorm needs two images
                continue
            gan_step(gan, x[idx].to(device), opt_d, opt_g, g, device)
        seconds += time.perf_counter() - t0
        if check is None:
            log.info("dcgan %s: epoch %d/%d on %d images (%.0f s)", cfg.generator.size, epoch,
                     p.epochs, len(x), seconds)
            checkpoint.save("train", epoch, state, seconds=seconds)
            continue
        fid = check(gan, device)
        history.append(fid)
        if fid < best[0] * (1 - p.fid_tolerance):
            best = (fid, epoch, seconds, copy.deepcopy(gan.state_dict()))
        log.info("dcgan %s: epoch %d/%d on %d images: FID %.2f, best %.2f at epoch %d (%.0f s)",
                 cfg.generator.size, epoch, p.epochs, len(x), fid, best[0], best[1], seconds)
        checkpoint.save("train", epoch, state, seconds=seconds, history=history, best=best)
        if epoch - best[1] >= p.fid_patience:
            break
    if check is None:
        return gan.eval(), Training(p.epochs, seconds, p.epochs, seconds, [])
    gan.load_state_dict(best[3])
    return gan.eval(), Training(best[1], best[2], epoch, seconds, history)


def fid_check(cfg: GanTrialConfig, classifier, real) -> FidCheck | None:
    """The criterion's measure against `real` (an ImageSet), None without the criterion."""
    if cfg.pretrain.fid_patience is None:
        return None
    return FidCheck(classifier, real.x, cfg.eval.batch_size)


def get_gan(cfg: GanTrialConfig, pool: ImageSet, device: torch.device, cache_dir,
            retrain: bool = False, check: FidCheck | None = None):
    """The original GAN (or with `retrain`, the one trained without the forget set), from the
    cache or trained now; `check`: the FID criterion's measure, when the config has one.
    Returns (GAN, CacheHit); meta holds train_seconds and epochs (of the weights kept),
    samples_seen (real images shown to the discriminator until then), epochs_run,
    seconds_run and the FID after each epoch (`fid_history`)."""
    exclude = None
    if retrain:
        keep = ~forget_mask(cfg, pool)
        pool = pool.subset(torch.nonzero(keep).flatten())
        exclude = cfg.forget_set.to_dict()

    key = original_key(cfg, exclude)
    checkpoint = Checkpoint(cache.partial_path(cache_dir, "gan", key))  # resumable training

    def build():
        gan, t = train_gan(cfg, pool.x, device, check, checkpoint)
        return gan.state_dict(), {"train_seconds": t.seconds, "device": str(device),
                                  "threads": torch.get_num_threads(), "images": len(pool),
                                  "epochs": t.epochs, "samples_seen": t.epochs * len(pool),
                                  "epochs_run": t.epochs_run, "seconds_run": t.seconds_run,
                                  "fid_history": t.fid}

    state, hit = cache.get_or_build(cache_dir, "gan", key, build)
    checkpoint.remove()
    gan = build_gan(cfg)
    gan.load_state_dict(state)
    return gan.to(device).eval(), hit


def get_retrained(ctx):
    """The `retrain` model of a trial's context (`TrialContext`): trained to the original's
    criterion, measured against held-out images of the retained classes. (GAN, CacheHit)."""
    check = fid_check(ctx.cfg, ctx.classifier, ctx.splits.validation) \
        if ctx.splits.validation is not None else None
    return get_gan(ctx.cfg, ctx.splits.pool, ctx.device, ctx.cache_dir, retrain=True,
                   check=check)
