"""Trial configs: defaults, data settings, and errors that name the field."""
import pytest
import torch

from l2l.config import TrialConfig
from l2l.data import ImageSet, make_splits
from l2l.errors import ConfigError
from l2l.tasks import outpaint


def cfg(**kw):
    return TrialConfig.from_dict({"method": "l2l", "forget_set": {"classes": [5, 7, 9]}, **kw})


def test_defaults_and_round_trip():
    c = cfg()
    assert c.retain.classes == (0, 1, 2, 3, 4, 6, 8) and c.retain.mode == "full"
    assert c.alpha == 0.25 and c.noise == "normal"
    assert TrialConfig.from_dict(c.to_dict()) == c
    assert cfg(device="cpu", cache_dir="/x").config_hash == c.config_hash  # runtime fields


def test_random_forget_set_is_drawn_by_its_seed():
    a = cfg(forget_set={"random": 3, "seed": 4}).forget_classes
    assert a == cfg(forget_set={"random": 3, "seed": 4}).forget_classes and len(a) == 3
    draws = {cfg(forget_set={"random": 3, "seed": s}).forget_classes for s in range(5)}
    assert len(draws) > 1


@pytest.mark.parametrize("retain, message", [
    ({"mode": "fraction"}, "retain.fraction: missing"),
    ({"mode": "fraction", "fraction": 1.5}, "retain.fraction: must be <= 1.0"),
    ({"mode": "full", "fraction": 0.5}, "retain.fraction: not used by mode 'full'"),
    ({"mode": "proxy", "source": "imagenet"}, "retain.source: unknown value 'imagenet'"),
    ({"mode": "proxy", "source": "fashion_mnist"}, "retain.proxy_classes: missing"),
    ({"mode": "proxy", "source": "fashion_mnist", "proxy_classes": [5]},
     "retain.proxy_classes: [5] are forgotten or retained"),
    ({"mode": "sometimes"}, "retain.mode: unknown value 'sometimes'"),
])
def test_retain_settings_are_checked(retain, message):
    with pytest.raises(ConfigError) as e:
        cfg(retain=retain)
    assert message in str(e.value)


def _set(n, label):
    return ImageSet(torch.rand(n, 1, 32, 32), torch.full((n,), label))


def test_retain_modes_change_the_retain_set_but_not_the_forget_set():
    pool = ImageSet(torch.rand(100, 1, 32, 32), torch.arange(100) % 10)
    test = ImageSet(torch.rand(50, 1, 32, 32), torch.arange(50) % 10)
    common = {"forget_set": {"classes": [5]}}
    full = make_splits(pool, test, (5,), cfg(**common, retain={"classes": [0, 1]}).retain, 8, 2, 0)
    frac = make_splits(pool, test, (5,), cfg(**common, retain={
        "classes": [0, 1], "mode": "fraction", "fraction": 0.25}).retain, 8, 2, 0)
    proxy = make_splits(pool, test, (5,), cfg(**common, retain={
        "classes": [0, 1], "mode": "proxy", "source": "fashion_mnist", "proxy_classes": [2, 3],
        "size": 2.0}).retain, 8, 2, 0)
    digits = make_splits(pool, test, (5,), cfg(**common, retain={
        "classes": [0, 1], "mode": "proxy", "source": "digits", "size": 1.0}).retain, 8, 2, 0)
    none = make_splits(pool, test, (5,), cfg(**common, retain={
        "classes": [0, 1], "mode": "none"}).retain, 8, 2, 0)
    for s in (frac, proxy, digits, none):
        assert torch.equal(s.forget.x, full.forget.x)
        assert torch.equal(s.eval_retain.x, full.eval_retain.x)
    assert len(full.retain) == 16 and len(frac.retain) == 4  # ceil(8 * 0.25) a class
    assert len(proxy.retain) == 2 * len(full.forget) and set(proxy.retain.y.tolist()) <= {2, 3}
    assert len(digits.retain) == len(full.forget) and digits.retain.x.shape[1:] == (1, 32, 32)
    assert none.retain is None


def test_outpaint_hides_a_border():
    m = outpaint(8, 0.5).view(8, 8)
    assert not m[2:6, 2:6].any() and m[:2].all() and m[:, 6:].all() and m.sum() == 48
    assert cfg(task={"kind": "outpaint", "mask_ratio": 0.5}).task.kind == "outpaint"


def test_a_proxy_of_other_classes_must_fit_in_every_originals_pool():
    """The proxy is drawn from the original's pool; a size that only some pretraining seeds'
    pools hold is refused when the config is read, not when some of a sweep's trials fail."""
    from l2l import experiment
    from l2l.errors import ConfigError

    base = {"method": "l2l", "forget_set": {"classes": [5, 7, 9]},
            "pretrain": {"images": 5000},
            "unlearn": {"images_per_class": 500},
            "retain": {"mode": "proxy", "source": "fashion_mnist", "proxy_classes": [4, 6, 8],
                       "classes": [0, 1, 2, 3]}}
    with pytest.raises(ConfigError, match=r"retain\.size: .*at most 0\.97 fits"):
        experiment.parse_config({**base, "retain": {**base["retain"], "size": 1.0}})
    ok = experiment.parse_config({**base, "retain": {**base["retain"], "size": 0.9}})
    assert ok.retain.size == 0.9
