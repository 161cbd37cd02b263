"""Training the original generator from scratch (the model unlearning starts from), cached."""
from __future__ import annotations

import logging
import time

import torch

from l2l import cache
from l2l.checkpoint import Checkpoint
from l2l.config import TrialConfig
from l2l.data import ImageSet, dataset_key, sample, validation_holdout
from l2l.generators import build_generator
from l2l.tasks import TrainingMasks, task_mask

log = logging.getLogger("l2l.pretrain")
FORMAT = 2  # bump when the training code changes what a cached model is
# 2: the pool leaves out the validation holdout (l2l/data.py validation_split)


def original_key(cfg: TrialConfig, exclude_classes=()) -> dict:
    """Everything that determines the original model, and nothing else (so trials share it).
    `retrain` models add the classes left out of their training data."""
    key = {"format": FORMAT, **dataset_key(cfg),
           "generator": {"name": cfg.generator.name, "size": cfg.generator.size},
           "pretrain": vars(cfg.pretrain)}
    # Random masks only: one original serves every task, as in the paper (its meta's
    # validation loss is then that of the task of the trial that trained it).
    if cfg.pretrain.random_masks < 1.0:  # the task's mask is among the training masks
        key["task"] = vars(cfg.task)
    if exclude_classes:
        key["exclude_classes"] = sorted(exclude_classes)
    return key


def model_of(cfg: TrialConfig):
    """An untrained generator of the trial's architecture."""
    return build_generator(cfg.generator.name, cfg.generator.size, cfg.generator.sampling_steps)


def train_generator(cfg: TrialConfig, pool: ImageSet, device: torch.device,
                    val: ImageSet | None = None, checkpoint: Checkpoint | None = None):
    """A generator trained from scratch on `pool`. Returns (model, validation losses per epoch:
    the task loss on `val` with the task's mask, None where not measured). `checkpoint`: the
    run's per-epoch state, resumed from when it holds one (l2l/checkpoint.py)."""
    p = cfg.pretrain
    torch.manual_seed(p.seed)
    model = model_of(cfg).to(device)
    mask = task_mask(cfg.task.kind, model.grid, cfg.task.mask_ratio).to(device)
    # Random, task or hybrid masks (pretrain.random_masks); drawn by their own seeded generator
    # so that the share does not shift the batches' draws.
    masks = TrainingMasks(mask, p.random_masks, torch.Generator().manual_seed(p.seed + 1))
    history = model.pretrain(pool, masks, p, device, log,  # the generic loop unless overridden
                             None if val is None else (val.x, mask), checkpoint=checkpoint)
    return model.eval(), history


VALIDATION_IMAGES = 1000  # images of the validation holdout scored after each pretraining epoch


def pretrain_validation(train: ImageSet) -> ImageSet:
    """The images whose task loss tells whether pretraining converged: a fixed sample of the
    validation holdout of the training split (never trained on, never a test image)."""
    held = validation_holdout(train)
    return sample(held, min(VALIDATION_IMAGES, len(held)), 0)


def plateau_epoch(history: list[float | None], tolerance: float = 0.01,
                  patience: int = 3) -> int | None:
    """The first epoch (1-based) after which `patience` more epochs do not lower the validation
    loss by `tolerance` (relative): where, at a constant learning rate, more epochs stop paying.
    None when the run ends before that (train longer) or nothing was measured."""
    measured = [(i + 1, v) for i, v in enumerate(history) if v is not None]
    for k, (epoch, v) in enumerate(measured):
        window = [w for _, w in measured[k + 1:k + 1 + patience]]
        if len(window) == patience and min(window) > v * (1 - tolerance):
            return epoch
    return None


def get_original(cfg: TrialConfig, pool: ImageSet, device: torch.device, cache_dir,
                 exclude_classes=(), val: ImageSet | None = None):
    """The original generator, from the cache or trained now. Returns (model, CacheHit).
    With `exclude_classes` it is the `retrain` model: trained without those classes' images.
    `val`: validation images whose loss is recorded per epoch in the cache entry's meta
    (`validation_loss`); they do not change the model."""
    if exclude_classes:
        pool = pool.subset(torch.nonzero(
            ~torch.isin(pool.y, torch.tensor(list(exclude_classes)))).flatten())

    key = original_key(cfg, exclude_classes)
    # an interrupted build resumes after its last finished epoch (train_seconds: those of the
    # epochs kept, before and after the stop)
    checkpoint = Checkpoint(cache.partial_path(cache_dir, "generator", key))

    def build():
        t0 = time.perf_counter()
        model, history = train_generator(cfg, pool, device, val, checkpoint)
        seconds = time.perf_counter() - t0 + checkpoint.resumed_seconds
        return model.state_dict(), {"train_seconds": seconds,
                                    "device": str(device), "validation_loss": history,
                                    "images_seen": cfg.pretrain.epochs * len(pool)}

    state, hit = cache.get_or_build(cache_dir, "generator", key, build)
    checkpoint.remove()
    model = model_of(cfg)
    model.load_state_dict(state)
    return model.to(device).eval(), hit
