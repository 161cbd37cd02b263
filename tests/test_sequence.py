"""Deletion requests in sequence (`earlier_requests`): forgetting A then B on the same model
leaves both forgotten, each request starts from the model its predecessor left (unlearned
once, then cached), and the trial compares with forgetting both at once on the same images."""
import copy
import json

import pytest

from l2l import experiment
from l2l.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")
A, B = [5], [7]


def _cfg(tiny, forget, earlier=None, method="l2l"):
    d = {**tiny, "method": method, "forget_set": {"classes": forget},
         "unlearn": {**tiny["unlearn"], "steps": 30},
         "eval": {"images_per_class": 40, "mia": False, "retrain_reference": False}}
    if method == "l2l":
        d["alpha"] = 0.25
    if earlier is not None:
        d["earlier_requests"] = earlier
    return experiment.parse_config(d)


def _forget_fid(result):
    return next(m.value for m in result.metrics if (m.split, m.metric) == ("forget", "fid"))


def test_requests_are_a_field_that_changes_no_existing_id_and_refuses_what_cannot_be(tiny):
    once = _cfg(tiny, A + B)
    seq = _cfg(tiny, A + B, [A])
    assert once.earlier_requests is None and "earlier_requests" not in once.columns()["settings"]
    assert json.loads(seq.columns()["settings"])["earlier_requests"] == [A]
    assert seq.config_hash != once.config_hash and seq.own_request == tuple(B)
    assert experiment.parse_config(seq.to_dict()) == seq
    prev = _cfg(tiny, A + B + [9], [A, B]).previous_request()
    assert prev.forget_classes == (5, 7) and prev.earlier_requests == (tuple(A),)
    assert prev.previous_request().forget_classes == (5,)
    for earlier, method, match in [([[9]], "l2l", r"\[0\]: classes \[9\] are not in"),
                                   ([A, A], "l2l", r"\[1\]: classes \[5\] are already"),
                                   ([A, B], "l2l", ": the earlier requests take the whole"),
                                   ([A], "retrain", ": is for unlearning methods"),
                                   ([[]], "l2l", r"\[0\]: expected a non-empty list"),
                                   ("5", "l2l", ": expected a non-empty list of requests")]:
        with pytest.raises(ConfigError, match="earlier_requests" + match):
            _cfg(tiny, A + B, earlier, method)


def test_after_a_then_b_both_a_and_b_are_forgotten(tiny, tmp_path):
    from l2l.stored_model import reevaluate

    seq = experiment.run(_cfg(tiny, A + B, [A]), model_store=str(tmp_path / "models"))
    assert seq.caches["generator"]["hit"] is False  # the model after A: unlearned now
    # its own request's budget: B's 30 steps, not A's
    seen = next(m.value for m in seq.metrics if m.metric == "samples_seen")
    assert seen == 30 * 2 * 64
    for request in (A, B):
        original = _forget_fid(experiment.run(_cfg(tiny, request, method="original")))
        after = _forget_fid(reevaluate(seq.artifacts["model"],
                                       {"forget_set": {"classes": request},
                                        "earlier_requests": None}))
        assert after > 1.3 * original, (request, original, after)
    # the same request again starts from the cached model after A: the same numbers
    again = experiment.run(_cfg(tiny, A + B, [A]))
    assert again.caches["generator"]["hit"] is True
    assert _forget_fid(again) == pytest.approx(_forget_fid(seq))
    # forgetting A and B at once is evaluated on the same images (its rows compare directly)
    once = experiment.run(_cfg(tiny, A + B))
    n = {m.split: m.n for m in seq.metrics if m.metric == "fid"}
    assert n == {m.split: m.n for m in once.metrics if m.metric == "fid"}


def _rec(method, forget, earlier, split, metric, value):
    from analysis.pivot import KEYS, Stat

    settings = {"unlearn.steps": 100, **({"earlier_requests": earlier} if earlier else {})}
    keys = {k: None for k in KEYS}
    keys.update(family="i2i", dataset="fashion_mnist", task="center_inpaint", mask_ratio=0.5,
                generator="mae", generator_size="tiny", setting="class", retain="full",
                noise="normal" if method == "l2l" else None, forget_set=json.dumps(forget),
                method=method, alpha=0.25 if method == "l2l" else None, params="{}",
                settings=json.dumps(settings, sort_keys=True))
    return {**keys, "split": split, "metric": metric, "extractor": None,
            "stat": Stat(value, 1.0, 3, 1.0), "direction": None}


