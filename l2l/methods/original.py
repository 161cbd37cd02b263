"""`original`: no unlearning; the reference every method is compared with."""
from l2l.context import TrialContext


def original(model, ctx: TrialContext):
    ctx.reported_seconds = 0.0  # nothing was unlearned
    return model
