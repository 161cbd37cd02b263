"""The paper's cascaded unlearning (Sun et al., "Generative Adversarial Networks Unlearning"),
with the choices its text leaves open as options (docs/gan.md), and its ablations.

Each round:
  1. discriminator unlearning (`d_steps`): a batch of retained images (and substitutes) with
     target 1, a batch of forget images with the *fake label* (`fake_target`: 0, a soft value,
     or the mean of D's output on generated images) and a generated batch with target 0;
  2. generator learning (`g_steps`) against the updated discriminator (non-saturating loss),
     plus the *substitution* term: latent codes whose original samples were forget-like are
     regressed onto substitutes, so that region of the latent space keeps producing images
     (no holes) instead of whatever the adversarial loss drifts it to.

Substitution. Before the rounds the original generator draws a bank of latent codes; the
forget-like ones are those the classifier assigns to a forgotten class (class setting), or the
nearest sample of each forgotten item (item setting). Every forget-like sample, and every forget
image in the discriminator's real data, gets one substitute (`substitute`):
  retain    a random retained training image;
  filtered  a random sample of the original generator that is not forget-like;
  nearest   the nearest retained training image (pixel L2).
"""
from __future__ import annotations

import logging

import torch
from torch import nn

from l2l.context import TrialContext
from l2l.gan.data import to_gan, to_unit
from l2l.gan.models import GAN
from l2l.gan.pretrain import bce, optimisers
from l2l.gan.stopping import unlearn_rounds

log = logging.getLogger("l2l.gan.cascade")
BANK = 2048  # latent codes drawn to find the forget-like region (item: at least 2 per item)
NN_CANDIDATES = 4096  # retained images searched for `nearest` substitutes
SUB_WEIGHT = 1.0  # weight of the substitution term next to the adversarial loss


