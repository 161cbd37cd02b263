"""`original`: no unlearning; the reference every method is compared with."""
from l2l.methods import METHODS


@METHODS.register("original")
def original(model, ctx):
    return model
