"""Training the original generator from scratch (the model unlearning starts from), cached."""
from __future__ import annotations

import logging
import time

import torch

from l2l import cache
from l2l.config import TrialConfig
from l2l.data import ImageSet, dataset_key
from l2l.generators import build_generator
from l2l.tasks import task_mask

log = logging.getLogger("l2l.pretrain")
FORMAT = 2  # bump when the training code changes what a cached model is
# 2: the pool leaves out the validation holdout (l2l/data.py validation_split)


def original_key(cfg: TrialConfig, exclude_classes=()) -> dict:
    """Everything that determines the original model, and nothing else (so trials share it).
    `retrain` models add the classes left out of their training data."""
    key = {"format": FORMAT, **dataset_key(cfg),
           "generator": {"name": cfg.generator.name, "size": cfg.generator.size},
           "task": vars(cfg.task), "pretrain": vars(cfg.pretrain)}
    if exclude_classes:
        key["exclude_classes"] = sorted(exclude_classes)
    return key


def _build(cfg: TrialConfig):
    return build_generator(cfg.generator.name, cfg.generator.size, cfg.generator.sampling_steps)


def train_generator(cfg: TrialConfig, pool: ImageSet, device: torch.device) -> torch.nn.Module:
    p = cfg.pretrain
    torch.manual_seed(p.seed)
    model = _build(cfg).to(device)
    # Masks of the task itself: on a tiny budget this learns the task reliably where random
    # masks did not (see docs/design-notes.md).
    mask = task_mask(cfg.task.kind, model.grid, cfg.task.mask_ratio).to(device)
    model.pretrain(pool, mask, p, device, log)  # the generic loop unless it has its own
    return model.eval()


def get_original(cfg: TrialConfig, pool: ImageSet, device: torch.device, cache_dir,
                 exclude_classes=()):
    """The original generator, from the cache or trained now. Returns (model, CacheHit).
    With `exclude_classes` it is the `retrain` model: trained without those classes' images."""
    if exclude_classes:
        pool = pool.subset(torch.nonzero(
            ~torch.isin(pool.y, torch.tensor(list(exclude_classes)))).flatten())

    def build():
        t0 = time.perf_counter()
        model = train_generator(cfg, pool, device)
        return model.state_dict(), {"train_seconds": time.perf_counter() - t0,
                                    "device": str(device)}

    state, hit = cache.get_or_build(cache_dir, "generator", original_key(cfg, exclude_classes),
                                    build)
    model = _build(cfg)
    model.load_state_dict(state)
    return model.to(device).eval(), hit
