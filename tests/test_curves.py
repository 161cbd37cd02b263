"""Forgetting over time (`eval.every`): a trial measures its forgetting curve along the way
without changing how it unlearns or what it reports at the end; the curve's rows are ordered,
end at the final metrics, and reach the tables, the figure and the report."""
import copy
import json

import pytest

from l2l import experiment

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(tiny, steps, every=None, seed=0):
    d = {**tiny, "method": "l2l", "alpha": 0.25, "seed": seed,
         "unlearn": {**tiny["unlearn"], "steps": steps},
         "eval": {"images_per_class": 30, "mia": False, "retrain_reference": False}}
    if every is not None:
        d["eval"]["every"] = every
    return experiment.parse_config(d)


def _final(result):
    return {(m.split, m.metric): m.value for m in result.metrics}


@pytest.fixture(scope="module")
def runs(cache_dir):
    """Two 10-step runs with a curve every 5 steps (two seeds), one without, one of 5 steps."""
    from conftest import TINY

    tiny = {**copy.deepcopy(TINY), "cache_dir": str(cache_dir)}
    curved = [experiment.run(_cfg(tiny, 10, every=5, seed=s)) for s in (0, 1)]
    return {"curved": curved, "plain": experiment.run(_cfg(tiny, 10)),
            "short": experiment.run(_cfg(tiny, 5))}


def test_the_curve_is_measured_without_changing_the_trial(runs):
    curved, plain, short = runs["curved"][0], runs["plain"], runs["short"]
    steps = sorted({m.step for m in curved.curve})
    assert steps == [0, 5]  # before the first step and after the 5th; the 10th is the final
    seen = {m.step: m.value for m in curved.curve if m.metric == "samples_seen"}
    assert seen == {0: 0.0, 5: 5 * 2 * 64}  # a forget and a retain batch of 64 a step
    # the same unlearning and the same final metrics as without the curve
    assert _final(curved) == _final(plain)
    # step 5's values are those a 5-step trial ends with (the same measurement as the final)
    at5 = {(m.split, m.metric): m.value for m in curved.curve if m.step == 5}
    assert at5 == {k: v for k, v in _final(short).items() if k in at5}
    assert {("forget", "fid"), ("retain", "fid"), ("forget", "cosine")} <= set(at5)
    # l2l forgets along the way: forget FID rises from the original's
    start = {(m.split, m.metric): m.value for m in curved.curve if m.step == 0}
    assert at5[("forget", "fid")] > start[("forget", "fid")]
    # rows: final ones with a null step, the curve's with theirs
    rows = curved.rows()
    assert {r["step"] for r in rows} == {None, 0, 5}
    assert sum(r["step"] is None for r in rows) == len(curved.metrics)


def test_eval_every_is_a_field_of_both_families_that_changes_no_existing_id(tiny):
    from l2l.errors import ConfigError

    plain, curved = _cfg(tiny, 10), _cfg(tiny, 10, every=5)
    assert "eval.every" not in json.loads(plain.columns()["settings"])
    assert json.loads(curved.columns()["settings"])["eval.every"] == 5
    assert plain.config_hash != curved.config_hash
    assert experiment.parse_config(curved.to_dict()) == curved
    for bad in (0, -3, 2.5, "5", True):
        with pytest.raises(ConfigError, match=r"eval\.every"):
            _cfg(tiny, 10, every=bad)


def test_a_gan_curve_shares_the_stopping_rules_measurements(tmp_path):
    """The GAN's curve and its stopping rule run on one monitor: with both, the rounds stop
    where the rule says, and the curve is measured up to there."""
    from test_gan_methods import SMOKE

    base = {**copy.deepcopy(SMOKE), "cache_dir": str(tmp_path), "method": "cascade",
            "forget_set": {"classes": [3]}}
    base["unlearn"] = {**base["unlearn"], "rounds": 4}
    plain = experiment.run(experiment.parse_config(base))
    curved = experiment.run(experiment.parse_config(
        {**base, "eval": {**base["eval"], "every": 1}}))
    assert sorted({m.step for m in curved.curve}) == [0, 1, 2, 3]
    assert {m.metric for m in curved.curve} >= {"fid", "forget_class_share", "samples_seen"}
    assert "downstream_accuracy" not in {m.metric for m in curved.curve}  # a training run
    assert _final(curved) == _final(plain)
    # with the stopping rule too (checks every 2 rounds): the curve stops where the rounds do
    both = experiment.run(experiment.parse_config(
        {**base, "eval": {**base["eval"], "every": 1},
         "unlearn": {**base["unlearn"], "stop_every": 2}}))
    run = int(_final(both)[("all", "rounds_run")])
    assert max(m.step for m in both.curve) == run - 1


def _results(tmp_path, results):
    from contract.schema import trial_path, write_rows

    for i, r in enumerate(results):
        meta = {"trial_id": f"t{i}", "status": "ok", "schema_version": 8,
                "created_at": None, "artifact_dir": None}
        write_rows(trial_path(tmp_path / "results", "curve", f"t{i}"),
                   [{**row, **meta} for row in r.rows()])
    return tmp_path / "results"


def test_the_curves_are_ordered_end_at_the_final_metrics_and_reach_table_and_report(
        runs, tmp_path):
    from analysis.curves import curve_figure, curve_records, curve_table
    from analysis.load import open_results
    from analysis.pivot import aggregate, all_tables
    from analysis.report import build_reports

    root = _results(tmp_path, [*runs["curved"], runs["plain"]])
    res = open_results(root)
    # the tables' view holds final metrics only: each seed counts once in a cell
    assert {r["stat"].n for r in aggregate(res)} <= {1, 2}
    found = curve_records(res)
    fid = next(c for c in found if (c.split, c.metric) == ("forget", "fid"))
    assert fid.steps == (0, 5, None) and list(fid.seen) == sorted(fid.seen)
    assert fid.stats[0].n == 2  # both seeds at every point
    finals = [_final(r)[("forget", "fid")] for r in runs["curved"]]
    assert fid.stats[-1].mean == pytest.approx(sum(finals) / 2)  # ends at the final metrics
    table = curve_table(found)
    assert [r.labels[1] for r in table.rows] == ["0", "5", "final"]
    assert "curves" in {t.name for t in all_tables(res)}
    assert curve_figure(found).png[:4] == b"\x89PNG"
    pages = build_reports(res, root, tmp_path / "report", ["curve"])
    page = next(html for path, html in pages.items() if path.name != "index.html")
    assert 'id="section-curves"' in page and "Forgetting over time" in page


def test_the_sweep_worker_gives_mlflow_the_curve_by_images_seen(runs):
    from sweeps.worker import curve_points

    curved = runs["curved"][0]
    points = curve_points(curved)
    assert [seen for seen, _ in points] == [0, 640, 1280]
    assert points[-1][1]["forget_fid"] == _final(curved)[("forget", "fid")]
    assert curve_points(runs["plain"]) == ()
