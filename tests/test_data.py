import gzip
import struct

import numpy as np
import pytest
import torch

from l2l import data
from l2l.errors import DataNotFoundError
from l2l.tasks import center_inpaint, pixel_mask


def _write_idx(path, arr):
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


@pytest.fixture
def fake_root(tmp_path):
    """A tiny Fashion-MNIST look-alike: 40 train and 20 test images, labels 0..9."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("t10k", 20)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return tmp_path


def test_explicit_root_wins_and_images_are_padded(fake_root, monkeypatch):
    data._LOADED.clear()
    ds = data.load_fashion_mnist("train", root=fake_root)
    assert ds.x.shape == (40, 1, 32, 32) and ds.x.dtype == torch.float32
    assert 0.0 <= ds.x.min() and ds.x.max() <= 1.0
    assert ds.x[:, :, :2].abs().sum() == 0  # zero padding
    assert ds.y.tolist() == [i % 10 for i in range(40)]


def test_environment_variable_is_the_explicit_root(fake_root, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(fake_root))
    files = data.locate_fashion_mnist()
    assert files["t10k-images-idx3-ubyte"].parent == fake_root


def test_torchvision_layout_is_found(fake_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("tv")
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in fake_root.iterdir():
        (raw / f.name).write_bytes(f.read_bytes())
    assert data.locate_fashion_mnist(root)["train-images-idx3-ubyte"].parent == raw


def test_missing_everywhere_names_all_three_sources(tmp_path, monkeypatch):
    import torchvision.datasets

    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")

    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(DataNotFoundError) as e:
        data.locate_fashion_mnist(tmp_path / "nowhere", download_dir=tmp_path / "dl")
    msg = str(e.value)
    assert "explicit root" in msg and "dataset-fashion-mnist" in msg and "download" in msg
    assert "network is unreachable" in msg and "\n" not in msg


def test_splits_are_deterministic_per_seed_and_respect_classes(fake_root):
    train = data.load_fashion_mnist("train", root=fake_root)
    test = data.load_fashion_mnist("test", root=fake_root)
    from l2l.config import RetainConfig

    retain = RetainConfig(classes=(0, 1))
    a = data.make_splits(train, test, (5, 7), retain, 3, 2, seed=0)
    b = data.make_splits(train, test, (5, 7), retain, 3, 2, seed=0)
    c = data.make_splits(train, test, (5, 7), retain, 3, 2, seed=1)
    assert torch.equal(a.forget.x, b.forget.x) and torch.equal(a.eval_retain.x, b.eval_retain.x)
    assert not torch.equal(a.forget.x, c.forget.x)
    assert set(a.forget.y.tolist()) == {5, 7} and set(a.retain.y.tolist()) == {0, 1}
    assert set(a.eval_forget.y.tolist()) == {5, 7} and len(a.eval_forget) == 4
    assert len(a.forget) == 6  # 3 per class (4 exist per class)


def test_a_retain_fraction_is_a_share_of_the_images_the_pool_really_has(fake_root):
    """With 4 images a class in the pool and a nominal 500 a class, fraction 0.5 means 2 of
    the 4 (it meant ceil(500 x 0.5) = 250, i.e. all of them); fractions nest."""
    from l2l.config import RetainConfig

    train = data.load_fashion_mnist("train", root=fake_root)
    test = data.load_fashion_mnist("test", root=fake_root)
    full = data.make_splits(train, test, (5, 7), RetainConfig((0, 1)), 500, 2, seed=0).retain

    def frac(r):
        return data.make_splits(train, test, (5, 7), RetainConfig((0, 1), "fraction", r), 500, 2,
                                seed=0).retain

    half, quarter = frac(0.5), frac(0.25)
    per_class = {c: int((full.y == c).sum()) for c in (0, 1)}
    assert per_class == {0: 4, 1: 4}
    assert [int((half.y == c).sum()) for c in (0, 1)] == [2, 2]
    assert [int((quarter.y == c).sum()) for c in (0, 1)] == [1, 1]
    assert len(frac(1.0)) == len(full)
    rows = {tuple(x.flatten().tolist()) for x in half.x}
    assert {tuple(x.flatten().tolist()) for x in quarter.x} <= rows <= {
        tuple(x.flatten().tolist()) for x in full.x}


def test_center_inpaint_mask_is_centred_with_the_side_ratio():
    m = center_inpaint(8, 0.5).view(8, 8)
    assert m.sum() == 16 and m[2:6, 2:6].all()
    assert center_inpaint(16, 0.25).sum() == 16  # 4x4 of 16x16 patches, as in the paper
    px = pixel_mask(center_inpaint(8, 0.5), 4)
    assert px.shape == (1, 1, 32, 32) and px.sum() == 256 and px[0, 0, 8:24, 8:24].all()
