"""Trade-off fronts: every reported front point is non-dominated, every dominated setting is
left out, and a Pareto search is a spec of its own (several objectives, no ASHA)."""
import json
import random

import pytest

from analysis.front import front_table, points
from analysis.pivot import KEYS, Stat
from contract.pareto import dominates, front
from sweeps.spec import SpecError, parse_spec


def test_the_front_is_exactly_the_non_dominated_points():
    rng = random.Random(0)
    for _ in range(200):
        pts = [[rng.randint(0, 6), rng.randint(0, 6)] for _ in range(rng.randint(1, 12))]
        best = front(pts)
        for i in best:  # nothing beats a front point
            assert not any(dominates(q, pts[i]) for q in pts)
        for i in set(range(len(pts))) - set(best):  # something beats every other point
            assert any(dominates(q, pts[i]) for q in pts)
    assert front([[1.0, float("nan")], [0.0, 0.0]]) == [1]


def _rec(alpha, split, metric, mean, method="l2l", noise=None, **settings):
    keys = {k: None for k in KEYS}
    keys.update(family="i2i", dataset="fashion_mnist", task="center_inpaint", mask_ratio=0.5,
                generator="mae", generator_size="tiny", setting="class", forget_set="[5]",
                method=method, alpha=alpha, params="{}", noise=noise,
                settings=json.dumps({"unlearn.lr": 0.001, **settings}))
    return {**keys, "split": split, "metric": metric, "extractor": "classifier",
            "stat": Stat(mean, 1.0, 2, 1.0), "direction": None}


def test_the_table_lists_a_methods_front_settings_only():
    # (alpha, forget FID: more is more forgetting, retain FID: more is more damage)
    settings = [(0.01, 70, 30), (0.1, 120, 31), (0.25, 150, 33), (1.0, 150, 40),
                (2.0, 140, 45), (5.0, 200, 90)]
    records = [r for a, f, d in settings
               for r in (_rec(a, "forget", "fid", f), _rec(a, "retain", "fid", d))]
    pts = points(records)
    assert {p.label for p in pts if p.on_front} == {"alpha=0.01", "alpha=0.1", "alpha=0.25",
                                                    "alpha=5"}
    for p in (p for p in pts if p.on_front):
        assert not any(q.forget.mean >= p.forget.mean and q.damage.mean <= p.damage.mean
                       and (q.forget.mean, q.damage.mean) != (p.forget.mean, p.damage.mean)
                       for q in pts)
    table = front_table(records)
    assert [r.labels[1] for r in table.rows] == ["alpha=5", "alpha=0.25", "alpha=0.1",
                                                 "alpha=0.01"]  # most forgetting first
    assert "l2l: 4 of 6 settings on the front" in "\n".join(table.notes)
    # two settings make no front
    assert front_table(records[:4]) is None


def test_conditions_are_not_settings_of_a_front():
    """Rows that differ in a condition (an attack budget, the evaluation task, the original's
    pretraining) are not a method's settings: such a sweep has no front, whatever its methods
    (and methods with and without a noise column sort together)."""
    attacked = [r for steps, f in ((0, 150), (5, 120), (20, 90), (50, 70))
                for m, noise in (("l2l", "normal"), ("retrain", None))
                for r in (_rec(0.25 if m == "l2l" else None, "forget", "fid", f, m, noise,
                               **{"relearn.steps": steps}),
                          _rec(0.25 if m == "l2l" else None, "retain", "fid", 30, m, noise,
                               **{"relearn.steps": steps}))]
    assert points(attacked) == [] and front_table(attacked) is None
    tasks = [r for kind, f in (("outpaint", 300), ("random", 90), ("center_inpaint", 10))
             for r in (_rec(0.25, "forget", "fid", f, **{"eval.task.kind": kind}),
                       _rec(0.25, "retain", "fid", 30, **{"eval.task.kind": kind}))]
    assert front_table(tasks) is None
    # knobs of two methods, one with a noise column and one without: both fronts, in order
    both = [r for m, noise in (("l2l", "normal"), ("noisy_label", None))
            for a, f, d in ((0.1, 120, 31), (0.25, 150, 33), (1.0, 140, 40))
            for r in (_rec(a, "forget", "fid", f, m, noise), _rec(a, "retain", "fid", d, m, noise))]
    assert [p.method for p in points(both)] == ["noisy_label"] * 3 + ["l2l"] * 3


