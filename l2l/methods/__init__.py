"""Image-to-image unlearning methods, one file each (registered in l2l/config.py METHODS).

A method is `fn(model, ctx) -> model`: it receives the original generator (a private copy it may
change) and a `l2l.context.TrialContext`, and returns the unlearned generator.
"""
import torch


def feature_mse(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """Sum over feature maps of their MSE (one map for MAE, every down block for diffusion)."""
    return sum(torch.nn.functional.mse_loss(x, y) for x, y in zip(a, b, strict=True))
