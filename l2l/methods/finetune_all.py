"""`finetune_all` control (not in the paper): the same budget as `finetune_retain`, spent on the
task loss over the original's whole training pool (every class, forget classes included).

- trains the whole model -> `whole_model`; L = task(pool batch); no forget term, no alpha.
- purpose: continued training of the original on its own data. If it improves the retain
  metrics as much as `finetune_retain` does, the original was not converged; if it does not,
  `finetune_retain`'s gain is specialisation on the retain classes (docs/design-notes.md,
  "Protocol").
- budget -> 2 x unlearn.batch_size pool images a step, counted in `samples_seen`.
- needs no retain images: it uses the pool, whatever retain.mode says.
"""
import logging

from l2l.context import TrialContext
from l2l.methods.common import continue_training

log = logging.getLogger("l2l.methods.finetune_all")


def finetune_all(model, ctx: TrialContext):
    return continue_training(model, ctx, ctx.pool.x, log)
