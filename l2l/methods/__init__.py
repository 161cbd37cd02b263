"""Unlearning methods by name, one file each.

A method is `fn(model, ctx) -> model`: it receives the original generator (a private copy it may
change) and an `UnlearnContext`, and returns the unlearned generator.
"""
from dataclasses import dataclass

import torch

from l2l.config import TrialConfig
from l2l.data import Splits
from l2l.registry import Registry

METHODS: Registry = Registry("method")


@dataclass
class UnlearnContext:
    cfg: TrialConfig
    splits: Splits
    mask: torch.Tensor  # the task's token mask [L], on `device`
    device: torch.device
    generator: torch.Generator  # seeded: batches are reproducible


def batch(images: torch.Tensor, size: int, g: torch.Generator, device) -> torch.Tensor:
    """`size` images drawn with replacement: [size, C, H, W] on `device`."""
    return images[torch.randint(len(images), (size,), generator=g)].to(device)


def feature_mse(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """Sum over feature maps of their MSE (one map for MAE, every down block for diffusion)."""
    return sum(torch.nn.functional.mse_loss(x, y) for x, y in zip(a, b, strict=True))


from l2l.methods import l2l as _l2l, original as _original  # noqa: E402,F401  (registration)
