"""A reused Ray worker runs trial after trial (sweeps/worker.py): what one trial built must be
freed before the next, or the worker grows by each trial's models (measured: about 0.5 GB a
GAN trial, 20 GB after 80 trials, before run_unit collected the trial's reference cycles)."""
import gc

import pytest
import torch

from l2l import experiment
from sweeps.worker import WorkerContext, run_unit
from test_gan_methods import SMOKE

pytestmark = pytest.mark.usefixtures("one_thread")


def _modules() -> set[int]:
    # type(), not isinstance(): isinstance reads __class__, which warns on some lazy modules
    return {id(o) for o in gc.get_objects() if issubclass(type(o), torch.nn.Module)}


def test_a_finished_trial_leaves_no_model_behind(tmp_path):
    cfg = experiment.parse_config({**SMOKE, "method": "cascade", "forget_set": {"classes": [3]},
                                  "cache_dir": str(tmp_path / "cache")})
    ctx = WorkerContext("s", str(tmp_path / "results"), 2)
    run_unit(ctx, "t000-warm0000", cfg)  # builds the cached models: not what is measured
    before = _modules()
    gc.disable()  # only run_unit's own collection may free the trial's reference cycles
    try:
        unit, _ = run_unit(ctx, "t001-measured", cfg)
        left = _modules() - before
    finally:
        gc.enable()
    assert unit.rows and not left  # without the collection: hundreds of modules (GANs, copies)
