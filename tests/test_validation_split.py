"""The validation split of the image-to-image family (eval.split): a fixed holdout of the
training images that no original model is trained on, the evaluation sets of `validation`
trials drawn from it, and sweep searches choosing on it, so test images reach only the final
tables. Tiny synthetic data: no Fashion-MNIST, no model."""
import pytest
import torch
import yaml

from l2l.config import TrialConfig
from l2l.data import VALIDATION_SHARE, ImageSet, validation_split
from l2l.errors import ConfigError
from l2l.i2i import STEPS
from l2l.trial import Prepared
from sweeps.spec import SpecError, parse_spec


def _images(n: int, offset: float) -> ImageSet:
    """`n` distinct images (their first pixel is their index + offset), labels 0..9 in turn."""
    x = torch.zeros(n, 1, 32, 32)
    x[:, 0, 0, 0] = torch.arange(n, dtype=torch.float32) + offset
    return ImageSet(x, torch.arange(n) % 10)


def _ids(s: ImageSet) -> set[float]:
    return set(s.x[:, 0, 0, 0].tolist())


TRAIN, TEST = _images(400, 0.0), _images(200, 10_000.0)
BASE = {"method": "l2l", "forget_set": {"classes": [5, 7, 9]},
        "retain": {"classes": [0, 1, 2, 3]}, "pretrain": {"images": 300},
        "unlearn": {"images_per_class": 5}, "eval": {"images_per_class": 4}}


def _cfg(**changes) -> TrialConfig:
    return TrialConfig.from_dict({**BASE, **changes})


def _prepared(cfg: TrialConfig) -> Prepared:
    return Prepared(TRAIN, TEST, STEPS.training_pool(cfg, TRAIN), None, None)


def test_holdout_is_fixed_disjoint_from_every_pool_and_a_share_of_each_class():
    held, rest = validation_split(TRAIN)
    assert len(held) == round(VALIDATION_SHARE * 40) * 10  # 4 of each class's 40
    assert torch.bincount(held.y).tolist() == [4] * 10
    assert not _ids(held) & _ids(rest) and len(held) + len(rest) == len(TRAIN)
    for seed in (0, 1):
        cfg = _cfg(pretrain={"images": 300, "seed": seed})
        pool = STEPS.training_pool(cfg, TRAIN)
        assert len(pool) == 300 and not _ids(pool) & _ids(held)
    assert torch.equal(validation_split(TRAIN)[0].x, held.x)  # no seed in it: the same images
    pools = [_ids(STEPS.training_pool(_cfg(pretrain={"images": 300, "seed": s}), TRAIN))
             for s in (0, 1)]
    assert pools[0] != pools[1]  # the pretraining seed still draws the pool


def test_a_class_of_one_image_keeps_it_for_training():
    tiny = ImageSet(torch.rand(3, 1, 32, 32), torch.tensor([0, 1, 1]))
    held, rest = validation_split(tiny)
    assert held.y.tolist() == [1] and sorted(rest.y.tolist()) == [0, 1]


@pytest.mark.parametrize("split", ["validation", "test"])
def test_evaluation_sets_come_from_the_split_asked_for(split):
    cfg = _cfg(eval={"images_per_class": 4, "split": split})
    prep = _prepared(cfg)
    s = STEPS.splits(cfg, prep)
    held = _ids(validation_split(TRAIN)[0])
    for ev in (s.eval_forget, s.eval_retain):
        assert len(ev) > 0
        if split == "validation":
            assert not _ids(ev) & _ids(TEST)  # no test image (compared by content)
            assert _ids(ev) <= held and not _ids(ev) & _ids(prep.pool)
        else:
            assert _ids(ev) <= _ids(TEST)
    assert _ids(s.forget) <= _ids(prep.pool)  # training-side sets stay in the pool
    # Membership inference: non-members are the evaluation set (l2l/i2i.py evaluate passes
    # it), members come from the pool, so the two are disjoint under either split.
    assert not _ids(s.eval_forget) & _ids(s.forget)


def test_config_rejects_an_unknown_split_in_one_line():
    with pytest.raises(ConfigError) as e:
        _cfg(eval={"split": "train"})
    msg = str(e.value)
    assert msg.startswith("eval.split:") and "test, validation" in msg and "\n" not in msg
    assert _cfg().eval.split == "test"
    assert _cfg(eval={"split": "validation"}).config_hash != _cfg().config_hash


SEARCH = """
name: tiny-search
method: l2l
forget_set: {classes: [5, 7, 9]}
grid:
  seed: [0, 1]
search:
  num_samples: 4
  metric: {forget: {fid: 1.0}, retain: {fid: -1.0}}
  space:
    alpha: {loguniform: [0.01, 10]}
  asha: {grace_period: 1, reduction_factor: 2}
"""


def test_a_search_chooses_on_validation_images():
    spec = parse_spec(yaml.safe_load(SEARCH))
    assert {t.config.eval.split for t in spec.trials} == {"validation"}
    assert spec.search.base["eval"]["split"] == "validation"  # every sampled point's base
    given = parse_spec(yaml.safe_load(SEARCH + "eval: {split: validation, batch_size: 8}\n"))
    assert given.trials[0].config.eval.split == "validation"
    assert given.trials[0].config.eval.batch_size == 8
    grid = parse_spec(yaml.safe_load(SEARCH.split("search:")[0]))
    assert {t.config.eval.split for t in grid.trials} == {"test"}  # grids keep the default


@pytest.mark.parametrize("extra, where", [
    ("eval: {split: test}\n", "eval.split:"),
    ("    eval.split: {choice: [test, validation]}\n", "search.space.eval.split:"),
])
def test_a_search_on_test_images_is_refused(extra, where):
    with pytest.raises(SpecError) as e:
        parse_spec(yaml.safe_load(SEARCH.replace("  asha:", extra + "  asha:")
                                  if extra.startswith("    ") else SEARCH + extra))
    msg = str(e.value)
    assert msg.startswith(where) and "validation" in msg and "\n" not in msg


def test_gan_searches_are_left_as_they_are():
    """The GAN family has no validation split (l2l/gan/config.py): its searches are unchanged."""
    spec = parse_spec({"name": "gan-search", "family": "gan", "method": "gradient_ascent",
                       "forget_set": {"classes": [5]}, "grid": {"seed": [0, 1]},
                       "search": {"num_samples": 2, "metric": {"all": {"fid": -1.0}},
                                  "space": {"unlearn.lr": {"loguniform": [1e-4, 1e-2]}}}})
    assert not hasattr(spec.trials[0].config.eval, "split")
    assert "split" not in spec.search.base.get("eval", {})


def test_the_pool_is_drawn_from_the_images_outside_the_holdout_without_copying_them_all():
    from l2l.data import pool_sample, sample, validation_holdout

    for seed in (0, 3):
        expected = sample(validation_split(TRAIN)[1], 50, seed)
        got = pool_sample(TRAIN, 50, seed)
        assert torch.equal(got.x, expected.x) and torch.equal(got.y, expected.y)
    assert torch.equal(validation_holdout(TRAIN).x, validation_split(TRAIN)[0].x)
