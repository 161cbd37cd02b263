"""The GAN paper's data sets from a user's local files (l2l/datasets.py): small MNIST and CIFAR-10
copies written here in the real on-disk formats (MNIST's IDX files, CIFAR-10's python batches),
read through torchvision, and a GAN trained and unlearned on each, channels kept end to end."""
import math
import pickle
import subprocess
import sys

import pytest

from l2l import dataset_files, experiment
from l2l.datasets import CIFAR10_FILES, DATASETS, MNIST_FILES, read_split
from l2l.errors import DataNotFoundError
from l2l.gan.config import GanTrialConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def write_mnist(root, n_train: int = 200, n_test: int = 80, seed: int = 0) -> None:
    """Small copies: 200 training images of each data set, 80 test images."""
    dataset_files.write_mnist(root, n_train, n_test, seed)


def write_cifar10(root, per_batch: int = 40, n_test: int = 80, seed: int = 1) -> None:
    dataset_files.write_cifar10(root, per_batch, n_test, seed)


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    m, c = tmp_path_factory.mktemp("mnist"), tmp_path_factory.mktemp("cifar")
    write_mnist(m)
    write_cifar10(c)
    return {"mnist": m, "cifar10": c}


def test_the_files_read_through_torchvision_with_their_channels(roots):
    mnist = read_split("mnist", "train", roots["mnist"])
    assert tuple(mnist.x.shape) == (200, 1, 32, 32) and mnist.y.tolist()[:3] == [0, 1, 2]
    assert float(mnist.x[:, :, :2].max()) == 0.0  # padded from 28x28
    cifar = read_split("cifar10", "train", roots["cifar10"])
    assert tuple(cifar.x.shape) == (200, 3, 32, 32) and 0.0 <= float(cifar.x.min())
    assert float(cifar.x[:, 0].mean()) < float(cifar.x[:, 1].mean())  # the planes stay apart
    assert len(read_split("cifar10", "test", roots["cifar10"])) == 80
    assert DATASETS.get("cifar10").channels == 3 and DATASETS.get("mnist").channels == 1


@pytest.mark.parametrize("name, files", [("mnist", MNIST_FILES), ("cifar10", CIFAR10_FILES)])
def test_a_missing_or_partial_root_names_the_files_expected(name, files, roots, tmp_path):
    with pytest.raises(DataNotFoundError, match=f"dataset {name}: no data_root given") as e:
        read_split(name, "train", None)
    assert all(f in str(e.value) for f in files)
    folder = DATASETS.get(name).folder
    partial = tmp_path / "partial"
    (partial / folder).mkdir(parents=True)
    (partial / folder / files[0]).write_bytes((roots[name] / folder / files[0]).read_bytes())
    with pytest.raises(DataNotFoundError, match=f"lacks {', '.join(files[1:])} "):
        read_split(name, "train", partial)
    # present but damaged: one line, not a traceback from the reader
    for f in files:
        (partial / folder / f).write_bytes(b"\x00\x01 not the format")
    with pytest.raises(DataNotFoundError, match=f"dataset {name}: the files under .* cannot be "
                                                "read"):
        read_split(name, "train", partial)


SMOKE = {
    "family": "gan",
    "generator": {"name": "dcgan", "size": "tiny", "nz": 16, "ngf": 8, "ndf": 8},
    "pretrain": {"images": 200, "epochs": 1, "batch_size": 32, "lr": 0.001, "seed": 0},
    "classifier": {"images": 200, "epochs": 1},
    "unlearn": {"rounds": 2, "batch_size": 16, "lr": 0.001},
    "eval": {"samples": 64, "real_images": 64, "mia_images": 16, "downstream_epochs": 1},
    "forget_set": {"classes": [3]},
}


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_a_gan_trains_and_unlearns_on_each_with_its_channels(name, roots, tmp_path):
    d = {**SMOKE, "dataset": name, "data_root": str(roots[name]), "cache_dir": str(tmp_path)}
    cfg = GanTrialConfig.from_dict({**d, "method": "cascade"})
    assert cfg.channels == DATASETS.get(name).channels
    res = experiment.run(cfg, artifact_dir=tmp_path / "art")
    values = {m.metric: m.value for m in res.metrics}
    assert {"fid", "is", "forget_class_share", "downstream_accuracy"} <= set(values)
    assert all(math.isfinite(v) for v in values.values())
    assert res.pretrain_cache_hit is False
    # the original is cached under the files' content: the same files hit it ...
    again = experiment.run(GanTrialConfig.from_dict({**d, "method": "original"}))
    assert again.pretrain_cache_hit is True
    # ... another copy of the same name (other images) does not
    other = tmp_path / "other"
    (write_mnist if name == "mnist" else write_cifar10)(other, seed=7)
    moved = experiment.run(GanTrialConfig.from_dict(
        {**d, "method": "original", "data_root": str(other)}))
    assert moved.pretrain_cache_hit is False


def test_a_trial_without_the_files_is_one_line_on_the_command_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("family: gan\nmethod: original\ndataset: cifar10\nforget_set: {classes: [3]}\n"
                   f"data_root: {tmp_path / 'nowhere'}\n")
    r = subprocess.run([sys.executable, "-m", "l2l", "trial", str(cfg)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert "dataset cifar10:" in line and "data_batch_1" in line and "batches.meta" in line


def test_a_sweep_without_the_files_stops_before_ray_with_the_files_named(tmp_path, capsys,
                                                                         monkeypatch):
    from sweeps.cli import main

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "s.yaml"
    spec.write_text("name: m\nfamily: gan\ndataset: mnist\nforget_set: {classes: [3]}\n"
                    "grid: {method: [original, cascade]}\n")
    assert main(["run", str(spec), "--cache-dir", str(tmp_path / "c"), "--mlflow-uri",
                 "none", "--data-root", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: data_root: dataset mnist:") and "t10k-labels-idx1-ubyte" in err
    assert not (tmp_path / "ray_results").exists() and not (tmp_path / "results").exists()


def test_a_hostile_cifar_batch_runs_no_code(roots, tmp_path):
    """CIFAR-10's batches are pickles; one that names a function to call is refused by name,
    and the function never runs."""
    import os
    import shutil

    hostile = tmp_path / "hostile"
    shutil.copytree(roots["cifar10"], hostile)
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(hostile / "cifar-10-batches-py" / "data_batch_1", "wb") as f:
        pickle.dump({"data": Evil(), "labels": [0]}, f)
    with pytest.raises(DataNotFoundError, match=r"posix.system is not allowed|os.system is not "
                                                r"allowed"):
        read_split("cifar10", "train", hostile)
    assert not marker.exists()
