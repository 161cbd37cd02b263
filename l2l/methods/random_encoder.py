"""`random_encoder` baseline: encoder only; forget features are pushed to Gaussian features with
the teacher's mean and std (per feature map), retain features are distilled from the teacher:
L = MSE(E(x_r), E0(x_r)) + alpha * MSE(E(x_f), z),  z ~ N(mean(E0(x_f)), std(E0(x_f)))."""
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
        x_f = ctx.batch(ctx.splits.forget.x, u.batch_size)
        aux_f = model.sample_aux(x_f, ctx.mask, ctx.generator)
        with torch.no_grad():
            feats = teacher.encode(x_f, ctx.mask, aux_f)
            targets = [torch.randn(f.shape, generator=ctx.generator).to(f) * f.std() + f.mean()
                       for f in feats]
        loss = ctx.cfg.alpha * feature_mse(model.encode(x_f, ctx.mask, aux_f), targets)
        if retain is not None:
            x_r = ctx.batch(retain.x, u.batch_size)
            aux_r = model.sample_aux(x_r, ctx.mask, ctx.generator)
            with torch.no_grad():
                target_r = teacher.encode(x_r, ctx.mask, aux_r)
            loss = loss + feature_mse(model.encode(x_r, ctx.mask, aux_r), target_r)
        step(opt, loss)
        if log_every(i, u.steps):
            log.info("random_encoder step %d/%d: loss %.5f", i + 1, u.steps, loss.item())
    return model.eval().requires_grad_(False)