def test_the_table_lists_each_request_with_its_running_cost_then_at_once_and_retrain():
    from analysis.sequence import sequence_table

    trials = [("l2l", [5], None, 120.0, 6400), ("l2l", [5, 7], [[5]], 130.0, 6400),
              ("l2l", [5, 7, 9], [[5], [7]], 146.0, 6400), ("l2l", [5, 7, 9], None, 131.0, 6400),
              ("retrain", [5, 7, 9], None, 150.0, 40000), ("original", [5, 7, 9], None, 66.0, 0)]
    records = [r for m, f, e, fid, seen in trials for r in (
        _rec(m, f, e, "forget", "fid", fid), _rec(m, f, e, "all", "samples_seen", seen))]
    table = sequence_table(records)
    assert [r.labels[1] for r in table.rows] == ["1: +[5]", "2: +[7]", "3: +[9]",
                                                  "at once [5, 7, 9]", "retrain without [5, 7, 9]"]
    fid = next(j for j, c in enumerate(table.columns) if c.key == ("forget", "fid"))
    assert [table.cells[(i, fid)].mean for i in range(5)] == [120.0, 130.0, 146.0, 131.0, 150.0]
    assert [table.cells[(i, 1)].mean for i in range(4)] == [6400, 12800, 19200, 6400]
    assert table.rows[-1].reference
    assert sequence_table([r for r in records if "earlier_requests" not in r["settings"]]) is None


def test_a_compare_side_names_a_top_level_setting_with_a_list_value():
    from analysis.compare import Side

    side = Side.parse("l2l,earlier_requests=[[5], [7]],alpha=0.25")
    assert side.where == (("earlier_requests", "[[5], [7]]"), ("alpha", "0.25"))


def test_a_gan_after_a_then_b_leaves_both_forgotten(tmp_path):
    """The GAN family's requests in sequence: digit 3, then digit 5, on test_gan_effect's
    DIGITS GAN (the cascade drives a class's share from about 0.1 to retrain's level)."""
    from l2l.gan.config import GanTrialConfig
    from l2l.stored_model import reevaluate
    from test_gan_effect import DIGITS

    def cfg(forget, earlier=None, method="cascade"):
        d = {**copy.deepcopy(DIGITS), "method": method, "forget_set": {"classes": forget},
             "cache_dir": str(tmp_path / "cache"),
             "eval": {**DIGITS["eval"], "samples": 500, "downstream_epochs": 0}}
        if earlier is not None:
            d["earlier_requests"] = earlier
        return GanTrialConfig.from_dict(d)

    def share(result):
        return next(m.value for m in result.metrics if m.metric == "forget_class_share")

    with pytest.raises(ConfigError, match=r"earlier_requests: is for setting 'class'"):
        GanTrialConfig.from_dict({**DIGITS, "method": "cascade", "setting": "item",
                                  "forget_set": {"items": 20}, "earlier_requests": [[3]]})
    seq_cfg = cfg([3, 5], [[3]])
    assert seq_cfg.previous_request() == cfg([3])
    seq = experiment.run(seq_cfg, model_store=str(tmp_path / "models"))
    assert seq.caches["generator"]["hit"] is False  # the GAN after digit 3: unlearned now
    once = experiment.run(cfg([3, 5]))
    assert {m.metric: m.n for m in seq.metrics} == {m.metric: m.n for m in once.metrics}
    for request in ([3], [5]):
        original = share(experiment.run(cfg(request, method="original")))
        after = share(reevaluate(seq.artifacts["model"],
                                 {"forget_set": {"classes": request}, "earlier_requests": None}))
        assert after < 0.3 * original, (request, original, after)
    again = experiment.run(seq_cfg)  # starts from the cached GAN after digit 3
    assert again.caches["generator"]["hit"] is True and share(again) == share(seq)
