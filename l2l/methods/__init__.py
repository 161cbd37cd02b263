"""Unlearning methods by name, one file each.

A method is `fn(model, ctx) -> model`: it receives the original generator (a private copy it may
change) and an `UnlearnContext`, and returns the unlearned generator.
"""
from dataclasses import dataclass, field
from pathlib import Path

import torch

from l2l.config import TrialConfig
from l2l.data import ImageSet, Splits
from l2l.registry import Registry

METHODS: Registry = Registry("method")


@dataclass
class UnlearnContext:
    cfg: TrialConfig
    splits: Splits
    mask: torch.Tensor  # the task's token mask [L], on `device`
    device: torch.device
    generator: torch.Generator  # seeded: batches are reproducible
    pool: ImageSet  # the original model's training images (retrain trains on part of them)
    cache_dir: Path
    caches: dict = field(default_factory=dict)  # cache entries a method used, by name


def batch(images: torch.Tensor, size: int, g: torch.Generator, device) -> torch.Tensor:
    """`size` images drawn with replacement: [size, C, H, W] on `device`."""
    return images[torch.randint(len(images), (size,), generator=g)].to(device)


def feature_mse(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """Sum over feature maps of their MSE (one map for MAE, every down block for diffusion)."""
    return sum(torch.nn.functional.mse_loss(x, y) for x, y in zip(a, b, strict=True))


# Registration: one file per method.
from l2l.methods import (  # noqa: E402,F401
    l2l as _l2l, max_loss as _max_loss, noisy_label as _noisy_label, original as _original,
    random_encoder as _random_encoder, retain_label as _retain_label, retrain as _retrain)
