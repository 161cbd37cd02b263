"""A reused Ray worker runs trial after trial (sweeps/worker.py): what one trial built must be
freed before the next, or the worker grows by each trial's models (measured: about 0.5 GB a
GAN trial, 20 GB after 80 trials, before run_unit collected the trial's reference cycles)."""
import gc

import pytest
import torch

from l2l import experiment
from sweeps.worker import WorkerContext, run_unit

pytestmark = pytest.mark.usefixtures("one_thread")

GAN = {
    "family": "gan", "dataset": "fashion_mnist", "method": "cascade",
    "generator": {"name": "dcgan", "size": "tiny", "nz": 16, "ngf": 8, "ndf": 8},
    "pretrain": {"images": 200, "epochs": 1, "batch_size": 32, "lr": 0.001, "seed": 0},
    "classifier": {"images": 200, "epochs": 1},
    "unlearn": {"rounds": 2, "batch_size": 16, "lr": 0.001},
    "eval": {"samples": 64, "real_images": 64, "mia_images": 16, "downstream_epochs": 1},
    "forget_set": {"classes": [3]},
}


def _modules() -> set[int]:
    # type(), not isinstance(): isinstance reads __class__, which warns on some lazy modules
    return {id(o) for o in gc.get_objects() if issubclass(type(o), torch.nn.Module)}


def test_a_finished_trial_leaves_no_model_behind(tmp_path):
    cfg = experiment.parse_config({**GAN, "cache_dir": str(tmp_path / "cache")})
    ctx = WorkerContext("s", str(tmp_path / "results"), 2)
    run_unit(ctx, "t000-warm0000", cfg)  # builds the cached models: not what is measured
    before = _modules()
    gc.disable()  # only run_unit's own collection may free the trial's reference cycles
    try:
        unit, _ = run_unit(ctx, "t001-measured", cfg)
        left = _modules() - before
    finally:
        gc.enable()
    assert unit.rows and not left  # without the collection: 266 modules (the GANs, copies)
