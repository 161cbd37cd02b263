"""`finetune_retain` control: the baselines' unlearning budget spent on the task loss over retain
images only, training the whole model; no forget term. If it improves the retain metrics of the
original beyond noise, the original was not converged, and a baseline's retain gains are
continued training rather than unlearning. Each step draws 2 x `unlearn.batch_size` retain
images: the images a baseline draws a step (a forget and a retain batch)."""
import logging

from l2l.context import TrialContext
from l2l.methods.common import log_every, step, whole_model

log = logging.getLogger("l2l.methods.finetune_retain")


def finetune_retain(model, ctx: TrialContext):
    u, retain = ctx.cfg.unlearn, ctx.splits.retain
    opt = whole_model(model, u.lr)
    for i in range(u.steps):
        loss = model.task_loss(ctx.batch(retain.x, 2 * u.batch_size), ctx.mask, g=ctx.generator)
        step(opt, loss)
        if log_every(i, u.steps):
            log.info("finetune_retain step %d/%d: retain task loss %.5f", i + 1, u.steps,
                     loss.item())
    return model.eval().requires_grad_(False)
