"""The statistics layer (analysis/stats.py, compare.py, claims.py) on synthetic results with
known truths: intervals cover, planted differences are found and null ones are not, at the
stated error rates, and a claim's verdict follows the data."""
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import AnalysisError, aggregate, load
from analysis.claims import evaluate, load_claims, parse_claims, summary
from analysis.cli import main
from analysis.compare import Side, compare
from analysis.stats import holm, interval, paired
from analysis.synthetic import trial_rows, write_trial
from contract.schema import beside

MU = 20.0


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def _repetitions(reps: int, n: int, seed_sd: float, image_sd: float, rng) -> pd.DataFrame:
    """`reps` cells (one per alpha) of n replicates that share one evaluation draw (seed 0,
    pretraining seeds 0..n-1): value = MU + shared image error + per-original error, each row
    with its image standard error. The truth of every cell is MU."""
    rows = []
    for r in range(reps):
        shared = rng.normal(0, image_sd)  # the same test images for every original
        for p in range(n):
            value = MU + shared + rng.normal(0, seed_sd)
            rows += trial_rows("l2l", 0, {("retain", "fid"): value}, alpha=float(r),
                               pretrain_seed=p, trial_id=f"t{r}-{p}")
            rows[-1]["value_se"] = image_sd
    return _frame(rows)


@pytest.mark.parametrize("n, seed_sd, image_sd", [(5, 1.0, 0.0), (3, 1.0, 0.0), (5, 0.5, 1.0),
                                                  (5, 1.0, 0.5)])
def test_table_intervals_cover_the_true_mean_about_95_percent_of_the_time(n, seed_sd, image_sd):
    """600 cells through the whole table path (DuckDB aggregate, then the interval): the share
    whose interval covers the truth is 95% within the binomial noise of 600 (sd 0.9%)."""
    df = _repetitions(600, n, seed_sd, image_sd, np.random.default_rng(n * 10 + int(image_sd * 4)))
    recs = aggregate(df)
    assert len(recs) == 600 and {r["stat"].n for r in recs} == {n}
    covered = np.mean([r["stat"].lo <= MU <= r["stat"].hi for r in recs])
    assert 0.92 <= covered <= 0.98, covered


def test_leaving_out_the_image_error_would_undercover():
    """Why the image term is there: replicates that share test images share their error, which
    the spread over originals does not show. Without value_se the same cells cover far less."""
    df = _repetitions(600, 5, 0.3, 1.0, np.random.default_rng(7))
    with_se = np.mean([r["stat"].lo <= MU <= r["stat"].hi for r in aggregate(df)])
    without = np.mean([r["stat"].lo <= MU <= r["stat"].hi
                       for r in aggregate(df.assign(value_se=np.nan))])
    assert with_se >= 0.92 and without < 0.6


def test_interval_edge_cases():
    assert math.isnan(interval(3.0, math.nan, 1).half)  # one replicate, nothing else known
    one = interval(3.0, math.nan, 1, image_var=4.0)  # one replicate: the image error alone
    assert one.half == pytest.approx(1.959964 * 2.0, rel=1e-5)
    assert interval(3.0, 0.0, 4).half == 0.0
    assert interval(3.0, 2.0, 4).half == pytest.approx(3.182446 * 2.0 / 2.0, rel=1e-5)
    # two draws of test images halve the shared image variance
    assert interval(0, 0.0, 4, 4.0, draws=2).half < interval(0, 0.0, 4, 4.0).half


def test_a_planted_difference_is_found_and_a_null_one_is_not_at_the_stated_rates():
    """Paired t-tests at 5%: with no difference about 5% of 1,000 experiments reject; with a
    difference of 3 paired standard deviations (n = 5) at least 90% do."""
    rng = np.random.default_rng(3)
    null_p, planted_p = [], []
    for _ in range(1000):
        base = rng.normal(20, 3, 5)  # originals differ a lot; pairing removes it
        a = {(s, 0): v for s, v in enumerate(base)}
        null_p.append(paired(a, {k: v + rng.normal(0, 1) for k, v in a.items()}).p)
        planted_p.append(paired(a, {k: v + 3.0 + rng.normal(0, 1) for k, v in a.items()}).p)
    assert 0.03 <= np.mean(np.array(null_p) < 0.05) <= 0.07
    assert np.mean(np.array(planted_p) < 0.05) >= 0.9


