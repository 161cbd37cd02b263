"""The relearning attack: an attacker fine-tunes the unlearned model on a few forgotten images.
It brings a forgotten model's forget metrics back toward the original's, leaves the unlearning's
own accounting alone, changes no existing trial id, and the analysis finds the budget that
recovers half of the gap."""
import copy
import json
import math

import pytest

from analysis.pivot import KEYS, Stat
from analysis.relearn import curves, relearn_table
from l2l import experiment
from l2l.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(tiny, method, relearn=None):
    d = {**tiny, "method": method,
         "eval": {"images_per_class": 60, "mia": False, "retrain_reference": False}}
    if relearn is not None:
        d["relearn"] = relearn
    return experiment.parse_config(d)


def _values(result):
    return {(m.split, m.metric): m.value for m in result.metrics}


def test_the_attack_is_a_config_section_that_changes_no_existing_id(tiny):
    plain = _cfg(tiny, "l2l")
    attacked = _cfg(tiny, "l2l", {"images": 16, "steps": 10})
    assert plain.relearn is None and attacked.relearn.steps == 10
    # unset: neither the identity nor the settings column holds it (ids of earlier sweeps stay)
    assert "relearn" not in json.loads(plain.columns()["settings"])
    settings = json.loads(attacked.columns()["settings"])
    assert settings["relearn.steps"] == 10 and settings["relearn.images"] == 16
    assert len({plain.config_hash, attacked.config_hash,
                _cfg(tiny, "l2l", {"images": 16, "steps": 20}).config_hash}) == 3
    assert experiment.parse_config(attacked.to_dict()) == attacked
    for bad, field in [({"images": 10_000}, "relearn.images"), ({"steps": -1}, "relearn.steps"),
                       ({"lr": 0}, "relearn.lr"), ({"stepz": 1}, "relearn.stepz: unknown field")]:
        with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
            _cfg(tiny, "l2l", bad)


def test_the_attack_brings_forget_metrics_back_toward_the_originals(tiny):
    original = _values(experiment.run(_cfg(tiny, "original")))
    unlearned = experiment.run(_cfg(tiny, "l2l"))
    none = experiment.run(_cfg(tiny, "l2l", {"images": 16, "steps": 0}))
    attacked = experiment.run(_cfg(tiny, "l2l", {"images": 16, "steps": 40}))
    u, a = _values(unlearned), _values(attacked)
    # zero steps: the unlearned model as it was, the same numbers
    assert _values(none) == pytest.approx(u)
    # the unlearning's budget is the unlearning's: the attack's images are not counted
    assert a[("all", "samples_seen")] == u[("all", "samples_seen")]
    # the forget FID comes back more than half of the way to the original's
    gap = original[("forget", "fid")] - u[("forget", "fid")]
    assert gap < 0  # unlearning raised it
    assert (a[("forget", "fid")] - u[("forget", "fid")]) / gap > 0.5


def test_a_gan_can_be_attacked_too(tmp_path):
    from test_gan_methods import SMOKE

    d = {**copy.deepcopy(SMOKE), "cache_dir": str(tmp_path), "method": "cascade",
         "forget_set": {"classes": [3]}}
    plain = experiment.run(experiment.parse_config(d))
    attacked = experiment.run(experiment.parse_config(
        {**d, "relearn": {"images": 16, "steps": 20, "batch_size": 8}}))
    p, a = _values(plain), _values(attacked)
    assert a[("all", "samples_seen")] == p[("all", "samples_seen")]
    assert a[("all", "fid")] != p[("all", "fid")]  # the weights changed


def _rec(method, steps, fid, metric="fid", split="forget", **over):
    keys = {k: None for k in KEYS}
    settings = {"unlearn.steps": 100}
    if steps is not None:
        settings.update({"relearn.steps": steps, "relearn.images": 16, "relearn.lr": 0.001,
                         "relearn.batch_size": 16, "relearn.seed": 0})
    keys.update(family="i2i", dataset="fashion_mnist", task="center_inpaint", mask_ratio=0.5,
                generator="mae", generator_size="tiny", setting="class", forget_set="[5]",
                method=method, alpha=0.25 if method == "l2l" else None,
                settings=json.dumps(settings, sort_keys=True))
    keys.update(over)
    return {**keys, "split": split, "metric": metric, "extractor": "classifier",
            "stat": Stat(fid, 1.0, 3, 1.0), "direction": None}


def test_the_table_gives_the_share_recovered_and_the_half_gap_budget():
    records = [_rec("original", None, 60.0),
               _rec("l2l", 0, 140.0), _rec("l2l", 5, 120.0), _rec("l2l", 20, 90.0),
               _rec("l2l", 50, 70.0),
               _rec("retrain", 0, 130.0), _rec("retrain", 5, 128.0), _rec("retrain", 20, 120.0),
               _rec("retrain", 50, 110.0)]
    found = {c.key[len(("family",) * 8)]: c for c in curves(records)}
    assert set(found) == {"l2l", "retrain"}
    l2l = found["l2l"]
    assert l2l.steps == (0, 5, 20, 50)
    assert l2l.recovered() == pytest.approx([0.0, 0.25, 0.625, 0.875])
    assert l2l.half_budget() == 20 and found["retrain"].half_budget() is None
    table = relearn_table(records)
    text = "\n".join(table.notes)
    assert "half of the gap to the original recovered by 20 steps" in text
    assert "half of the gap not recovered within 50 steps" in text
    assert len(table.rows) == 8 and all(r.reference == (r.labels[0].split()[-1] == "retrain")
                                        for r in table.rows)
    # a sweep without the attack has no such table
    assert relearn_table([_rec("original", None, 60.0), _rec("l2l", None, 140.0)]) is None
    # no gap (the original as bad as the unlearned model): no share, and said so
    flat = relearn_table([_rec("original", None, 140.0), _rec("l2l", 0, 140.0),
                          _rec("l2l", 5, 130.0)])
    assert "no gap to the original" in "\n".join(flat.notes)
    assert all(math.isfinite(s.mean) for s in flat.cells.values())


def test_a_gan_sweeps_table_follows_the_forgotten_class_share_of_its_samples():
    """A GAN's metrics are on its samples as a whole (split `all`); its FID is the retained
    classes' quality, not a forgetting measure, so only the share is followed."""
    gan = {"family": "gan", "task": None, "mask_ratio": None, "generator": "dcgan"}
    records = [_rec(m, s, v, metric, "all", **gan) for m, s, metric, v in [
        ("original", None, "forget_class_share", 0.12), ("original", None, "fid", 31.0),
        ("cascade", 0, "forget_class_share", 0.0), ("cascade", 20, "forget_class_share", 0.03),
        ("cascade", 50, "forget_class_share", 0.09), ("cascade", 0, "fid", 20.0),
        ("cascade", 50, "fid", 300.0)]]
    [found] = curves(records)
    assert found.metric == "forget_class_share" and found.steps == (0, 20, 50)
    assert found.recovered() == pytest.approx([0.0, 0.25, 0.75]) and found.half_budget() == 50
    table = relearn_table(records)
    assert [c.levels for c in table.columns] == [("forget-class share", "all"),
                                                 ("forget-class share", "gap recovered")]
