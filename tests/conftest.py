"""Shared fixtures: one tiny original model and one local Ray per test session.

The tiny config is the calibrated one (docs/benchmarks.md): a 64-dim, 2-block MAE trained on
2,000 images for 8 epochs learns centre inpainting well enough for the l2l effect to show.
"""
from __future__ import annotations

import copy
import os

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

TINY = {
    "dataset": "fashion_mnist",
    "task": {"kind": "center_inpaint", "mask_ratio": 0.5},
    "generator": {"name": "mae", "size": "tiny"},
    "pretrain": {"images": 2000, "epochs": 8, "batch_size": 64, "lr": 0.002, "seed": 0},
    "classifier": {"images": 10000, "epochs": 1},
    "forget_set": {"classes": [5, 7, 9]},
    "retain": {"mode": "full", "classes": [0, 1, 2, 3]},
    "unlearn": {"steps": 100, "batch_size": 64, "lr": 0.001, "images_per_class": 500},
    "eval": {"images_per_class": 100},
    "noise": "normal",
}


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """A model cache shared by the whole session, warmed with the tiny original model and
    classifier (about 30 s once), so every later test reads them from disk."""
    from l2l.config import TrialConfig
    from l2l.trial import run_trial

    d = tmp_path_factory.mktemp("l2l-cache")
    run_trial(TrialConfig.from_dict({**TINY, "method": "original", "cache_dir": str(d),
                                     "eval": {"images_per_class": 2}}))
    return d


@pytest.fixture
def tiny(cache_dir):
    """A fresh copy of the tiny trial dict pointing at the session cache."""
    return {**copy.deepcopy(TINY), "cache_dir": str(cache_dir)}


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the session: each start costs 6 to 8 s."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: a second intra-op thread only adds synchronisation, and on a loaded
    2-core machine it made the generator tests 10 to 20x slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