def test_sampled_method_parameters_label_the_settings():
    """A GAN cascade's sampled options live in `params`: each label names the ones that vary,
    shortened, not the raw JSON."""
    recs = []
    for fake, rounds, share, fid in ((0.48183138, 269, 0.014, 14.5),
                                     (0.2280751, 235, 0.004, 19.6),
                                     (0.0355180, 279, 0.002, 24.6)):
        params = json.dumps({"d_steps": 1, "fake_target": fake, "rounds": rounds})
        for metric, v in (("forget_class_share", share), ("fid", fid)):
            r = _rec(None, "all", metric, v, method="cascade")
            recs.append({**r, "family": "gan", "generator": "dcgan", "task": None,
                         "mask_ratio": None, "params": params})
    labels = [p.label for p in points(recs)]  # most forgetting (the lowest share) first
    assert labels == ["fake_target=0.03552, rounds=279", "fake_target=0.2281, rounds=235",
                      "fake_target=0.4818, rounds=269"]


SEARCH = """
name: p
method: l2l
forget_set: {classes: [5]}
generator: {name: mae, size: tiny}
eval: {split: validation}
search:
  num_samples: 4
  mode: pareto
  metric: {forget: {fid: 1.0}, retain: {fid: -1.0}}
  space: {alpha: {loguniform: [0.01, 1.0]}}
"""


def test_a_pareto_search_spec_and_what_it_refuses():
    import yaml

    spec = parse_spec(yaml.safe_load(SEARCH))
    assert spec.search.mode == "pareto"
    assert spec.search.pareto_metrics() == (["mean_forget_fid", "mean_retain_fid"],
                                            ["max", "min"])
    assert "Pareto front: maximise forget_fid, minimise retain_fid" in \
        spec.search.objective_text()
    for change, error in [
            ({"metric": {"forget": {"fid": 1.0}}}, "needs two or more metrics"),
            ({"asha": {"grace_period": 1, "reduction_factor": 2}}, "not with mode pareto"),
            ({"metric": {"forget": {"fid": 1.0, "mia_auc": 1.0}}}, "best at a target value"),
            ({"mode": "pareto2"}, "allowed: max, min, pareto")]:
        raw = yaml.safe_load(SEARCH)
        raw["search"].update(change)
        if "asha" in change:
            raw["grid"] = {"seed": [0, 1]}
        with pytest.raises(SpecError, match=error):
            parse_spec(raw)


def test_the_summary_of_a_pareto_search_names_the_points_on_its_front(capsys, tmp_path):
    from types import SimpleNamespace as NS

    import yaml

    from sweeps.progress import print_summary
    from sweeps.sweepfile import SweepSettings

    spec = parse_spec(yaml.safe_load(SEARCH))

    def res(alpha, forget, retain, tid):
        return NS(error=None, config={"point": {"alpha": alpha}},
                  metrics={"objective": forget - retain, "seeds_done": 1, "trial_ids": [tid],
                           "mean_forget_fid": forget, "mean_retain_fid": retain})

    results = [res(0.1, 100.0, 30.0, "p000-a"), res(0.5, 150.0, 35.0, "p001-b"),
               res(0.2, 90.0, 40.0, "p002-c")]
    settings = SweepSettings(results_dir=str(tmp_path / "r"), storage_dir=str(tmp_path / "s"),
                             mlflow_uri=None, artifact_dir=None, sweep_id="x",
                             code_version="c", experiment="e")
    print_summary(results, [NS(status="TERMINATED")] * 3, 3, spec, settings)
    out = capsys.readouterr().out
    assert "Pareto front: 2 of 3 points" in out
    lines = [ln for ln in out.splitlines() if ln.startswith("  alpha=")]
    assert lines == ["  alpha=0.5: forget_fid 150, retain_fid 35 (p001-b)",
                     "  alpha=0.1: forget_fid 100, retain_fid 30 (p000-a)"]
