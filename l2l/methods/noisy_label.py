"""`noisy_label` baseline ("Noisy Label" of the image-to-image paper, Li et al., ICLR 2024),
checked line by line against its definition:

- trains the whole model -> `whole_model`: encoder and decoder (a VQ-GAN's tokenizer stays
  frozen).
- forget inputs get random targets -> target = x_f with normal noise (clamp(randn x std +
  mean, 0, 1), `noise_in_hidden_region`) in the hidden region, trained with the generator's
  own `task_loss(x_f, target=...)`. Deviation for VQ-GAN: the target tokens are the tokenizer's
  codes of that noise image, not uniformly random tokens as in the released MAGE code.
- L = task(D_R) + alpha x task(D_F, noisy target) -> `task_loss(x_r) + alpha * task_loss(x_f,
  target)`; the reference names no weight for this baseline, alpha weights its forget term as
  in the others.
- alpha -> `cfg.alpha` (default 0.25).
- without retain data (retain.mode none) -> the forget term alone.
- budget -> unlearn.batch_size forget + unlearn.batch_size retain images a step (`ctx.batch`,
  counted in `samples_seen`), for unlearn.steps steps.
- optimiser -> as every method (l2l/methods/common.py): AdamW (0.9, 0.95), weight decay 0.05,
  grad clip 3.0, constant unlearn.lr, no schedule."""
import logging

from l2l.context import TrialContext
from l2l.methods.common import log_every, noise_in_hidden_region, step, whole_model

log = logging.getLogger("l2l.methods.noisy_label")


def noisy_label(model, ctx: TrialContext):
    u, retain = ctx.cfg.unlearn, ctx.splits.retain
    opt = whole_model(model, u.lr)
    for i in range(u.steps):
        mask = ctx.step_mask()  # this step's mask (unlearn.random_masks)
        x_f = ctx.batch(ctx.splits.forget.x, u.batch_size)
        target = noise_in_hidden_region(x_f, mask, model.patch, ctx.generator)
        loss = ctx.cfg.alpha * model.task_loss(x_f, mask, target=target, g=ctx.generator)
        if retain is not None:
            x_r = ctx.batch(retain.x, u.batch_size)
            loss = loss + model.task_loss(x_r, mask, g=ctx.generator)
        step(opt, loss)
        if ctx.after_step(model, last=i == u.steps - 1):  # l2l/monitor.py
            break
        if log_every(i, u.steps):
            log.info("noisy_label step %d/%d: loss %.5f", i + 1, u.steps, loss.item())
    return model.eval().requires_grad_(False)
