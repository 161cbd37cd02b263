"""GAN trial configs: defaults, round trips, hashes, errors that name the field, and what the
sweep layer sees (family dispatch, grids without duplicate trials, the committed specs)."""
import json
from pathlib import Path

import pytest

from l2l import experiment
from l2l.errors import ConfigError
from l2l.gan.config import METHODS, GanTrialConfig

ROOT = Path(__file__).resolve().parents[1]


def _cfg(**kw):
    return GanTrialConfig.from_dict({"family": "gan", "method": "cascade",
                                     "forget_set": {"classes": [5]}, **kw})


def test_defaults_round_trip_and_family():
    c = _cfg()
    d = c.to_dict()
    assert d["family"] == "gan" and c.family == "gan"
    assert set(d) <= experiment.FAMILIES.get("gan").keys | {"family"}
    assert GanTrialConfig.from_dict(d) == c
    assert c.setting == "class" and c.forget_k == 1 and c.retain_classes == (0, 1, 2, 3, 4, 6,
                                                                             7, 8, 9)
    assert (c.generator.name, c.generator.size, c.generator.nz) == ("dcgan", "tiny", 32)
    assert c.cascade.fake_target == 0.0 and c.cascade.substitute == "retain"
    assert (c.cascade.d_steps, c.cascade.g_steps) == (1, 1)


def test_item_setting_is_inferred_and_round_trips():
    c = _cfg(forget_set={"items": 64, "seed": 3})
    assert c.setting == "item" and c.forget_k == 64 and c.forget_classes == ()
    assert GanTrialConfig.from_dict(c.to_dict()) == c
    assert _cfg(forget_set={"items": 64}).forget_set.seed == 0


def test_hash_ignores_runtime_fields_and_resolved_widths():
    a = _cfg()
    assert a.config_hash == _cfg(device="cpu", cache_dir="/x", data_root="/y").config_hash
    assert a.config_hash == _cfg(generator={"size": "tiny", "nz": 32}).config_hash
    assert a.config_hash != _cfg(cascade={"fake_target": 0.3}).config_hash
    assert a.config_hash != _cfg(seed=1).config_hash


def test_unused_options_are_nulled_so_grids_do_not_duplicate():
    for method in METHODS.names():
        uses = METHODS.get(method).params
        c = _cfg(method=method, cascade={"fake_target": 0.3, "substitute": "nearest"})
        params = json.loads(c.columns()["params"])
        if not uses:
            assert c.cascade is None and set(params) <= {"rounds"}
        else:
            for k in ("fake_target", "substitute", "d_steps", "g_steps"):
                assert (getattr(c.cascade, k) is not None) == (k in uses), (method, k)
    assert _cfg(method="original").unlearn is None
    assert _cfg(method="retrain", unlearn={"rounds": 7}).unlearn is None
    assert _cfg(method="original").config_hash == _cfg(
        method="original", cascade={"fake_target": 0.5}, unlearn={"rounds": 9}).config_hash


@pytest.mark.parametrize("override, path, words", [
    ({"method": "forget_it"}, "method", "allowed: original, retrain"),
    ({"setting": "item"}, "forget_set", "setting 'item' needs {items: k, seed: s}"),
    ({"setting": "pair"}, "setting", "allowed: class, item"),
    ({"forget_set": {"items": 5000}, "pretrain": {"images": 2000}}, "forget_set.items",
     "less than the 2000"),
    ({"forget_set": {"classes": list(range(10))}}, "forget_set.classes", "every class"),
    ({"forget_set": {"classes": [10]}}, "forget_set.classes[0]", "<= 9"),
    ({"dataset": "cifar100"}, "dataset", "allowed: fashion_mnist, digits, mnist, cifar10"),
    ({"generator": {"name": "mae"}}, "generator.name", "allowed: dcgan"),
    ({"generator": {"size": "huge"}}, "generator.size", "allowed: tiny, small, base"),
    ({"cascade": {"fake_target": 1.0}}, "cascade.fake_target", "[0, 1)"),
    ({"cascade": {"fake_target": "mean"}}, "cascade.fake_target", "mean_fake"),
    ({"cascade": {"substitute": "noise"}}, "cascade.substitute", "retain, filtered, nearest"),
    ({"cascade": {"d_steps": 0}}, "cascade.d_steps", ">= 1"),
    ({"cascade": {"ratio": 2}}, "cascade.ratio", "unknown field"),
    ({"unlearn": {"rounds": 0}}, "unlearn.rounds", ">= 1"),
    ({"unlearn": {"stop_every": 0}}, "unlearn.stop_every", ">= 1"),
    ({"unlearn": {"passes": float("nan")}}, "unlearn.passes", ""),
    ({"unlearn": {"passes": 1, "rounds": 5}}, "unlearn.passes", "not both"),
    ({"eval": {"samples": "many"}}, "eval.samples", "expected an integer"),
    ({"retain": {"mode": "full"}}, "retain", "unknown field"),
    ({"family": "i2i"}, "family", "expected 'gan'"),
])
def test_errors_name_the_field(override, path, words):
    with pytest.raises(ConfigError) as e:
        _cfg(**override)
    assert e.value.path == path
    assert words in str(e.value)


def test_experiment_dispatches_on_family():
    c = experiment.parse_config({"family": "gan", "method": "retrain",
                                 "forget_set": {"items": 64}})
    assert isinstance(c, GanTrialConfig) and c.family == "gan"
    cols = c.columns()
    assert cols["family"] == "gan" and cols["generator"] == "dcgan"
    assert cols["setting"] == "item" and cols["forget_k"] == 64
    assert cols["forget_set"] == '{"items": 64, "seed": 0}' and cols["params"] == "{}"
    assert "alpha" not in cols and "task" not in cols  # image-to-image columns stay null
    cols = _cfg(forget_set={"classes": [3, 1]}).columns()
    assert cols["forget_set"] == "[1, 3]" and cols["retain_set"] == "[0, 2, 4, 5, 6, 7, 8, 9]"
    assert '"fake_target": 0.0' in cols["params"]


def test_spec_grid_dedups_methods_that_ignore_cascade_options():
    from sweeps.spec import parse_spec

    spec = parse_spec({"name": "g", "family": "gan", "forget_set": {"classes": [5]},
                       "grid": {"method": ["original", "retrain", "cascade"],
                                "cascade": [{"fake_target": 0.0}, {"fake_target": 0.3}]}})
    assert sorted(t.config.method for t in spec.trials) == ["cascade", "cascade", "original",
                                                            "retrain"]


@pytest.mark.parametrize("name, trials", [("gan_class.yaml", 10 * 3 * 13),
                                          ("gan_item.yaml", 6 * 3 * 9),
                                          ("gan_class_small.yaml", 3 * 13),
                                          ("gan_item_small.yaml", 3 * 2 * 9),
                                          ("gan_class_long.yaml", 2 * 5)])
def test_committed_specs_validate(name, trials):
    from sweeps.spec import load_spec

    spec = load_spec(ROOT / "sweeps" / "specs" / name)
    assert len(spec.trials) == trials
    assert {t.config.family for t in spec.trials} == {"gan"}