def test_holm_controls_the_family_and_keeps_the_order():
    assert holm([0.01, 0.04, 0.03, math.nan]) == pytest.approx([0.03, 0.06, 0.06, math.nan],
                                                               nan_ok=True)
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    # a family of 10 true nulls: Holm rejects any at 5% in about 5% of families, not 40%
    rng = np.random.default_rng(0)
    any_reject = np.mean([min(holm(rng.uniform(size=10))) < 0.05 for _ in range(2000)])
    assert any_reject <= 0.07


def _sweep(results, effects: dict, n: int = 5, noise: float = 0.5, seed: int = 0,
           generators=("mae", "vqgan")):
    """A sweep with `original` and other methods over n pretraining seeds: `effects` maps a
    (method, ((column, value), ...)) to added values per (split, metric)."""
    rng = np.random.default_rng(seed)
    base = {("forget", "fid"): 30.0, ("retain", "fid"): 20.0, ("forget", "is"): 3.0,
            ("forget", "cosine"): 0.9, ("retain", "cosine"): 0.9}
    for gen in generators:
        for p in range(n):
            orig = {k: v + rng.normal(0, noise * 0.1 * v) for k, v in base.items()}
            write_trial(results, trial_rows("original", 0, orig, generator=gen, pretrain_seed=p,
                                            trial_id=f"{gen}-original-{p}"))
            for (method, extra), delta in effects.items():
                extra = dict(extra)
                values = {k: v + delta.get(k, 0.0) + rng.normal(0, noise * 0.02 * abs(v))
                          for k, v in orig.items()}
                write_trial(results, trial_rows(
                    method, 0, values, generator=gen, pretrain_seed=p, alpha=0.25,
                    trial_id=f"{gen}-{method}-{extra.get('retain_mode', '')}-{p}", **extra))


def test_compare_pairs_by_replicate_and_reads_the_direction(tmp_path):
    r = tmp_path / "results"
    _sweep(r, {("l2l", ()): {("forget", "fid"): 30.0, ("retain", "fid"): 0.0}}, n=5)
    found = compare(load(r), Side.parse("original"), Side.parse("l2l"), metrics=("fid",))
    by = {(c.context["generator"], c.split): c for c in found}
    assert set(by) == {("mae", "forget"), ("mae", "retain"), ("vqgan", "forget"),
                       ("vqgan", "retain")}
    c = by[("mae", "forget")]
    assert c.diff.n == 5 and c.diff.lo > 20 and c.verdict == "B better"  # higher forget FID
    assert c.diff.p_adjusted >= c.diff.p
    assert by[("mae", "retain")].verdict == "no difference found"


def test_claims_hold_fail_or_stay_inconclusive_as_the_planted_data_say(tmp_path):
    forgets = {("forget", "fid"): 40.0, ("forget", "is"): -1.0, ("forget", "cosine"): -0.3}
    good, bad = tmp_path / "good", tmp_path / "bad"
    _sweep(good, {("l2l", (("retain_mode", "full"),)): forgets})
    # the same sweep where the data contradict the claim: l2l lowers forget FID, hurts retain
    _sweep(bad, {("l2l", (("retain_mode", "full"),)): {("forget", "fid"): -10.0,
                                                     ("retain", "fid"): 10.0}})
    claims = [c for c in load_claims() if c.id in ("i2i-forget-fid", "i2i-retain-fid")]
    v_good = summary(evaluate(load(good), claims))
    v_bad = summary(evaluate(load(bad), claims))
    assert v_good["i2i-forget-fid"]["holds"] == 2 and v_good["i2i-retain-fid"]["holds"] == 2
    assert v_bad["i2i-forget-fid"]["fails"] == 2 and v_bad["i2i-retain-fid"]["fails"] == 2


def test_a_claim_without_its_sides_is_not_run_and_says_which(tmp_path):
    r = tmp_path / "results"
    _sweep(r, {}, n=3)
    (v,) = evaluate(load(r), [c for c in load_claims() if c.id == "i2i-max-loss-retain"])
    assert v.verdict == "not run" and "max_loss" in v.reason


def test_too_few_replicates_give_inconclusive_or_not_run(tmp_path):
    r = tmp_path / "results"
    _sweep(r, {("l2l", (("retain_mode", "full"),)): {("forget", "fid"): 40.0}}, n=1)
    verdicts = evaluate(load(r), [c for c in load_claims() if c.id == "i2i-forget-fid"])
    assert {v.verdict for v in verdicts} == {"not run"}


