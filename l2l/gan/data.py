"""Data of a GAN trial: the original model's training sample, the forget and retain sets, and
the held-out images evaluation compares against.

Images stay in [0, 1] (the classifier's range, l2l/data.py); the GAN sees them as x * 2 - 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from l2l.data import ImageSet, pool_sample, sample, sample_per_class, validation_holdout
from l2l.datasets import DATASETS, read_split
from l2l.fields import file_sha256
from l2l.gan.config import GanTrialConfig

def to_gan(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1] (the generator's tanh range)."""
    return x * 2 - 1


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] (the classifier's range)."""
    return ((x + 1) / 2).clamp(0, 1)


def load(cfg: GanTrialConfig, split: str, download_dir) -> ImageSet:
    """The `train` or `test` split of the trial's data set (l2l/datasets.py), [N, C, 32, 32]
    in [0, 1]."""
    return read_split(cfg.dataset, split, cfg.data_root, download_dir)


def dataset_key(cfg: GanTrialConfig) -> dict:
    """What identifies the data set in cache keys (fashion_mnist matches l2l.data.dataset_key,
    so both families share one classifier). A user's MNIST or CIFAR-10 files are identified by
    their content, so another copy (or a partial one) never reads a model cached for these."""
    files = DATASETS.get(cfg.dataset).files(cfg.data_root)
    return {"dataset": cfg.dataset, **({"files": {p.name: file_sha256(str(p)) for p in files}}
                                        if files else {})}


def training_pool(cfg: GanTrialConfig, train: ImageSet) -> ImageSet:
    """The original model's training images: `pretrain.images` drawn by `pretrain.seed`; with
    the FID criterion (pretrain.fid_patience), from the training split less its validation
    holdout, which the criterion measures on."""
    if cfg.pretrain.fid_patience is not None:
        return pool_sample(train, cfg.pretrain.images, cfg.pretrain.seed)
    return sample(train, cfg.pretrain.images, cfg.pretrain.seed)


VALIDATION_IMAGES = 1000  # held-out images the FID criterion compares samples with


def validation(train: ImageSet, classes=None) -> ImageSet:
    """The FID criterion's real images: a fixed sample of the training split's validation
    holdout (never in a pool drawn with the criterion on), of `classes` (None: all), so that
    the retrained model is measured against the classes it learns."""
    held = validation_holdout(train)
    if classes is not None:
        held = held.subset(torch.nonzero(torch.isin(held.y, torch.tensor(classes))).flatten())
    return sample(held, min(VALIDATION_IMAGES, len(held)), 0)


def forget_mask(cfg: GanTrialConfig, pool: ImageSet) -> torch.Tensor:
    """[len(pool)] bool, True for the images to forget: a class's images, or `items` images
    drawn by `forget_set.seed` (independent of the trial seed, so seeds share one forget set
    and one retrained model)."""
    if cfg.setting == "class":
        return torch.isin(pool.y, torch.tensor(cfg.forget_classes))
    g = torch.Generator().manual_seed(cfg.forget_set.seed)
    mask = torch.zeros(len(pool), dtype=torch.bool)
    mask[torch.randperm(len(pool), generator=g)[:cfg.forget_set.items]] = True
    return mask


@dataclass(frozen=True)
class GanSplits:
    """`forget` and `retain` partition the training pool; the rest is held out (test split).
    `eval_forget` are the forgotten images evaluation measures (the membership attack's
    members): `forget`, or every request's after earlier deletion requests (l2l/sequence.py),
    where `forget` is this trial's own request. `eval_real` is the FID reference and the
    downstream test set (test images of the retained classes); `heldout` are the membership
    attack's non-members (test images of the forget classes, or of all classes in the item
    setting); `validation` the retrained model's FID criterion images (`validation`, of the
    retained classes), None without the criterion."""

    pool: ImageSet
    forget: ImageSet
    retain: ImageSet
    eval_forget: ImageSet
    eval_real: ImageSet
    heldout: ImageSet
    validation: ImageSet | None = None


def make_splits(cfg: GanTrialConfig, pool: ImageSet, test: ImageSet,
                train: ImageSet | None = None) -> GanSplits:
    mask = forget_mask(cfg, pool)
    forget, retain = pool.subset(torch.nonzero(mask).flatten()), \
        pool.subset(torch.nonzero(~mask).flatten())
    e = cfg.eval
    # Evaluation draws depend on the trial seed only (offsets keep them independent).
    per_class = -(-e.real_images // len(cfg.retain_classes))
    eval_real = sample(sample_per_class(test, cfg.retain_classes, per_class, cfg.seed * 4 + 2),
                       e.real_images, cfg.seed * 4 + 2)
    if cfg.setting == "class":
        same = test.subset(torch.nonzero(torch.isin(test.y, torch.tensor(cfg.forget_classes)))
                           .flatten())
        heldout = sample(same, e.mia_images, cfg.seed * 4 + 3)
    else:
        heldout = sample(test, e.mia_images, cfg.seed * 4 + 3)
    val = None
    if cfg.pretrain.fid_patience is not None and train is not None:
        val = validation(train, list(cfg.retain_classes))
    return GanSplits(pool, forget, retain, forget, eval_real, heldout, val)
