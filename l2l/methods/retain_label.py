"""`retain_label` baseline: train the whole model so that each forget input produces what the
original model produces for a retain input of the same batch:
L = task(D_R) + alpha * task(x_f, target = teacher(x_r)).
The forget term acts on forget samples (the released VQ-GAN code weights it by (1 + label) and
so applies it to the wrong samples; that defect is not reproduced)."""
import logging

import torch

from l2l.context import TrialContext
from l2l.methods.common import frozen_copy, log_every, step, whole_model

log = logging.getLogger("l2l.methods.retain_label")


def retain_label(model, ctx: TrialContext):
    u, retain = ctx.cfg.unlearn, ctx.splits.retain
    if retain is None:
        raise ValueError("retain_label needs retain images (retain.mode none gives none)")
    teacher = frozen_copy(model)
    opt = whole_model(model, u.lr)
    for i in range(u.steps):
        x_r = ctx.batch(retain.x, u.batch_size)
        x_f = ctx.batch(ctx.splits.forget.x, u.batch_size)
        with torch.no_grad():
            target = teacher.reconstruct(x_r, ctx.mask, ctx.generator)
        loss = (model.task_loss(x_r, ctx.mask, g=ctx.generator)
                + ctx.cfg.alpha * model.task_loss(x_f, ctx.mask, target=target, g=ctx.generator))
        step(opt, loss)
        if log_every(i, u.steps):
            log.info("retain_label step %d/%d: loss %.5f", i + 1, u.steps, loss.item())
    return model.eval().requires_grad_(False)
