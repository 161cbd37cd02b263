"""`max_loss` baseline: train the whole model to keep its task loss on the retain set low and to
raise it on the forget set: L = task(D_R) - alpha * task(D_F)."""
import logging

from l2l.context import TrialContext
from l2l.methods.common import log_every, step, whole_model

log = logging.getLogger("l2l.methods.max_loss")


def max_loss(model, ctx: TrialContext):
    u, retain = ctx.cfg.unlearn, ctx.splits.retain
    opt = whole_model(model, u.lr)
    for i in range(u.steps):
        x_f = ctx.batch(ctx.splits.forget.x, u.batch_size)
        loss_f = model.task_loss(x_f, ctx.mask, g=ctx.generator)
        loss = -ctx.cfg.alpha * loss_f
        if retain is not None:
            x_r = ctx.batch(retain.x, u.batch_size)
            loss = loss + model.task_loss(x_r, ctx.mask, g=ctx.generator)
        step(opt, loss)
        if log_every(i, u.steps):
            log.info("max_loss step %d/%d: loss %.5f forget task loss %.5f", i + 1, u.steps,
                     loss.item(), loss_f.item())
    return model.eval().requires_grad_(False)
