"""`l2l`: the image-to-image paper's method ("Ours" of Li et al., ICLR 2024), checked line by
line against its definition:

- only the encoder E trains, the decoder is frozen -> `encoder_only` (diffusion: the encoder is
  the UNet's input and middle blocks, l2l/generators/diffusion.py).
- L = L_R + alpha x L_F -> `loss_r + cfg.alpha * loss_f`.
- L_R = || E(T(x_r)) - E0(T(x_r)) ||^2 -> MSE between the student's and the frozen original's
  (`frozen_copy`) encodings of the masked retain batch (`feature_mse`: summed over feature
  maps; one map for MAE and VQ-GAN, every input / middle block output for diffusion).
- L_F = || E(T(x_f)) - E0(T(n)) ||^2 -> the target is the teacher's embedding of a noise
  *image* n, not raw noise, so it stays on the encoder's output manifold.
- noise image n -> `noise_images(x_f, cfg.noise)`: `normal` (default) is clamp(randn x
  std(batch) + mean(batch), 0, 1) as in the released VQ-GAN code; `uniform` and `constant` are
  its options. With `noise_target: paper` (default) the generator's `noise_input` places it:
  the whole image for MAE and VQ-GAN, only the hidden region for diffusion (as in the released
  diffusion code); `whole_image` gives every generator the whole noise image (an ablation).
- T: student and teacher see the same mask and the same random draws (`sample_aux`: diffusion
  timesteps and noise) each step.
- alpha -> `cfg.alpha` (default 0.25; released: 0.2-0.25 for VQ-GAN, 0.1 for diffusion).
- without retain data (retain.mode none) -> L_R is 0: the forget term alone. A proxy retain set
  (retain.mode proxy, "Ours, proxy D_R") takes the place of x_r.
- budget -> unlearn.batch_size forget + unlearn.batch_size retain images a step (`ctx.batch`,
  counted in `samples_seen`), for unlearn.steps steps.
- optimiser -> as every method (l2l/methods/common.py): AdamW (0.9, 0.95), weight decay 0.05,
  grad clip 3.0 as released for VQ-GAN, but a constant unlearn.lr for unlearn.steps steps
  (released: lr 1e-4 x batch / 256 with warm-up and cosine for about 6 epochs; diffusion
  Adam 5e-5), the same for every method so that they differ only in their loss."""
from __future__ import annotations

import logging

import torch

from l2l.context import TrialContext
from l2l.methods import feature_mse
from l2l.methods.common import encoder_only, frozen_copy, log_every, noise_images, step

log = logging.getLogger("l2l.methods.l2l")


def l2l(model, ctx: TrialContext):
    cfg, u = ctx.cfg, ctx.cfg.unlearn
    teacher = frozen_copy(model)
    opt = encoder_only(model, u.lr)
    retain = ctx.splits.retain  # None in retain mode `none`: the forget term alone
    for i in range(u.steps):
        mask = ctx.step_mask()  # this step's mask (unlearn.random_masks)
        x_r = ctx.batch(retain.x, u.batch_size) if retain else None
        x_f = ctx.batch(ctx.splits.forget.x, u.batch_size)
        aux_r = model.sample_aux(x_r, mask, ctx.generator) if retain else None
        aux_f = model.sample_aux(x_f, mask, ctx.generator)
        with torch.no_grad():
            noise = noise_images(x_f, cfg.noise, ctx.generator)
            if cfg.noise_target == "paper":  # the diffusion model: only its hidden region
                noise = model.noise_input(x_f, noise, mask)
            target_f = teacher.encode(noise, mask, aux_f)
            target_r = teacher.encode(x_r, mask, aux_r) if retain else None
        loss_f = feature_mse(model.encode(x_f, mask, aux_f), target_f)
        loss_r = (feature_mse(model.encode(x_r, mask, aux_r), target_r) if retain
                  else torch.zeros((), device=ctx.device))
        step(opt, loss_r + cfg.alpha * loss_f)
        if ctx.after_step(model, last=i == u.steps - 1):  # l2l/monitor.py
            break
        if log_every(i, u.steps):
            log.info("l2l step %d/%d: retain %.5f forget %.5f", i + 1, u.steps,
                     loss_r.item(), loss_f.item())
    return model.eval().requires_grad_(False)
