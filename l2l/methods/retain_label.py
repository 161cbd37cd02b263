"""`retain_label` baseline ("Retain Label" of the image-to-image paper, Li et al., ICLR 2024),
checked line by line against its definition:

- trains the whole model -> `whole_model`: encoder and decoder (a VQ-GAN's tokenizer stays
  frozen).
- forget outputs regressed onto the teacher's outputs of the batch's retain samples -> the
  frozen original (`frozen_copy`) reconstructs x_r (`teacher.reconstruct`: visible pixels of
  x_r plus its generated hidden region), and forget image i is trained with the generator's
  `task_loss(x_f, target=...)` to produce retain output i.
- L = task(D_R) + alpha x task(D_F, retain target) -> `task_loss(x_r) + alpha *
  task_loss(x_f, target)`.
- the forget term acts on forget samples only. Deviation on purpose: the released VQ-GAN code
  weights it by (1 + label) instead of (1 - label) and so applies it to the wrong samples;
  that defect is not reproduced.
- alpha -> `cfg.alpha` (default 0.25).
- without retain data (retain.mode none) -> refused when the config is read (l2l/config.py
  NEEDS_RETAIN) and here (ValueError): the targets are retain outputs. A proxy retain set
  (retain.mode proxy) gives both the retain term and the targets.
- budget -> unlearn.batch_size forget + unlearn.batch_size retain images a step (`ctx.batch`,
  counted in `samples_seen`), for unlearn.steps steps.
- optimiser -> as every method (l2l/methods/common.py): AdamW (0.9, 0.95), weight decay 0.05,
  grad clip 3.0, constant unlearn.lr, no schedule."""
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
        mask = ctx.step_mask()  # this step's mask (unlearn.random_masks)
        x_r = ctx.batch(retain.x, u.batch_size)
        x_f = ctx.batch(ctx.splits.forget.x, u.batch_size)
        with torch.no_grad():
            target = teacher.reconstruct(x_r, mask, ctx.generator)
        loss = (model.task_loss(x_r, mask, g=ctx.generator)
                + ctx.cfg.alpha * model.task_loss(x_f, mask, target=target, g=ctx.generator))
        step(opt, loss)
        if ctx.after_step(model, last=i == u.steps - 1):  # l2l/monitor.py
            break
        if log_every(i, u.steps):
            log.info("retain_label step %d/%d: loss %.5f", i + 1, u.steps, loss.item())
    return model.eval().requires_grad_(False)
