"""`random_encoder` baseline ("Random Encoder" of the image-to-image paper, Li et al.,
ICLR 2024), checked line by line against its definition:

- trains the encoder only -> `encoder_only`; the decoder is frozen (diffusion: the encoder is
  the UNet's input and middle blocks, l2l/generators/diffusion.py).
- forget features pushed to Gaussian features with the teacher's mean / std -> per feature map
  of the frozen original's E0(T(x_f)): z ~ N(mean, std) over the whole map, and
  alpha x MSE(E(T(x_f)), z), summed over feature maps (`feature_mse`).
- retain distilled -> MSE(E(T(x_r)), E0(T(x_r))), summed over feature maps.
- L = MSE(E(x_r), E0(x_r)) + alpha x MSE(E(x_f), z).
- student and teacher see the same mask and the same random draws (`sample_aux`: diffusion
  timesteps and noise) each step.
- alpha -> `cfg.alpha` (default 0.25).
- without retain data (retain.mode none) -> the forget term alone.
- the forget term acts on forget samples only (the released VQ-GAN code's (1 + label) weight,
  which applies it to the wrong samples, is not reproduced).
- budget -> unlearn.batch_size forget + unlearn.batch_size retain images a step (`ctx.batch`,
  counted in `samples_seen`), for unlearn.steps steps.
- optimiser -> as every method (l2l/methods/common.py): AdamW (0.9, 0.95), weight decay 0.05,
  grad clip 3.0, constant unlearn.lr, no schedule."""
import logging

import torch

from l2l.context import TrialContext
from l2l.methods import feature_mse
from l2l.methods.common import encoder_only, frozen_copy, log_every, step

log = logging.getLogger("l2l.methods.random_encoder")


def random_encoder(model, ctx: TrialContext):
    u, retain = ctx.cfg.unlearn, ctx.splits.retain
    teacher = frozen_copy(model)
    opt = encoder_only(model, u.lr)
    for i in range(u.steps):
        mask = ctx.step_mask()  # this step's mask (unlearn.random_masks)
        x_f = ctx.batch(ctx.splits.forget.x, u.batch_size)
        aux_f = model.sample_aux(x_f, mask, ctx.generator)
        with torch.no_grad():
            feats = teacher.encode(x_f, mask, aux_f)
            targets = [torch.randn(f.shape, generator=ctx.generator).to(f) * f.std() + f.mean()
                       for f in feats]
        loss = ctx.cfg.alpha * feature_mse(model.encode(x_f, mask, aux_f), targets)
        if retain is not None:
            x_r = ctx.batch(retain.x, u.batch_size)
            aux_r = model.sample_aux(x_r, mask, ctx.generator)
            with torch.no_grad():
                target_r = teacher.encode(x_r, mask, aux_r)
            loss = loss + feature_mse(model.encode(x_r, mask, aux_r), target_r)
        step(opt, loss)
        if ctx.after_step(model, last=i == u.steps - 1):  # l2l/monitor.py
            break
        if log_every(i, u.steps):
            log.info("random_encoder step %d/%d: loss %.5f", i + 1, u.steps, loss.item())
    return model.eval().requires_grad_(False)
