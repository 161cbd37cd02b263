"""Fashion-MNIST: finding the files, class-level splits and the image-to-image tasks.

Images are float tensors in [0, 1], zero-padded from 28x28 to 32x32 so that 4-px patches tile
them: x: [N, 1, 32, 32].
"""
from __future__ import annotations

import gzip
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from l2l.datasets import VALIDATION_SHARE
from l2l.errors import DataNotFoundError

DATA_ENV = "L2L_DATA_DIR"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SIZE = 32
CLASS_NAMES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
               "bag", "ankle-boot")


def _read_idx(path: Path) -> np.ndarray:
    """Reads an IDX file (optionally gzipped): the format of (Fashion-)MNIST."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find_in(directory: Path) -> dict[str, Path] | None:
    """The four files in `directory` or in torchvision's layout below it, gzipped or not."""
    for d in (directory, directory / "FashionMNIST" / "raw"):
        found = {}
        for split, names in FILES.items():
            for name in names:
                for cand in (d / name, d / f"{name}.gz"):
                    if cand.is_file():
                        found[name] = cand
                        break
        if len(found) == 4:
            return found
    return None


def locate_fashion_mnist(root: str | os.PathLike | None = None,
                         download_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Finds the raw files: an explicit root (argument, else $L2L_DATA_DIR), then the Debian
    package's files, then torchvision's download into `download_dir` when the machine is online.
    """
    tried = []
    explicit = root if root is not None else os.environ.get(DATA_ENV)
    if explicit:
        found = _find_in(Path(explicit))
        if found:
            return found
        tried.append(f"explicit root {explicit} (argument or ${DATA_ENV}): files not there")
    else:
        tried.append(f"explicit root: none given (argument or ${DATA_ENV})")
    found = _find_in(DEBIAN_DIR)
    if found:
        return found
    tried.append(f"Debian package dataset-fashion-mnist: {DEBIAN_DIR} missing")
    if download_dir is not None:
        try:
            from torchvision.datasets import FashionMNIST

            FashionMNIST(str(download_dir), train=True, download=True)
            FashionMNIST(str(download_dir), train=False, download=True)
            found = _find_in(Path(download_dir))
            if found:
                return found
            tried.append("torchvision download: finished but the files are missing")
        except Exception as e:  # offline, blocked, disk full: all mean "not this way"
            tried.append(f"torchvision download: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
    else:
        tried.append("torchvision download: no download directory given")
    raise DataNotFoundError("Fashion-MNIST not found; tried " + "; ".join(tried) +
                            ". Install the apt package dataset-fashion-mnist or set $L2L_DATA_DIR.")


@dataclass(frozen=True)
class ImageSet:
    """Images x: [N, 1, 32, 32] in [0, 1] and their labels y: [N] (int64)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx) -> "ImageSet":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return ImageSet(self.x[idx], self.y[idx])


_LOADED: dict[tuple[str, str], ImageSet] = {}


def load_fashion_mnist(split: str, root: str | os.PathLike | None = None,
                       download_dir: str | os.PathLike | None = None) -> ImageSet:
    """The `train` (60k) or `test` (10k) split, padded to 32x32. Memoised per process."""
    files = locate_fashion_mnist(root, download_dir)
    img_name, lab_name = FILES[split]
    key = (str(files[img_name]), split)
    if key not in _LOADED:
        x = torch.from_numpy(_read_idx(files[img_name]).copy()).float().div_(255.0)
        x = torch.nn.functional.pad(x, (2, 2, 2, 2)).unsqueeze(1)
        y = torch.from_numpy(_read_idx(files[lab_name]).astype(np.int64))
        _LOADED[key] = ImageSet(x, y)
    return _LOADED[key]


def load_split(cfg, split: str, download_dir) -> ImageSet:
    """The `train` or `test` split of a trial config's data set."""
    if cfg.dataset == "image_folder":
        from l2l.image_folder import class_names, load_image_folder

        f = cfg.image_folder
        return load_image_folder(f.root, split, class_names(f.root, f.classes_file),
                                 max_per_class=f.max_per_class)
    return load_fashion_mnist(split, cfg.data_root, download_dir)


def dataset_key(cfg) -> dict:
    """What identifies the data set in cache keys (a folder's path and class list included)."""
    key = {"dataset": cfg.dataset}
    if cfg.image_folder is not None:
        key["image_folder"] = vars(cfg.image_folder)
    return key


def sample_per_class(data: ImageSet, classes, per_class: int, seed: int) -> ImageSet:
    """Up to `per_class` images of each class, chosen by `seed` (same seed, same images)."""
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in classes:
        idx = torch.nonzero(data.y == c).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return data.subset(torch.cat(picks))


def _draw(total: int, n: int, seed: int) -> torch.Tensor:
    """`n` of `total` positions without replacement, chosen by `seed`."""
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n]


def sample(data: ImageSet, n: int, seed: int) -> ImageSet:
    """`n` images drawn without replacement across all classes, chosen by `seed`."""
    return data.subset(_draw(len(data), n, seed))