@torch.no_grad()
def _nearest(queries: torch.Tensor, pool: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """Index into `pool` of each query's nearest image (pixel L2): [M]."""
    flat = pool.flatten(1)
    return torch.cat([torch.cdist(queries[i:i + chunk].flatten(1), flat).argmin(1)
                      for i in range(0, len(queries), chunk)])


@torch.no_grad()
def forget_like(gan: GAN, ctx: TrialContext) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z_forget [M, nz], x_forget [M, 1, 32, 32], x_kept [K, 1, 32, 32]): the bank's forget-like
    latent codes and their samples, and the other samples (on the CPU, in [-1, 1])."""
    cfg = ctx.cfg
    n = max(BANK, 2 * cfg.forget_k) if cfg.setting == "item" else BANK
    z = torch.randn(n, gan.nz, generator=ctx.generator)
    gan.G.eval()
    x = torch.cat([gan.G(z[i:i + 512].to(ctx.device)).cpu() for i in range(0, n, 512)])
    if cfg.setting == "class":
        pred = torch.cat([ctx.classifier(to_unit(x[i:i + 512]).to(ctx.device)).argmax(1).cpu()
                          for i in range(0, n, 512)])
        hit = torch.isin(pred, torch.tensor(cfg.forget_classes))
    else:
        hit = torch.zeros(n, dtype=torch.bool)
        hit[_nearest(to_gan(ctx.splits.forget.x), x)] = True
    return z[hit], x[hit], x[~hit]


def substitutes(images: torch.Tensor, kind: str, ctx: TrialContext,
                kept_samples: torch.Tensor) -> torch.Tensor:
    """One substitute for each of `images` ([M, 1, 32, 32] in [-1, 1]): [M, 1, 32, 32]."""
    retain = to_gan(ctx.splits.retain.x)
    g = ctx.generator
    if kind == "retain":
        return retain[torch.randint(len(retain), (len(images),), generator=g)]
    if kind == "filtered":
        return kept_samples[torch.randint(len(kept_samples), (len(images),), generator=g)]
    cand = retain[torch.randperm(len(retain), generator=g)[:NN_CANDIDATES]]
    return cand[_nearest(images, cand)]


def cascade_unlearn(gan: GAN, ctx: TrialContext, fake_label: bool = True,
                    substitution: bool = True, unlearn_d: bool = True,
                    learn_g: bool = True) -> GAN:
    """The cascade; the flags switch off its parts for the ablations."""
    u, c = ctx.cfg.unlearn, ctx.cfg.cascade
    B, dev = u.batch_size, ctx.device
    frozen = {name: {k: v.clone() for k, v in part.state_dict().items()}
              for name, part, on in (("D", gan.D, unlearn_d), ("G", gan.G, learn_g)) if not on}
    for name in frozen:
        getattr(gan, name).requires_grad_(False)
    forget = to_gan(ctx.splits.forget.x)
    real = to_gan(ctx.splits.retain.x)
    z_sub = targets = None
    if substitution:
        z_f, x_f, kept = forget_like(gan, ctx)
        if unlearn_d:  # the forget images' place in the real data goes to substitutes
            real = torch.cat([real, substitutes(forget, c.substitute, ctx, kept)])
        if learn_g and len(z_f):
            z_sub, targets = z_f, substitutes(x_f, c.substitute, ctx, kept)
        log.info("substitution (%s): %d forget-like latent codes of %d", c.substitute,
                 len(z_f), len(z_f) + len(kept))
    gan.train()
    opt_d, opt_g = optimisers(gan, u.lr)

    def one_round():
        for _ in range(c.d_steps if unlearn_d else 0):
            with torch.no_grad():
                fake = gan.G(ctx.latents(B, gan.nz))
            logits_fake = gan.D(fake)
            if fake_label:
                ft = torch.sigmoid(logits_fake).mean().detach() \
                    if c.fake_target == "mean_fake" else torch.tensor(c.fake_target)
                # The forget images form their own batch, like the generated ones: mixed into
                # the real batch, BatchNorm let D tell them apart by batch statistics and the
                # generator drifted *towards* the forgotten class (docs/gan.md).
                loss_d = bce(gan.D(ctx.batch(real, B)), 1.0) + \
                    bce(gan.D(ctx.batch(forget, B)), ft.to(dev).expand(B)) + \
                    bce(logits_fake, 0.0)
            else:
                loss_d = bce(gan.D(ctx.batch(real, B)), 1.0) + bce(logits_fake, 0.0)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        for _ in range(c.g_steps if learn_g else 0):
            z = ctx.latents(B, gan.nz)
            if z_sub is None:
                loss_g = bce(gan.D(gan.G(z)), 1.0)
            else:
                idx = torch.randint(len(z_sub), (B,), generator=ctx.generator)
                out = gan.G(torch.cat([z, z_sub[idx].to(dev)]))  # one batch: one set of BN stats
                ctx.samples_seen += B
                loss_g = bce(gan.D(out[:B]), 1.0) + \
                    SUB_WEIGHT * nn.functional.mse_loss(out[B:], targets[idx].to(dev))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()

    unlearn_rounds(gan, ctx, u.rounds_for(len(forget)), one_round)
    for name, state in frozen.items():  # parts an ablation leaves alone stay the original's
        getattr(gan, name).load_state_dict(state)  # (BatchNorm statistics included)
        getattr(gan, name).requires_grad_(True)
    return gan.eval()


def cascade(gan, ctx):
    return cascade_unlearn(gan, ctx)


def cascade_no_fake_label(gan, ctx):
    """Discriminator trained on retained data only: the forget images get no label at all."""
    return cascade_unlearn(gan, ctx, fake_label=False)


def cascade_no_substitution(gan, ctx):
    return cascade_unlearn(gan, ctx, substitution=False)


def cascade_d_only(gan, ctx):
    """Discriminator unlearning alone; the generator stays the original."""
    return cascade_unlearn(gan, ctx, learn_g=False)


def cascade_g_only(gan, ctx):
    """Generator learning (with substitution) against the original, frozen discriminator."""
    return cascade_unlearn(gan, ctx, unlearn_d=False)
