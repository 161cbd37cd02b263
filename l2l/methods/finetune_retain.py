"""`finetune_retain` control (not in the paper): the baselines' unlearning budget spent on the
task loss over retain images only.

- trains the whole model -> `whole_model`, like the whole-model baselines.
- L = task(D_R) -> `task_loss` of a retain batch; no forget term, no alpha.
- purpose: if it improves the original's retain metrics beyond noise, a baseline's retain
  gains are training rather than unlearning: continued training (the original was not
  converged) or specialisation on the retain classes; `finetune_all` tells the two apart.
- budget -> 2 x unlearn.batch_size retain images a step (`ctx.batch`, counted in
  `samples_seen`): the images a baseline draws a step (a forget and a retain batch).
- without retain data (retain.mode none) -> refused when the config is read (l2l/config.py
  NEEDS_RETAIN); a proxy retain set stands in for D_R as for the baselines.
- optimiser -> as every method (l2l/methods/common.py)."""
import logging

from l2l.context import TrialContext
from l2l.methods.common import continue_training

log = logging.getLogger("l2l.methods.finetune_retain")


def finetune_retain(model, ctx: TrialContext):
    return continue_training(model, ctx, ctx.splits.retain.x, log)
