"""`original` reference ("Original" of the paper's tables): no unlearning.

- trains nothing -> returns the model as it is.
- cost -> 0 unlearning seconds (`reported_seconds`) and 0 images (`samples_seen`)."""
from l2l.context import TrialContext


def original(model, ctx: TrialContext):
    ctx.reported_seconds = 0.0  # nothing was unlearned
    return model
