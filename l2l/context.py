"""What an unlearning method receives besides the model: one context type for both families.

A method is `fn(model, ctx) -> model`. It gets a private copy of the original model (it may
change it in place) and this context, and returns the unlearned model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from l2l.cache import CacheRoot
from l2l.monitor import Monitor


@dataclass
class TrialContext:
    cfg: Any  # the family's frozen trial config
    splits: Any  # the family's splits: forget / retain training images, evaluation sets
    device: torch.device
    generator: torch.Generator  # seeded: batches, latents and noise are reproducible
    cache_dir: CacheRoot
    pool: Any = None  # the original model's training images (retrain trains on part of them)
    mask: torch.Tensor | None = None  # image-to-image: the task's token mask [L], on `device`
    # image-to-image: the masks of training steps (l2l/tasks.py TrainingMasks), random or the
    # task's as unlearn.random_masks says; methods take one per step with `step_mask`.
    train_masks: Any = None
    classifier: torch.nn.Module | None = None  # the project classifier, images -> logits
    caches: dict = field(default_factory=dict)  # cache entries a method used, by name
    samples_seen: int = 0  # training images drawn by `batch` (the cost in images)
    epochs: float | None = None  # set by methods that count whole epochs (retrain)
    # Unlearning seconds a method reports instead of the measured ones: 0 for `original`
    # (nothing unlearned), the training time for a `retrain` read from the cache.
    reported_seconds: float | None = None
    # Seconds inside the method that are not unlearning (a stopping rule's measurements):
    # left out of the unlearning seconds.
    excluded_seconds: float = 0.0
    # A stopping rule's outcome (l2l/gan/stopping.py): rounds_run, reached_retrain
    stopping: dict = field(default_factory=dict)
    # Measurements between steps: the forgetting curve and a stopping rule (l2l/monitor.py)
    monitor: Monitor = field(default_factory=Monitor)

    def batch(self, images: torch.Tensor, size: int) -> torch.Tensor:
        """`size` images drawn with replacement, on the device: [size, C, H, W]."""
        self.samples_seen += size
        return images[torch.randint(len(images), (size,), generator=self.generator)] \
            .to(self.device)

    def after_step(self, model, last: bool = False) -> bool:
        """Called by a method after each unlearning step (`last`: its budget's last); True:
        stop unlearning now (a stopping rule says the model has forgotten)."""
        return self.monitor.after_step(model, self, last)

    def step_mask(self) -> torch.Tensor:
        """The token mask [L] of the next unlearning step (student and teacher share it)."""
        return self.train_masks()

    def latents(self, n: int, nz: int) -> torch.Tensor:
        """Latent vectors of a GAN: [n, nz]."""
        return torch.randn(n, nz, generator=self.generator).to(self.device)