# The validation split (eval.split: validation): a share of each class's TRAINING images that no
# original model is trained on, so that searches, ASHA and early stopping choose settings on
# images the models have not seen without looking at the test split, which is kept for the
# final tables. 10% of Fashion-MNIST's 6,000 a class is 600, six times the default
# eval.images_per_class (100), and leaves 54,000 for the pools (20,000 by default); an image
# folder's classes give the same share (VALIDATION_SHARE: in the torch-free l2l/datasets.py).
# Seed of the holdout's draw, fixed: the same images for every trial, trial seed and pretraining
# seed (a pool drawn with any seed is disjoint from them).
VALIDATION_SEED = 271828


def validation_indices(train: ImageSet, share: float = VALIDATION_SHARE) -> torch.Tensor:
    """Indices into `train` of the validation holdout, sorted: of each class, round(share x its
    images), at least one and always one fewer than all (a class of one image keeps it for
    training), drawn by VALIDATION_SEED."""
    g = torch.Generator().manual_seed(VALIDATION_SEED)
    picks = []
    for c in torch.unique(train.y, sorted=True).tolist():
        idx = torch.nonzero(train.y == c).flatten()
        k = min(len(idx) - 1, max(1, round(len(idx) * share)))
        picks.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    return torch.cat(picks).sort().values


def _rest_indices(train: ImageSet, held: torch.Tensor) -> torch.Tensor:
    rest = torch.ones(len(train), dtype=torch.bool)
    rest[held] = False
    return torch.nonzero(rest).flatten()


def validation_split(train: ImageSet) -> tuple[ImageSet, ImageSet]:
    """(the validation holdout, the training images without it): the original model's pool is
    drawn from the second, the evaluation sets of eval.split `validation` from the first."""
    held = validation_indices(train)
    return train.subset(held), train.subset(_rest_indices(train, held))


def validation_holdout(train: ImageSet) -> ImageSet:
    """The first half of `validation_split`, without copying the (large) second."""
    return train.subset(validation_indices(train))


def pool_sample(train: ImageSet, n: int, seed: int) -> ImageSet:
    """`sample(validation_split(train)[1], n, seed)`, the same images, copying only those n."""
    rest = _rest_indices(train, validation_indices(train))
    return train.subset(rest[_draw(len(rest), n, seed)])


def load_digits_32() -> ImageSet:
    """scikit-learn's bundled 8x8 digits (1,797 images), resized to 28x28 and padded to 32x32
    like Fashion-MNIST: the "another data set" proxy retain source."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images).float().div_(16.0).unsqueeze(1)  # [N, 1, 8, 8]
    x = torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    x = torch.nn.functional.pad(x.clamp_(0, 1), (2, 2, 2, 2))
    return ImageSet(x, torch.from_numpy(d.target.astype(np.int64)))


@dataclass(frozen=True)
class Splits:
    """What one trial uses. Training-side sets come from the original model's training images,
    so the unlearned model forgets data it has seen; evaluation sets are held out: the test split,
    or the validation holdout of the training images (eval.split, `validation_split`)."""

    forget: ImageSet
    retain: ImageSet | None  # what unlearning may use for the retain term; None in mode `none`
    eval_forget: ImageSet
    eval_retain: ImageSet


def retain_fraction(full: ImageSet, fraction: float) -> ImageSet:
    """A share of the retain images a trial actually has: of each class, the first
    ceil(fraction x its images in `full`) (at least one). `full` is the `full` mode's set, a
    random sample in random order, so smaller fractions are subsets of larger ones and every
    fraction is of the real pool, not of a nominal `images_per_class` the pool may not hold."""
    picks = []
    for c in torch.unique(full.y, sorted=True).tolist():
        idx = torch.nonzero(full.y == c).flatten()
        picks.append(idx[:max(1, math.ceil(len(idx) * fraction))])
    return full.subset(torch.cat(picks))


def make_splits(train_pool: ImageSet, held_out: ImageSet, forget_classes, retain,
                images_per_class: int, eval_per_class: int, seed: int) -> Splits:
    """`retain` is a `RetainConfig`; the evaluation sets are drawn from `held_out` (the test
    split or the validation holdout, never the pool). The forget set and the evaluation sets do
    not depend on the retain mode, so retain settings are compared on the same forget images
    (the released code changes the forget set with them, a confound)."""
    # Offsets keep the draws independent for one seed.
    forget = sample_per_class(train_pool, forget_classes, images_per_class, seed * 4 + 0)
    if retain.mode == "full":
        kept = sample_per_class(train_pool, retain.classes, images_per_class, seed * 4 + 1)
    elif retain.mode == "fraction":
        kept = retain_fraction(
            sample_per_class(train_pool, retain.classes, images_per_class, seed * 4 + 1),
            retain.fraction)
    elif retain.mode == "proxy":
        n = max(1, round(retain.size * len(forget)))
        if retain.source == "digits":
            source = load_digits_32()
        else:
            source = train_pool.subset(torch.nonzero(
                torch.isin(train_pool.y, torch.tensor(retain.proxy_classes))).flatten())
        if n > len(source):
            raise ValueError(f"retain.size: a proxy of {n} images is more than the {len(source)} "
                             f"images of {retain.source} available")
        kept = sample(source, n, seed * 4 + 1)
    else:
        kept = None
    return Splits(
        forget=forget, retain=kept,
        eval_forget=sample_per_class(held_out, forget_classes, eval_per_class, seed * 4 + 2),
        eval_retain=sample_per_class(held_out, retain.classes, eval_per_class, seed * 4 + 3),
    )
