"""`finetune_retain` control (not in the paper): the baselines' unlearning budget spent on the
task loss over retain images only.

- trains the whole model -> `whole_model`, like the whole-model baselines.
- L = task(D_R) -> `task_loss` of a retain batch; no forget term, no alpha.
- purpose: if it improves the original's retain metrics beyond noise, the original was not
  converged, and a baseline's retain gains are continued training rather than unlearning.
- budget -> 2 x unlearn.batch_size retain images a step (`ctx.batch`, counted in
  `samples_seen`): the images a baseline draws a step (a forget and a retain batch).
- without retain data (retain.mode none) -> refused when the config is read (l2l/config.py
  NEEDS_RETAIN); a proxy retain set stands in for D_R as for the baselines.
- optimiser -> as every method (l2l/methods/common.py)."""
import logging

from l2l.context import TrialContext
from l2l.methods.common import log_every, step, whole_model

log = logging.getLogger("l2l.methods.finetune_retain")


def finetune_retain(model, ctx: TrialContext):
    u, retain = ctx.cfg.unlearn, ctx.splits.retain
    opt = whole_model(model, u.lr)
    for i in range(u.steps):
        mask = ctx.step_mask()  # this step's mask (unlearn.random_masks)
        loss = model.task_loss(ctx.batch(retain.x, 2 * u.batch_size), mask, g=ctx.generator)
        step(opt, loss)
        if log_every(i, u.steps):
            log.info("finetune_retain step %d/%d: retain task loss %.5f", i + 1, u.steps,
                     loss.item())
    return model.eval().requires_grad_(False)