@pytest.mark.parametrize("raw, message", [
    ("[]", "expected a non-empty list"),
    ("- {id: x}", "missing paper"),
    ("- {id: x, paper: p, claim: c, a: original, b: l2l, split: forget, metric: fid, "
     "test: bigger, margin: 1}", "test: 'bigger' is not one of increase"),
    ("- {id: x, paper: p, claim: c, a: original, b: l2l, split: forget, metric: fid, "
     "test: increase, margin: .nan}", "margin: must be a finite number >= 0"),
    ("- {id: x, paper: p, claim: c, a: original, b: 'l2l,colour=red', split: forget, "
     "metric: fid, test: increase, margin: 1}", "'colour=red' is not KEY=VALUE"),
    ("- {id: x, paper: p, claim: c, a: original, b: l2l, split: forget, metric: fid, "
     "test: increase, margin: 1, extra: 2}", "unknown field 'extra'"),
])
def test_bad_claims_are_one_line_errors(raw, message):
    with pytest.raises(AnalysisError, match=message.replace("(", r"\(")):
        parse_claims(yaml.safe_load(raw), "claims")


def test_the_papers_claims_parse_with_distinct_ids():
    claims = load_claims()
    assert len({c.id for c in claims}) == len(claims) >= 10
    assert {c.paper for c in claims} == {"i2i", "gan"}


def test_a_verdict_names_its_request_so_a_sweep_of_several_has_distinct_rows():
    """A GAN sweep of item requests k = 64 ... 2,048 and a class has one verdict per request:
    each row says which (before, every one read "dcgan, fashion_mnist")."""
    from types import SimpleNamespace

    from analysis.claims import Verdict

    claim = next(c for c in load_claims() if c.id == "gan-quality")
    base = {"generator": "dcgan", "dataset": "fashion_mnist", "task": None, "mask_ratio": None}
    labels = [Verdict(claim, SimpleNamespace(context={**base, **ctx}), "holds", 0.1).context
              for ctx in ({"setting": "item", "forget_k": 64,
                           "forget_set": '{"items": 64, "seed": 0}'},
                          {"setting": "item", "forget_k": 2048,
                           "forget_set": '{"items": 2048, "seed": 0}'},
                          {"setting": "class", "forget_k": 1, "forget_set": "[7]"})]
    assert labels == ["dcgan, fashion_mnist, items k=64", "dcgan, fashion_mnist, items k=2048",
                      "dcgan, fashion_mnist, forget [7]"]


def test_cli_claims_and_compare_write_markdown_and_csv(tmp_path, capsys):
    r = tmp_path / "results"
    _sweep(r, {("l2l", (("retain_mode", "full"),)): {("forget", "fid"): 40.0}})
    assert main(["claims", "--results", str(r)]) == 0
    out = capsys.readouterr().out
    assert "| i2i-forget-fid | mae, fashion_mnist, center_inpaint, 0.5, forget [5, 7, 9] |" in out
    assert "**holds**" in out and "not run" in out  # max_loss etc. are not in the sweep
    csv = pd.read_csv(beside(r, "tables") / "claims.csv")
    assert set(csv["verdict"]) <= {"holds", "fails", "inconclusive", "not run"}
    assert main(["compare", "--results", str(r), "--a", "original", "--b", "l2l",
                 "--metrics", "fid", "--split", "forget"]) == 0
    out = capsys.readouterr().out
    assert out.count("| B better |") == 2
    assert (beside(r, "tables") / "compare.csv").exists()
    # bad sides: one line, exit 2, nothing written
    (beside(r, "tables") / "compare.csv").unlink()
    assert main(["compare", "--results", str(r), "--a", "=x", "--b", "l2l"]) == 2
    assert "error: side '=x'" in capsys.readouterr().err
    assert not (beside(r, "tables") / "compare.csv").exists()


