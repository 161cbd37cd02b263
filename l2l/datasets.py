"""The data sets of the GAN family, one registry entry each: how many classes and channels, the
size of the training split, and how to read a split as an ImageSet [N, C, 32, 32] in [0, 1].

    fashion_mnist  the offline default (Debian's dataset-fashion-mnist, or `data_root`)
    digits         scikit-learn's 8x8 digits, upscaled (a fixed train / test split)
    mnist          a user's copy under `data_root` in torchvision's layout:
                   <data_root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte
    cifar10        a user's copy under `data_root` in torchvision's layout:
                   <data_root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}

MNIST and CIFAR-10 cannot be downloaded here, only read from a user's copy. MNIST is read
through torchvision's `MNIST` class (IDX files, no code in them). CIFAR-10's python batches are
pickles: torchvision's `CIFAR10` unpickles them with the full machinery, which runs whatever code
a hostile file names, so they are read here the same way (data [N, 3072] channel-major, labels)
with an unpickler that builds numpy arrays and plain values only. Neither checks the official
archive's MD5 sums, so a repacked copy (or the small files the tests write) reads too. A missing
or partial root is a DataNotFoundError naming every file expected.

Imports nothing heavy (torch, torchvision) until a split is read, so that configs validate
without them.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from l2l.errors import DataNotFoundError
from l2l.registry import Registry

IMAGE_SIZE = 32  # as l2l.data: every image is zero-padded to 32x32
# Share of each class's training images held out for validation (l2l/data.py validation_split);
# here so that configs can count a pool without importing torch.
VALIDATION_SHARE = 0.1
# Images of each data set's test split (for the bounds configs check counts against).
TEST_SIZES = {"fashion_mnist": 10000, "digits": 300, "mnist": 10000, "cifar10": 10000}

DIGITS_SPLIT_SEED = 0  # the fixed train/test split of scikit-learn's digits
DIGITS_TRAIN = 1497  # of its 1,797 images; the last 300 of a seeded permutation are for testing


@dataclass(frozen=True)
class DataSet:
    name: str
    classes: int
    channels: int
    train_size: int  # images of the full training split (the official one for mnist, cifar10)
    # (split, data_root, download_dir) -> l2l.data.ImageSet [N, channels, 32, 32] in [0, 1]
    read: Callable
    folder: str = ""  # under data_root, for data sets read from a user's files
    expected: tuple[str, ...] = ()  # the files that folder must hold

    def per_class(self, split: str) -> int:
        """Images a class has (balanced data sets: all of these are) in `split`: train (less
        the validation holdout: what pools draw from), validation or test."""
        train = self.train_size // self.classes
        held = round(train * VALIDATION_SHARE)
        return {"train": train - held, "validation": held,
                "test": TEST_SIZES.get(self.name, 0) // self.classes}[split]

    def files(self, root) -> list[Path]:
        """The files of a user's copy (checked: DataNotFoundError names the missing); empty for
        data sets that need none."""
        if not self.expected:
            return []
        base = _root(self.name, root, self.folder, self.expected)
        return [base / self.folder / f for f in self.expected]


def _fashion_mnist(split: str, root, download_dir):
    from l2l.data import load_fashion_mnist

    return load_fashion_mnist(split, root, download_dir)


def _digits(split: str, root, download_dir):
    import torch

    from l2l.data import load_digits_32

    digits = load_digits_32()
    perm = torch.randperm(len(digits), generator=torch.Generator().manual_seed(DIGITS_SPLIT_SEED))
    return digits.subset(perm[:DIGITS_TRAIN] if split == "train" else perm[DIGITS_TRAIN:])


MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")
CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                 "test_batch", "batches.meta")


def _root(name: str, root, folder: str, files: tuple[str, ...]) -> Path:
    """The data root after checking that it holds every file (one error naming the missing)."""
    expected = ", ".join(files)
    if not root:
        raise DataNotFoundError(f"dataset {name}: no data_root given; it cannot be downloaded "
                                f"here: set data_root (or --data-root) to a folder holding "
                                f"{folder}/ with {expected}")
    missing = [f for f in files if not (Path(root) / folder / f).is_file()]
    if missing:
        raise DataNotFoundError(f"dataset {name}: {Path(root) / folder} lacks "
                                f"{', '.join(missing)} (expected: {expected}, torchvision's "
                                "layout)")
    return Path(root)


def _unreadable(name: str, root, e: Exception) -> DataNotFoundError:
    return DataNotFoundError(f"dataset {name}: the files under {root} cannot be read "
                             f"({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})")


def _to_set(images, labels, channels_last: bool):
    """uint8 images [N, H, W] or [N, H, W, C] -> ImageSet [N, C, 32, 32] float in [0, 1],
    zero-padded."""
    import numpy as np
    import torch

    from l2l.data import ImageSet

    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    x = x.permute(0, 3, 1, 2) if channels_last else x.unsqueeze(1)
    pad = (IMAGE_SIZE - x.shape[-1]) // 2
    if pad:
        x = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    return ImageSet(x.contiguous(), torch.as_tensor(np.asarray(labels), dtype=torch.int64))


def _mnist(split: str, root, download_dir):
    from torchvision.datasets import MNIST

    base = _root("mnist", root, "MNIST/raw", MNIST_FILES)
    try:
        ds = MNIST(str(base), train=split == "train", download=False)
    except (RuntimeError, ValueError, OSError, AssertionError) as e:
        raise _unreadable("mnist", base, e) from None
    return _to_set(ds.data.numpy(), ds.targets.numpy(), channels_last=False)


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that builds numpy arrays, lists, dicts, strings and numbers and nothing
    else: CIFAR-10's python batches are pickles, and a full unpickler runs whatever code a
    hostile file names (the project never unpickles files with one: tests/test_security.py)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a data batch")
        return super().find_class(module, name)


def _cifar_batch(path: Path):
    """(data uint8 [N, 3072], channel-major, labels [N]) of one CIFAR-10 python batch."""
    import numpy as np

    with open(path, "rb") as f:
        entry = _ArraysOnly(f, encoding="latin1").load()
    if not isinstance(entry, dict) or "data" not in entry or "labels" not in entry:
        raise ValueError(f"{path.name}: not a CIFAR-10 batch (no data and labels)")
    data = np.asarray(entry["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072 or len(entry["labels"]) != len(data):
        raise ValueError(f"{path.name}: expected data [N, 3072] and N labels")
    return data, entry["labels"]


def _cifar10(split: str, root, download_dir):
    """The python batches in torchvision's CIFAR10 layout, read as its reader does (data
    [N, 3072] -> [N, 32, 32, 3]) but with an unpickler that builds arrays only: torchvision's
    own reader unpickles with the full machinery, so it is not used for these files."""
    import numpy as np

    base = _root("cifar10", root, "cifar-10-batches-py", CIFAR10_FILES)
    names = CIFAR10_FILES[:5] if split == "train" else ("test_batch",)
    try:
        parts = [_cifar_batch(base / "cifar-10-batches-py" / n) for n in names]
    except (OSError, ValueError, KeyError, EOFError, TypeError, pickle.UnpicklingError) as e:
        raise _unreadable("cifar10", base, e) from None
    data = np.concatenate([d for d, _ in parts]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return _to_set(data, [y for _, labels in parts for y in labels], channels_last=True)


DATASETS: Registry[DataSet] = Registry("dataset")
for _entry in (DataSet("fashion_mnist", 10, 1, 60000, _fashion_mnist),
               DataSet("digits", 10, 1, DIGITS_TRAIN, _digits),
               DataSet("mnist", 10, 1, 60000, _mnist, "MNIST/raw", MNIST_FILES),
               DataSet("cifar10", 10, 3, 50000, _cifar10, "cifar-10-batches-py", CIFAR10_FILES)):
    DATASETS.register(_entry.name)(_entry)


def read_split(name: str, split: str, root: str | os.PathLike | None = None,
               download_dir: str | os.PathLike | None = None):
    """The `train` or `test` split of a registered data set."""
    return DATASETS.get(name).read(split, root, download_dir)


__all__ = ["CIFAR10_FILES", "DATASETS", "DataSet", "MNIST_FILES", "read_split"]
