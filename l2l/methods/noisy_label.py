"""`noisy_label` baseline: train the whole model so that forget inputs produce noise in the
hidden region (random targets) while retain inputs keep their real targets:
L = task(D_R) + alpha * task(D_F, target = x_f with noise in the hidden region)."""
import logging

from l2l.context import TrialContext
from l2l.methods.common import log_every, noise_in_hidden_region, step, whole_model

log = logging.getLogger("l2l.methods.noisy_label")


def noisy_label(model, ctx: TrialContext):
    u, retain = ctx.cfg.unlearn, ctx.splits.retain
    opt = whole_model(model, u.lr)
    for i in range(u.steps):
        x_f = ctx.batch(ctx.splits.forget.x, u.batch_size)
        target = noise_in_hidden_region(x_f, ctx.mask, model.patch, ctx.generator)
        loss = ctx.cfg.alpha * model.task_loss(x_f, ctx.mask, target=target, g=ctx.generator)
        if retain is not None:
            x_r = ctx.batch(retain.x, u.batch_size)
            loss = loss + model.task_loss(x_r, ctx.mask, g=ctx.generator)
        step(opt, loss)
        if log_every(i, u.steps):
            log.info("noisy_label step %d/%d: loss %.5f", i + 1, u.steps, loss.item())
    return model.eval().requires_grad_(False)
