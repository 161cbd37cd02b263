"""The relearning attack: does forgetting survive an attacker who fine-tunes the unlearned
model on a few of the forgotten images?

After unlearning, the attacker holds `relearn.images` images of the forget set (drawn by
`relearn.seed`) and trains the whole model on them for `relearn.steps` steps with the model's
own training objective: the task loss under random masks (image-to-image), the DCGAN loss
(GAN). The trial is then evaluated as usual, so a sweep over `relearn.steps` gives the forget
metrics' way back toward the original's; the same attack on the retrained model, which never
saw those images, is the baseline (how fast any model learns them from scratch).

The attack draws from generators of its own, not the trial's: the unlearning budget
(`samples_seen`) and the unlearning's batches stay as they were.
"""
from __future__ import annotations

import logging

import torch

from l2l.methods.common import step, whole_model

log = logging.getLogger("l2l.relearn")


def attack_images(images: torch.Tensor, r) -> tuple[torch.Tensor, torch.Generator]:
    """The `r.images` forget images the attacker holds [k, C, H, W], and the generator of its
    batches (both from `r.seed`)."""
    g = torch.Generator().manual_seed(r.seed)
    held = images[torch.randperm(len(images), generator=g)[:r.images]]
    return held, g


def batches(held: torch.Tensor, r, g: torch.Generator):
    """`r.steps` batches of min(batch_size, images) held images, drawn with replacement."""
    size = min(r.batch_size, len(held))
    for _ in range(r.steps):
        yield held[torch.randint(len(held), (size,), generator=g)]


def relearn_i2i(model, ctx, r):
    """Fine-tunes an image-to-image generator on held forget images: its task loss, random
    masks (how it was pretrained), AdamW on every weight."""
    from l2l.tasks import TrainingMasks

    held, g = attack_images(ctx.splits.forget.x, r)
    masks = TrainingMasks(ctx.mask, 1.0, torch.Generator().manual_seed(r.seed + 1))
    model.requires_grad_(True).train()
    opt = whole_model(model, r.lr)
    for i, x in enumerate(batches(held, r, g)):
        loss = model.task_loss(x.to(ctx.device), masks(), g=g)
        step(opt, loss)
        if i + 1 == r.steps:
            log.info("relearn: %d steps on %d forget images, task loss %.5f", r.steps,
                     len(held), loss.item())
    return model.eval().requires_grad_(False)


def relearn_gan(gan, ctx, r):
    """Fine-tunes a GAN on held forget images: DCGAN steps (discriminator, then generator)."""
    from l2l.gan.data import to_gan
    from l2l.gan.pretrain import gan_step, optimisers

    held, g = attack_images(to_gan(ctx.splits.forget.x), r)
    gan.requires_grad_(True).train()
    opt_d, opt_g = optimisers(gan, r.lr)
    for x in batches(held, r, g):
        gan_step(gan, x.to(ctx.device), opt_d, opt_g, g, ctx.device)
    log.info("relearn: %d GAN steps on %d forget images", r.steps, len(held))
    return gan.eval()
