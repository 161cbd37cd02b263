"""The FID criterion originals and retrained GANs are trained to (pretrain.fid_patience): when
it stops, which weights it keeps, what it records, and that the retrained model gets the same
criterion on held-out images it never trained on."""
import copy
import json

import pytest
import torch

from l2l import experiment
from l2l.data import validation_indices
from l2l.datasets import read_split
from l2l.errors import ConfigError
from l2l.gan.config import GanTrialConfig
from l2l.gan.data import training_pool
from l2l.gan.pretrain import original_key, train_gan

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {
    "family": "gan", "dataset": "digits", "method": "retrain", "forget_set": {"classes": [3]},
    "generator": {"name": "dcgan", "size": "tiny", "nz": 16, "ngf": 8, "ndf": 8},
    "pretrain": {"images": 300, "epochs": 6, "batch_size": 32, "lr": 0.001, "seed": 0,
                 "fid_patience": 2, "fid_tolerance": 0.02},
    "classifier": {"images": 300, "epochs": 1},
    "eval": {"samples": 64, "real_images": 64, "mia_images": 16, "downstream_epochs": 0},
}


class Scripted:
    """A FidCheck stand-in that returns the given FIDs in turn."""

    def __init__(self, values):
        self.values, self.calls = list(values), 0

    def __call__(self, gan, device):
        self.calls += 1
        return self.values[self.calls - 1]


def _images(n=40):
    return torch.rand(n, 1, 32, 32)


@pytest.mark.parametrize("fids, kept, run", [
    ([10.0, 8.0, 7.9, 7.95, 6.0, 5.0], 2, 4),  # 7.9 is under 2% better: patience runs out
    ([10.0, 9.0, 8.0, 7.0, 6.0, 5.0], 6, 6),  # always improving: the cap ends it
    ([10.0, 11.0, 12.0, 1.0, 1.0, 1.0], 1, 3),  # a late drop after the patience is not seen
])
def test_training_stops_once_patience_epochs_bring_no_improvement(fids, kept, run):
    cfg = GanTrialConfig.from_dict(TINY)
    check = Scripted(fids)
    gan, t = train_gan(cfg, _images(), torch.device("cpu"), check)
    assert (t.epochs, t.epochs_run, check.calls) == (kept, run, run)
    assert t.fid == fids[:run]
    assert 0 < t.seconds <= t.seconds_run


def test_the_kept_weights_are_the_best_epochs_not_the_last():
    cfg = GanTrialConfig.from_dict(TINY)
    seen = []

    def check(gan, device):  # records each epoch's weights; the second epoch is the best
        seen.append(copy.deepcopy(gan.state_dict()))
        return [5.0, 1.0, 3.0, 3.0][len(seen) - 1]

    gan, t = train_gan(cfg, _images(), torch.device("cpu"), check)
    assert t.epochs == 2 and t.epochs_run == 4
    for k, v in gan.state_dict().items():
        assert torch.equal(v, seen[1][k]), k
    assert any(not torch.equal(v, seen[3][k]) for k, v in gan.state_dict().items())


def test_without_the_criterion_every_epoch_runs_and_old_caches_stay_valid():
    d = copy.deepcopy(TINY)
    del d["pretrain"]["fid_patience"], d["pretrain"]["fid_tolerance"]
    cfg = GanTrialConfig.from_dict(d)
    gan, t = train_gan(cfg, _images(), torch.device("cpu"))
    assert (t.epochs, t.epochs_run, t.fid) == (6, 6, [])
    assert not any(k.startswith("fid_") for k in original_key(cfg)["pretrain"])
    with_it = GanTrialConfig.from_dict(TINY)
    assert original_key(with_it) != original_key(cfg)


@pytest.mark.parametrize("pretrain, field", [
    ({"fid_patience": 0}, "pretrain.fid_patience"),
    ({"fid_patience": 2.5}, "pretrain.fid_patience"),
    ({"fid_patience": float("nan")}, "pretrain.fid_patience"),
    ({"fid_tolerance": -0.1}, "pretrain.fid_tolerance"),
    ({"fid_tolerance": float("inf")}, "pretrain.fid_tolerance"),
    ({"fid_tolerance": "2%"}, "pretrain.fid_tolerance"),
])
def test_bad_criterion_settings_are_refused_by_field(pretrain, field):
    d = copy.deepcopy(TINY)
    d["pretrain"].update(pretrain)
    with pytest.raises(ConfigError) as e:
        GanTrialConfig.from_dict(d)
    assert e.value.path == field


def test_the_pool_leaves_out_the_holdout_the_criterion_measures_on(tmp_path):
    cfg = GanTrialConfig.from_dict({**TINY, "pretrain": {**TINY["pretrain"], "images": 5000}})
    train = read_split("digits", "train", None, tmp_path)
    pool = training_pool(cfg, train)
    held = set(validation_indices(train).tolist())
    # the pool is every training image but the holdout (images asked: more than there are)
    assert len(pool) == len(train) - len(held)
    assert abs(cfg.pool_size - len(pool)) <= 10  # the config's count rounds per split, not class
    rows = {tuple(r) for r in train.x.flatten(1)[sorted(held)].tolist()}
    assert not rows & {tuple(r) for r in pool.x.flatten(1).tolist()}


def test_original_and_retrain_are_trained_to_the_criterion_and_record_it(tmp_path):
    d = {**TINY, "cache_dir": str(tmp_path)}
    res = experiment.run(GanTrialConfig.from_dict(d))
    metrics = {m.metric: m.value for m in res.metrics}
    entries = {p.name: json.loads((p / "meta.json").read_text())
               for p in (tmp_path / "gan").iterdir() if p.is_dir()}
    assert len(entries) == 2  # the original and the retrained model
    for meta in entries.values():
        assert 1 <= meta["epochs"] <= meta["epochs_run"] <= 6
        assert len(meta["fid_history"]) == meta["epochs_run"]
        assert meta["epochs_run"] == 6 or meta["epochs_run"] - meta["epochs"] == 2
        best = meta["fid_history"][meta["epochs"] - 1]
        assert best == min(meta["fid_history"][:meta["epochs"]])
        assert meta["train_seconds"] <= meta["seconds_run"]
    retrain = [m for m in entries.values() if m["images"] < max(e["images"]
                                                                  for e in entries.values())]
    assert len(retrain) == 1
    assert metrics["epochs"] == retrain[0]["epochs"]
    assert res.unlearn_seconds == retrain[0]["train_seconds"]


def test_the_criterions_measurements_are_left_out_of_the_training_seconds():
    """The same training with checks that take 0 s and 0.3 s: the recorded seconds do not
    grow with the checks (they would by 1.8 s over six epochs)."""
    import time

    cfg = GanTrialConfig.from_dict(TINY)
    out = []
    for delay in (0.0, 0.3):
        def slow(gan, device, fids=iter([9.0, 8.0, 7.0, 6.0, 5.0, 4.0])):
            time.sleep(delay)
            return next(fids)

        _, t = train_gan(cfg, _images(), torch.device("cpu"), slow)
        out.append(t)
    assert out[0].epochs == out[1].epochs == 6
    assert out[1].seconds_run - out[0].seconds_run < 1.0 < 6 * 0.3