def test_the_statistics_import_neither_torch_nor_ray():
    code = ("import sys, analysis.claims, analysis.compare, analysis.stats; "
            "print([m for m in ('torch', 'ray', 'l2l', 'sweeps') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_the_report_carries_the_paired_comparisons_and_the_claims(tmp_path):
    from analysis import open_results
    from analysis.report import build_reports

    r = tmp_path / "results"
    _sweep(r, {("l2l", (("retain_mode", "full"),)): {("forget", "fid"): 40.0},
               ("max_loss", ()): {("retain", "fid"): 15.0}})
    pages = build_reports(open_results(r), r, tmp_path / "report", ["s-a"])
    page = pages[tmp_path / "report" / "s-a.html"]
    comparisons = page.split('id="comparisons"')[1].split("</table>")[0]
    # l2l (B) against max_loss and the original (A), per generator, split and metric
    assert comparisons.count("<tr>") == 1 + 2 * 2 * 5  # header + 2 generators x 2 methods x 5
    assert '<td class="win">B better</td>' in comparisons
    claims = page.split('id="claims"')[1].split("</table>")[0]
    assert '<td class="verdict-holds">holds</td>' in claims and "i2i-max-loss-retain" in claims
    assert "Not testable on this sweep" in page and "gan-quality" in page


def test_settings_without_a_column_of_their_own_are_never_averaged(tmp_path):
    """Two unlearning rates on the same originals: two rows, labelled by the rate, each with
    its own replicates; a side can name the rate."""
    import json

    r = tmp_path / "results"
    for p in range(3):
        for lr, fid in ((0.001, 100.0), (0.0001, 40.0)):
            settings = json.dumps({"unlearn.lr": lr, "pretrain.epochs": 20})
            write_trial(r, trial_rows("l2l", 0, {("forget", "fid"): fid + p}, alpha=0.25,
                                      pretrain_seed=p, settings=settings,
                                      trial_id=f"l2l-{lr}-{p}"))
    recs = [x for x in aggregate(load(r)) if x["metric"] == "fid"]
    assert sorted(x["stat"].mean for x in recs) == [41.0, 101.0]
    from analysis.pivot import all_tables
    t = next(t for t in all_tables(load(r)) if t.name == "i2i_main")
    assert sorted(row.labels[0] for row in t.rows) == ["l2l [unlearn.lr=0.0001]",
                                                       "l2l [unlearn.lr=0.001]"]
    (c,) = compare(load(r), Side.parse("l2l,unlearn.lr=0.001"),
                   Side.parse("l2l,unlearn.lr=0.0001"), metrics=("fid",))
    assert c.a == "l2l,unlearn.lr=0.001" and c.diff.mean == pytest.approx(-60.0)


def test_a_side_can_name_a_method_parameter(tmp_path):
    """`noise_target` lives in the `params` column, not in `settings`: a side that names it
    picks the rows with that value, and a name that is neither is refused."""
    import json

    r = tmp_path / "results"
    for p in range(3):
        for target, fid in (("paper", 21.0), ("whole_image", 53.0)):
            write_trial(r, trial_rows("l2l", 0, {("forget", "fid"): fid + p}, alpha=0.25,
                                      pretrain_seed=p, params=json.dumps({"noise_target": target}),
                                      trial_id=f"l2l-{target}-{p}"))
    (c,) = compare(load(r), Side.parse("l2l,noise_target=paper"),
                   Side.parse("l2l,noise_target=whole_image"), metrics=("fid",))
    assert c.diff.mean == pytest.approx(32.0) and c.diff.n == 3
    with pytest.raises(AnalysisError, match="noise_targt"):
        Side.parse("l2l,noise_targt=paper")


def test_rows_that_did_not_record_their_settings_never_pair_with_rows_that_did(tmp_path):
    """A schema-4 original (settings unknown) is not paired with a schema-5 control: nothing
    shows they share an original model. Rows of one kind pair as before."""
    import json

    r = tmp_path / "results"
    new = json.dumps({"pretrain.epochs": 24, "unlearn.lr": 0.001})
    for p in range(3):
        write_trial(r, trial_rows("original", 0, {("retain", "fid"): 20.0 + p}, pretrain_seed=p,
                                  trial_id=f"old-o-{p}", settings="{}"))
        write_trial(r, trial_rows("finetune_retain", 0, {("retain", "fid"): 18.0 + p},
                                  pretrain_seed=p, trial_id=f"old-f-{p}", settings="{}"))
        write_trial(r, trial_rows("finetune_retain", 0, {("retain", "fid"): 5.0 + p},
                                  pretrain_seed=p, trial_id=f"new-f-{p}", settings=new))
    found = compare(load(r), Side.parse("original"), Side.parse("finetune_retain"),
                    metrics=("fid",))
    assert [c.diff.mean for c in found] == [pytest.approx(-2.0)]  # old with old only
