"""`l2l`: the image-to-image paper's method (Li et al., ICLR 2024).

Only the encoder E is trained; the decoder stays frozen. With E0 the frozen original encoder,
T the task's masking and n a noise image:
    L = L_R + alpha * L_F
    L_R = MSE(E(T(x_r)), E0(T(x_r)))      keep retain embeddings where they were
    L_F = MSE(E(T(x_f)), E0(T(n)))        move forget embeddings to where noise lands
The forget target is the teacher's embedding of a noise *image*, not raw noise, so it stays on
the encoder's output manifold and the decoder turns it into noise-like content.
"""
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
        x_r = ctx.batch(retain.x, u.batch_size) if retain else None
        x_f = ctx.batch(ctx.splits.forget.x, u.batch_size)
        aux_r = model.sample_aux(x_r, ctx.mask, ctx.generator) if retain else None
        aux_f = model.sample_aux(x_f, ctx.mask, ctx.generator)
        with torch.no_grad():
            target_f = teacher.encode(noise_images(x_f, cfg.noise, ctx.generator), ctx.mask, aux_f)
            target_r = teacher.encode(x_r, ctx.mask, aux_r) if retain else None
        loss_f = feature_mse(model.encode(x_f, ctx.mask, aux_f), target_f)
        loss_r = (feature_mse(model.encode(x_r, ctx.mask, aux_r), target_r) if retain
                  else torch.zeros((), device=ctx.device))
        step(opt, loss_r + cfg.alpha * loss_f)
        if log_every(i, u.steps):
            log.info("l2l step %d/%d: retain %.5f forget %.5f", i + 1, u.steps,
                     loss_r.item(), loss_f.item())
    return model.eval().requires_grad_(False)
