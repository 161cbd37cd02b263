"""`max_loss` baseline ("Max Loss" of the image-to-image paper, Li et al., ICLR 2024), checked
line by line against its definition:

- trains the whole model -> `whole_model`: encoder and decoder (a VQ-GAN's tokenizer stays
  frozen, as in its own training).
- L = task(D_R) - alpha x task(D_F) -> `task_loss(x_r) - alpha * task_loss(x_f)`; task is the
  generator's own training loss (`task_loss`: MAE pixel MSE, VQ-GAN token cross-entropy,
  diffusion denoising MSE), with real targets on both sets.
- alpha -> `cfg.alpha` (default 0.25; the released code uses 0.2-0.25 for VQ-GAN, 0.1 for
  diffusion).
- without retain data (retain.mode none) -> the forget term alone: unbounded gradient ascent.
- budget -> unlearn.batch_size forget + unlearn.batch_size retain images a step (`ctx.batch`,
  counted in `samples_seen`), for unlearn.steps steps.
- optimiser (l2l/methods/common.py, every method) -> AdamW (0.9, 0.95), weight decay 0.05, grad
  clip 3.0, constant unlearn.lr. Deviation: no warm-up / cosine schedule, and AdamW for
  diffusion too (released: Adam, lr 5e-5), so that methods differ only in their loss."""
import logging

from l2l.context import TrialContext
from l2l.methods.common import log_every, step, whole_model

log = logging.getLogger("l2l.methods.max_loss")


def max_loss(model, ctx: TrialContext):
    u, retain = ctx.cfg.unlearn, ctx.splits.retain
    opt = whole_model(model, u.lr)
    for i in range(u.steps):
        mask = ctx.step_mask()  # this step's mask (unlearn.random_masks)
        x_f = ctx.batch(ctx.splits.forget.x, u.batch_size)
        loss_f = model.task_loss(x_f, mask, g=ctx.generator)
        loss = -ctx.cfg.alpha * loss_f
        if retain is not None:
            x_r = ctx.batch(retain.x, u.batch_size)
            loss = loss + model.task_loss(x_r, mask, g=ctx.generator)
        step(opt, loss)
        if ctx.after_step(model, last=i == u.steps - 1):  # l2l/monitor.py
            break
        if log_every(i, u.steps):
            log.info("max_loss step %d/%d: loss %.5f forget task loss %.5f", i + 1, u.steps,
                     loss.item(), loss_f.item())
    return model.eval().requires_grad_(False)
