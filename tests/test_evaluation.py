"""The evaluation protocol (l2l/metrics.py, l2l/trial.py): every metric on every split with its
n and direction, the attack on memorised and unseen images, the retrain reference,
determinism, artifacts and the result rows."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from l2l.classifier import Classifier
from l2l.data import ImageSet
from l2l.features import ClassifierFeatures
from l2l.generators import build_generator
from contract.metrics import direction, names
from l2l.metrics import Evaluator, RetrainReference, evaluate, membership_sets
from l2l.tasks import pixel_mask, task_mask

METRICS = names("i2i")["forget"]
CONTRACT = {"fid", "kid", "is", "cosine", "psnr", "ssim", "mse_masked", "mia_auc",
            "retrain_distance", "forget_class_share"}


def _set(n, classes, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor(classes).repeat_interleave(n)
    return ImageSet(torch.rand(len(y), 1, 32, 32, generator=g), y)


def _evaluator(mask, **kw):
    torch.manual_seed(0)
    clf = ClassifierFeatures(Classifier(10).eval(), identity="test")
    return Evaluator(mask, 4, torch.device("cpu"), clf, clf, clf, (5, 7), batch_size=16,
                     **kw)


class Memoriser(nn.Module):
    """Fills the hidden region with the training image whose visible pixels match exactly, and
    with grey for any other image: perfect on its training set, uninformed elsewhere."""

    patch = 4

    def __init__(self, bank: torch.Tensor):
        super().__init__()
        self.bank = bank

    def reconstruct(self, x, mask, g=None):
        pm = pixel_mask(mask, self.patch)
        d = (((x[:, None] - self.bank[None]) * (1 - pm)) ** 2).flatten(2).sum(-1)  # [N, B]
        best = d.argmin(1)
        fill = torch.where((d.min(1).values < 1e-9)[:, None, None, None], self.bank[best],
                           torch.full_like(x, 0.5))
        return x * (1 - pm) + fill * pm


def test_the_attack_finds_a_memorised_set_and_nothing_in_an_unseen_one():
    mask = task_mask("center_inpaint", 8, 0.5)
    train, heldout, other = _set(40, [5, 7], 1), _set(40, [5, 7], 2), _set(40, [5, 7], 3)
    ev = _evaluator(mask, kid_subsets=5)
    membership = membership_sets(train, heldout, seed=0)
    assert len(membership[0]) == len(membership[1]) == 80
    memorised = {m.metric: m for m in evaluate(Memoriser(train.x), heldout, "forget", ev,
                                                membership).metrics}
    assert memorised["mia_auc"].value == 1.0 and memorised["mia_auc"].n == 160
    # Members the model never saw: two samples of one distribution.
    unseen = {m.metric: m.value for m in evaluate(Memoriser(other.x), heldout, "forget", ev,
                                                  membership).metrics}
    assert unseen["mia_auc"] == pytest.approx(0.5, abs=0.1)


def test_membership_sets_are_balanced_per_class():
    train = _set(10, [1, 2], 0)
    heldout = ImageSet(torch.rand(7, 1, 32, 32), torch.tensor([1, 1, 1, 2, 2, 3, 3]))
    members, idx = membership_sets(train, heldout, seed=4)
    assert members.y.tolist() == [1, 1, 1, 2, 2] and heldout.y[idx].tolist() == [1, 1, 1, 2, 2]
    again, _ = membership_sets(train, heldout, seed=4)
    assert torch.equal(members.x, again.x)


@pytest.fixture(scope="module")
def diffusion(one_thread):
    torch.manual_seed(0)
    return build_generator("diffusion", "tiny", sampling_steps=2).eval()


def test_every_metric_with_its_n_and_direction_and_the_same_values_twice(diffusion, tmp_path):
    mask = task_mask("center_inpaint", diffusion.grid, 0.5)
    data, train = _set(6, [5, 7], 1), _set(8, [5, 7], 2)
    torch.manual_seed(1)
    retrained = build_generator("diffusion", "tiny", sampling_steps=2).eval()
    ev = _evaluator(mask, cache_dir=tmp_path, kid_subset_size=8)

    def run():
        return evaluate(diffusion, data, "forget", ev, membership_sets(train, data, 0),
                        RetrainReference(retrained, "r"))

    first, again = run(), run()
    values = {m.metric: m.value for m in first.metrics}
    assert set(values) == set(METRICS) and CONTRACT <= set(values)
    assert values == {m.metric: m.value for m in again.metrics}  # sampling seeded: identical
    assert again.cache_hits == {"features": True, "retrain_outputs": True}
    n = {m.metric: m.n for m in first.metrics}
    assert n["mia_auc"] == n["mia_auc_retrain"] == 24 and n["fid"] == n["retrain_distance"] == 12
    assert all(np.isfinite(v) for v in values.values())
    assert 0 < values["retrain_distance"] and 0 <= values["forget_class_share"] <= 1
    assert values["mia_gap_retrain"] == pytest.approx(
        abs(values["mia_auc"] - values["mia_auc_retrain"]))
    # the image-level standard errors: estimated, positive, the same twice
    se = {m.metric: m.se for m in first.metrics if m.se is not None}
    assert set(se) == {"fid", "is", "cosine", "psnr", "mse_masked", "forget_class_share"}
    assert se == pytest.approx({m.metric: m.se for m in again.metrics if m.se is not None},
                               rel=1e-9)  # the same draws; float sums may differ in order
    assert se["fid"] > 0 and se["mse_masked"] > 0
    # a different seed draws other noise
    ev.seed = 1
    assert {m.metric: m.value for m in run().metrics}["mse_masked"] != values["mse_masked"]


def test_the_retrain_model_is_at_distance_zero_from_itself(diffusion):
    mask = task_mask("center_inpaint", diffusion.grid, 0.5)
    data, train = _set(4, [5, 7], 1), _set(4, [5, 7], 2)
    r = evaluate(diffusion, data, "retain", _evaluator(mask), membership_sets(train, data, 0),
                 RetrainReference(diffusion, "r", same=True))
    v = {m.metric: m.value for m in r.metrics}
    assert v["retrain_distance"] == 0.0 and v["mia_auc_retrain"] == v["mia_auc"]
    assert v["mia_gap_retrain"] == 0.0  # the retrained model is its own reference
    assert "kid_std" not in v  # one subset of all 8 images: no spread to report


def test_directions():
    def kind(split, m):
        return direction("i2i", split, m).text

    for m in ("fid", "kid", "mse_masked"):
        assert (kind("retain", m), kind("forget", m)) == ("lower", "higher")
    for m in ("is", "cosine", "psnr", "ssim"):
        assert (kind("retain", m), kind("forget", m)) == ("higher", "lower")
    for m in ("retrain_distance", "forget_class_share"):
        assert kind("retain", m) == kind("forget", m) == "lower"
    # Membership inference is best at 0.5: an inverted attack (AUC 0.1) is as informative as
    # one at 0.9, so it must not rank as the best forgetting.
    d = direction("i2i", "forget", "mia_auc")
    assert d.text == "target:0.5" and d.arrow == "→0.5"
    assert d.score(0.45) > d.score(0.1) and d.score(0.55) > d.score(0.7)
    assert d.score(0.1) == pytest.approx(d.score(0.9))


def test_a_trial_carries_every_metric_the_cost_columns_and_its_artifacts(tiny, tmp_path):
    from l2l.config import TrialConfig
    from l2l.trial import run_trial
    from contract.schema import CONFIG, TRIAL, METRIC

    cfg = TrialConfig.from_dict({**tiny, "method": "l2l", "alpha": 0.25,
                                 "unlearn": {**tiny["unlearn"], "steps": 5},
                                 "eval": {"images_per_class": 10, "grid_images": 5}})
    res = run_trial(cfg, artifact_dir=tmp_path / "art")
    got = {(m.split, m.metric): m for m in res.metrics}
    for split, per_class in (("forget", 3), ("retain", 4)):
        assert {metric for s, metric in got if s == split} >= CONTRACT
        assert got[(split, "fid")].n == 10 * per_class
        assert got[(split, "mia_auc")].n == 2 * 10 * per_class
    # the budget, once a trial: a forget and a retain batch a step
    assert got[("all", "samples_seen")].value == 5 * 2 * tiny["unlearn"]["batch_size"]
    # every metric on features names its extractor (the default: the classifier), no other does
    from contract.metrics import uses_features

    named = {m.metric: m.extractor for m in res.metrics if m.extractor}
    assert set(named.values()) == {"classifier"}
    assert {"fid", "kid", "is", "cosine", "forget_class_share"} <= set(named)
    assert all((m.extractor is not None) == uses_features("i2i", m.split, m.metric)
               for m in res.metrics)
    assert res.pretrain_cache_hit and res.peak_memory_mb > 100 and res.device == "cpu"
    assert res.caches["retrain_reference"]["key"] != res.caches["generator"]["key"]

    rows = res.rows()
    # the trial fills every config and trial column; the writer adds the direction
    assert set(rows[0]) == (set(CONFIG) | set(TRIAL) | set(METRIC)) - {"direction"}
    assert rows[0]["family"] == "i2i" and rows[0]["pretrain_cache_hit"] is True
    json.dumps(rows)

    art = res.artifacts
    assert set(art) == {"grid_forget", "grid_retain", "embeddings"}
    with Image.open(art["grid_forget"]) as im:  # 3 rows x 5 images of 32 px, 2 px padding
        assert im.size == (5 * 34 + 2, 3 * 34 + 2)
    emb = np.load(art["embeddings"])
    assert emb["forget_output"].shape == emb["forget_original"].shape == (30, 128)
    assert emb["retain_output"].dtype == np.float32 and emb["retain_labels"].shape == (40,)
    assert set(emb["forget_labels"].tolist()) == {5, 7, 9}


def test_the_expensive_parts_switch_off(tiny):
    from l2l.config import TrialConfig
    from l2l.trial import run_trial

    cfg = TrialConfig.from_dict({**tiny, "method": "original", "eval": {
        "images_per_class": 4, "mia": False, "retrain_reference": False}})
    res = run_trial(cfg)
    names = {m.metric for m in res.metrics}
    assert not names & {"mia_auc", "mia_auc_retrain", "retrain_distance"} and "fid" in names
    assert "retrain_reference" not in res.caches and res.artifacts == {}
