"""MNIST's and CIFAR-10's on-disk formats, written with synthetic images: for the tests and
benchmarks that must read those data sets where no real copy can be downloaded (l2l/datasets.py
reads them through torchvision). The images are a bright bar whose row says the class, over
noise: learnable in a few steps, and of the real files' sizes when asked."""
from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np


def bar_images(n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [n, size, size] and labels [n] (0, 1, ..., 9, 0, ...)."""
    labels = (np.arange(n) % 10).astype(np.uint8)
    x = rng.integers(0, 40, (n, size, size), dtype=np.uint8)
    for c in range(10):
        row = 2 + c * (size - 4) // 10
        x[labels == c, row:row + 3, 2:size - 2] = 230
    return x, labels


def write_mnist(root: str | Path, n_train: int = 60000, n_test: int = 10000,
                seed: int = 0) -> None:
    """<root>/MNIST/raw/: the four IDX files (big-endian magic 2051 images, 2049 labels)."""
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x, y = bar_images(n, 28, rng)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + x.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, n) + y.tobytes())


def write_cifar10(root: str | Path, per_batch: int = 10000, n_test: int = 10000,
                  seed: int = 1) -> None:
    """<root>/cifar-10-batches-py/: five training batches, the test batch and the meta file,
    each a pickled dict as in the official archive (data: uint8 [N, 3072], channel-major)."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)

    def batch(n, name):
        x, y = bar_images(n, 32, rng)
        data = np.repeat(x[:, None], 3, axis=1).reshape(n, -1)
        data[:, :1024] //= 2  # a colour cast: the red plane differs from the others
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": [int(c) for c in y], "data": data,
                         "filenames": [f"{name}_{i}.png" for i in range(n)]}, f)

    for i in range(1, 6):
        batch(per_batch, f"data_batch_{i}")
    batch(n_test, "test_batch")
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)], "num_vis": 3072}, f)
