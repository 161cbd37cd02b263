"""Table cells, bolding and missing cells of every table, in every format, on synthetic result
files whose means and standard deviations are known."""

import csv
import io
import math
import re
import statistics

import pandas as pd
import pytest

from analysis import OldSchemaWarning, aggregate, all_tables, load, speedup_records
from analysis.load import as_results
from analysis.render import to_csv, to_html, to_latex, to_markdown
from analysis.synthetic import trial_rows, write_trial

# retain FID of l2l and max_loss differ in the 4th decimal only: both print as 12.34
L2L_RETAIN_FID = [12.3312, 12.3412, 12.3512]      # mean 12.3412, std 0.01
MAXLOSS_RETAIN_FID = [12.3336, 12.3436, 12.3536]  # mean 12.3436, std 0.01
L2L_FORGET_FID = [100.0, 110.0, 120.0]            # mean 110, std 10
MAXLOSS_FORGET_FID = [200.0, 220.0, 240.0]        # mean 220, std 20
L2L_COSINE = [0.9, 0.8, 0.7]                      # mean 0.8, std 0.1


def by_name(tables):
    return {t.name: t for t in tables}


def cell(table, row_label, header):
    """(text of the Markdown cell, bold?) for a row label and a column header."""
    r = next(i for i, row in enumerate(table.rows) if row.labels[0] == row_label)
    c = next(i for i, col in enumerate(table.columns) if col.header == header)
    return table.cells.get((r, c)), (r, c) in table.best()


@pytest.fixture
def i2i(tmp_path):
    r = tmp_path / "results"
    for seed in range(3):
        write_trial(r, trial_rows("l2l", seed, {
            ("retain", "fid"): L2L_RETAIN_FID[seed], ("forget", "fid"): L2L_FORGET_FID[seed],
            ("retain", "cosine"): L2L_COSINE[seed]}, alpha=0.25))
        write_trial(r, trial_rows("max_loss", seed, {
            ("retain", "fid"): MAXLOSS_RETAIN_FID[seed],
            ("forget", "fid"): MAXLOSS_FORGET_FID[seed]}, alpha=0.25))
        write_trial(r, trial_rows("l2l", seed, {("retain", "fid"): 40.0 + seed,
                                                ("forget", "fid"): 90.0},
                                  alpha=0.25, generator="vqgan"))
    # the original: best retain FID, but a reference, never bold
    write_trial(r, trial_rows("original", 0, {("retain", "fid"): 5.0, ("forget", "fid"): 6.0}))
    write_trial(r, trial_rows("l2l", 9, {}, alpha=0.25, status="error"))
    return r


def test_main_table_layout_cells_bold_and_missing(i2i):
    t = by_name(all_tables(load(i2i)))["i2i_main"]
    assert [c.header for c in t.columns] == [  # paper order: VQ-GAN before MAE; retain first
        "VQ-GAN retain FID (classifier) ↓", "VQ-GAN forget FID (classifier) ↑",
        "MAE retain FID (classifier) ↓", "MAE retain cos (classifier) ↑",
        "MAE forget FID (classifier) ↑"]
    assert [r.labels[0] for r in t.rows] == ["original", "max_loss", "l2l"]
    assert t.row_header == ("method",)

    stat, bold = cell(t, "l2l", "MAE retain FID (classifier) ↓")
    assert stat.mean == pytest.approx(statistics.fmean(L2L_RETAIN_FID), abs=1e-12)
    assert stat.std == pytest.approx(0.01) and stat.n == 3 and bold
    stat, bold = cell(t, "max_loss", "MAE retain FID (classifier) ↓")
    assert stat.mean == pytest.approx(12.3436) and not bold  # same text, worse unrounded mean
    # the original is a reference: best but not bold
    assert cell(t, "original", "MAE retain FID (classifier) ↓")[1] is False
    assert cell(t, "max_loss", "MAE forget FID (classifier) ↑")[1] is True  # higher is better
    assert cell(t, "l2l", "VQ-GAN retain FID (classifier) ↓")[1] is False  # a single competitor
    assert cell(t, "max_loss", "VQ-GAN retain FID (classifier) ↓")[0] is None  # never run

    md = to_markdown(t)
    # ± half the 95% interval: t(0.975, df 2) x std / sqrt(3) = 2.484 x std
    assert ("| l2l | 41.00 ± 2.48 (n=3) | 90.00 ± 0.00 (n=3) | **12.34 ± 0.02** (n=3) | "
            "0.8000 ± 0.2484 (n=3) | 110.00 ± 24.84 (n=3) |") in md
    assert ("| max_loss | – | – | 12.34 ± 0.02 (n=3) | – | **220.00 ± 49.68** (n=3) |") in md
    assert "| original | – | – | 5.00 (n=1) | – | 6.00 (n=1) |" in md
    assert md.count("**") == 4  # two bold cells
    cells = [c.strip() for line in md.splitlines() if line.startswith("| ")
             for c in line.split("|")[1:-1]]
    assert cells.count("–") == 6 and not any(re.fullmatch(r"0(\.0+)?", c) for c in cells)


def test_error_trials_are_excluded(i2i):
    rows = load(i2i)
    assert (rows["status"] == "error").sum() == 1
    t = by_name(all_tables(rows))["i2i_main"]
    # seed 9 failed: not a replicate
    assert cell(t, "l2l", "MAE retain FID (classifier) ↓")[0].n == 3


def test_latex_booktabs(i2i):
    t = by_name(all_tables(load(i2i)))["i2i_main"]
    tex = to_latex(t)
    lines = tex.splitlines()
    order = [lines.index(x) for x in (r"\toprule", r"\midrule", r"\bottomrule")]
    assert order == sorted(order)
    assert r"\begin{tabular}{@{}lrrrrr@{}}" in tex
    assert r"\multicolumn{2}{c}{VQ-GAN} & \multicolumn{3}{c}{MAE} \\" in tex
    assert r"\cmidrule(lr){2-3}\cmidrule(lr){4-6}" in tex
    assert r"\multicolumn{1}{c}{retain} & \multicolumn{1}{c}{forget} & " \
           r"\multicolumn{2}{c}{retain} & \multicolumn{1}{c}{forget} \\" in tex
    assert r"method & FID (classifier) $\downarrow$ & FID (classifier) $\uparrow$ & " \
           r"FID (classifier) $\downarrow$ & cos (classifier) $\uparrow$ & " \
           r"FID (classifier) $\uparrow$ \\" in tex
    assert tex.count(r"\mathbf{") == 2
    assert r"$\mathbf{12.34 \pm 0.02}$~{\scriptsize (n=3)}" in tex
    assert r"$12.34 \pm 0.02$~{\scriptsize (n=3)}" in tex  # max_loss, not bold
    body = lines[lines.index(r"\midrule") + 1:lines.index(r"\bottomrule")]
    assert all(line.count(" & ") == 5 and line.endswith(r"\\") for line in body)
    assert "original & -- & -- & " in tex  # missing cells
    assert "\\label{tab:i2i_main}" in tex and "needs \\usepackage{booktabs}" in tex


def test_csv_numbers_unrounded_and_missing_empty(i2i):
    t = by_name(all_tables(load(i2i)))["i2i_main"]
    df = pd.read_csv(io.StringIO(to_csv(t)))
    vq = "VQ-GAN retain FID (classifier) ↓"
    assert list(df.columns[:7]) == ["method", *(f"{vq} {part}" for part in (
        "mean", "std", "n", "lo", "hi", "best"))]
    df = df.set_index("method")
    col = "MAE retain FID (classifier) ↓"
    assert df[f"{col} mean"].dtype == float and df[f"{col} std"].dtype == float
    assert df.loc["l2l", f"{col} mean"] == pytest.approx(12.3412, abs=1e-12)
    assert df.loc["max_loss", f"{col} mean"] == pytest.approx(12.3436, abs=1e-12)
    assert df.loc["l2l", f"{col} n"] == 3
    half = 4.302652729911275 * 0.01 / 3 ** 0.5  # t(0.975, 2) x std / sqrt(n)
    assert df.loc["l2l", f"{col} lo"] == pytest.approx(12.3412 - half, abs=1e-9)
    assert df.loc["l2l", f"{col} hi"] == pytest.approx(12.3412 + half, abs=1e-9)
    assert bool(df.loc["l2l", f"{col} best"]) and not bool(df.loc["max_loss", f"{col} best"])
    assert math.isnan(df.loc["original", f"{col} std"])  # one seed: no std, not 0
    assert df["VQ-GAN retain FID (classifier) ↓ mean"].isna().tolist() == [True, True, False]
    raw = list(csv.reader(io.StringIO(to_csv(t))))
    assert raw[2][1:5] == ["", "", "", ""]  # max_loss on VQ-GAN: empty, never 0


def test_html_matches_markdown(i2i):
    t = by_name(all_tables(load(i2i)))["i2i_main"]
    page = to_html(t)
    assert page.count("<strong>") == 2
    assert "<strong>12.34 ± 0.02</strong>" in page and "<strong>220.00 ± 49.68</strong>" in page
    assert page.count('class="missing"') == 6
    assert 'colspan="2" scope="colgroup">VQ-GAN' in page


def test_metrics_table_groups_generators_and_drops_empty_columns(i2i):
    t = by_name(all_tables(load(i2i)))["i2i_metrics"]
    assert [g for g, _ in t.groups()] == ["VQ-GAN", "MAE"]
    md = to_markdown(t)
    vq = md.split("**VQ-GAN**")[1].split("**MAE**")[0]
    assert "cos (classifier)" not in vq  # VQ-GAN has no cosine: the column is left out there


def test_the_i2i_budget_is_a_column_of_the_metrics_table_only(tmp_path):
    """`samples_seen` (split `all`, once a trial) next to the per-split metrics."""
    r = tmp_path / "results"
    for method, seen in (("original", 0), ("max_loss", 12800), ("l2l", 12800)):
        write_trial(r, trial_rows(method, 0, {("retain", "fid"): 1.0, ("forget", "fid"): 2.0,
                                              ("all", "samples_seen"): seen}, alpha=0.25))
    tables = by_name(all_tables(load(r)))
    assert not any("samples" in c.header for c in tables["i2i_main"].columns)
    t = tables["i2i_metrics"]
    assert [c.header for c in t.columns][-1] == "all samples seen ↓"
    assert cell(t, "original", "all samples seen ↓")[0].mean == 0
    assert cell(t, "l2l", "all samples seen ↓") == (cell(t, "max_loss", "all samples seen ↓")[0],
                                                    False)  # the same budget: none is best


def test_ablations_appear_only_when_varied(tmp_path):
    r = tmp_path / "results"
    proxy = dict(retain_mode="proxy", retain_fraction=0.0, proxy_source="digits", proxy_size=1.0)
    for seed in (0, 1):
        for alpha, fid in ((0.1, 50.0), (0.5, 80.0)):
            write_trial(r, trial_rows("l2l", seed, {("forget", "fid"): fid + seed,
                                                    ("retain", "fid"): 10.0}, alpha=alpha))
        write_trial(r, trial_rows("l2l", seed, {("forget", "fid"): 70.0, ("retain", "fid"): 9.0},
                                  alpha=0.1, trial_id=f"proxy{seed}", **proxy))
        for forget, k in (("[1]", 1), ("[1, 2]", 2)):
            write_trial(r, trial_rows("original", seed, {("forget", "fid"): 5.0 * k},
                                      forget_set=forget, forget_k=k, trial_id=f"o{k}{seed}"))
    tables = by_name(all_tables(load(r)))
    assert set(tables) == {"i2i_main", "i2i_metrics", "i2i_alpha", "i2i_retain", "i2i_forget"}

    alpha = tables["i2i_alpha"]
    assert alpha.row_header == ("method", "alpha")
    labels = [r.labels for r in alpha.rows]
    assert ("l2l [retain=full]", "0.1") in labels and ("l2l [retain=full]", "0.5") in labels
    stat, bold = cell(alpha, "l2l [retain=full]", "MAE forget FID (classifier) ↑")
    assert stat.mean == 50.5  # the first row with that label: alpha 0.1
    hi = alpha.rows.index(next(r for r in alpha.rows if r.labels[1] == "0.5"))
    c = [col.header for col in alpha.columns].index("MAE forget FID (classifier) ↑")
    assert (hi, c) in alpha.best() and alpha.cells[(hi, c)].mean == 80.5

    retain = tables["i2i_retain"]
    assert retain.row_header == ("method", "retain set")
    assert [r.labels for r in retain.rows] == [  # alpha varies too: part of the label
        ("original [forget=[1, 2]]", "full"), ("original [forget=[1]]", "full"),
        ("l2l (alpha=0.1)", "full"),
        ("l2l (alpha=0.1)", "proxy digits x1"), ("l2l (alpha=0.5)", "full")]

    forget = tables["i2i_forget"]
    assert [g for g, _ in forget.groups()] == [
        "forget set [1] (k=1)", "forget set [1, 2] (k=2)", "forget set [5, 7, 9] (k=3)"]
    assert [forget.rows[i].labels[0] for i in forget.groups()[2][1]] == [
        "l2l (alpha=0.1) [retain=full]", "l2l (alpha=0.1) [retain=proxy digits x1]",
        "l2l (alpha=0.5) [retain=full]"]

    # a sweep without those axes gets none of the ablations
    r2 = tmp_path / "plain"
    write_trial(r2, trial_rows("l2l", 0, {("forget", "fid"): 1.0}, alpha=0.1))
    assert set(by_name(all_tables(load(r2)))) == {"i2i_main", "i2i_metrics"}


def test_replicates_across_sweeps_and_nan_values(tmp_path):
    r = tmp_path / "results"
    write_trial(r, trial_rows("l2l", 0, {("forget", "fid"): 10.0}, sweep="a"))
    write_trial(r, trial_rows("l2l", 0, {("forget", "fid"): 20.0}, sweep="b"))  # same seed
    write_trial(r, trial_rows("l2l", 1, {("forget", "fid"): float("nan")}, sweep="b"))
    t = by_name(all_tables(load(r)))["i2i_main"]
    stat = t.cells[(0, 0)]
    assert (stat.mean, stat.n) == (15.0, 1)  # one seed, averaged; a NaN value is no value


def test_directions_come_from_the_registry(tmp_path):
    """A registered metric takes the registry's direction whatever a file says; a metric the
    registry does not know takes the rows' (here from version-2 files), none when they
    disagree."""
    r = tmp_path / "results"
    for method, v in (("max_loss", 1.0), ("l2l", 2.0)):
        rows = trial_rows(method, 0, {("forget", "fid"): v, ("forget", "zeta"): v,
                                      ("forget", "eta"): v})
        for row in rows:  # FID said to be better low on forget; eta's directions disagree
            row["higher_is_better"] = {"fid": False, "zeta": False}.get(row["metric"],
                                                                       method == "l2l")
        write_trial(r, rows, schema_version=2)
    with pytest.warns(OldSchemaWarning):
        rows = load(r)
    t = by_name(all_tables(rows))["i2i_metrics"]
    assert [c.header for c in t.columns] == ["forget FID (classifier) ↑", "forget eta",
                                             "forget zeta ↓"]
    assert t.best() == {(1, 0), (0, 2)}  # l2l: higher FID; max_loss: lower zeta; eta: none


def test_mia_auc_is_ranked_by_its_distance_to_one_half(tmp_path):
    """MIA AUC is best at 0.5: an AUC of 0.1 (an inverted but informative attack) loses to
    0.45, and 0.55 beats 0.7; two methods equally far from 0.5 tie (no bold)."""
    r = tmp_path / "results"
    for method, forget, retain in (("max_loss", 0.1, 0.7), ("l2l", 0.45, 0.55)):
        write_trial(r, trial_rows(method, 0, {("forget", "mia_auc"): forget,
                                              ("retain", "mia_auc"): retain}))
    for method, forget in (("noisy_label", 0.25), ("retain_label", 0.75)):
        write_trial(r, trial_rows(method, 0, {("forget", "mia_auc"): forget},
                                  generator="vqgan"))
    t = by_name(all_tables(load(r), metrics=("mia_auc",)))["i2i_main"]
    assert [c.header for c in t.columns] == ["VQ-GAN forget MIA AUC →0.5",
                                             "MAE retain MIA AUC →0.5", "MAE forget MIA AUC →0.5"]
    assert cell(t, "l2l", "MAE forget MIA AUC →0.5")[1]  # 0.45 beats 0.1
    assert not cell(t, "max_loss", "MAE forget MIA AUC →0.5")[1]
    assert cell(t, "l2l", "MAE retain MIA AUC →0.5")[1]  # 0.55 beats 0.7
    assert not cell(t, "max_loss", "MAE retain MIA AUC →0.5")[1]
    assert not any(cell(t, m, "VQ-GAN forget MIA AUC →0.5")[1]
                   for m in ("noisy_label", "retain_label"))  # 0.25 and 0.75: a tie
    md = to_markdown(t)
    assert "| l2l | – | **0.550** (n=1) | **0.450** (n=1) |" in md
    assert "→0.5 best at 0.5 (ranked by distance to it)" in md  # the legend says what it means
    assert "MIA AUC $\\rightarrow$0.5" in to_latex(t)
    assert to_html(t).count("<strong>") == 2


def test_exact_grouping_gives_the_hash_grouping_records(i2i):
    """aggregate() groups replicates by a hash of the cell's keys, and by the keys themselves
    only if two cells share a hash: both give the same records."""
    from analysis.pivot import _aggregate_sql

    res = as_results(load(i2i))
    fast, exact = res.sql(_aggregate_sql(exact=False)), res.sql(_aggregate_sql(exact=True))
    assert len(fast) == 9 and fast == exact  # 4 settings: 3 + 2 + 2 + 2 cells
    assert len({r[0] for r in fast}) == len(fast)  # one hash per cell


def test_retain_labels(tmp_path):
    r = tmp_path / "results"
    for i, extra in enumerate([
            dict(retain_mode="full", retain_fraction=1.0),
            dict(retain_mode="fraction", retain_fraction=0.1),
            dict(retain_mode="fraction", retain_fraction=None),
            dict(retain_mode="proxy", retain_fraction=0.0, proxy_source="digits",
                 proxy_size=1.0),
            dict(retain_mode="proxy", retain_fraction=0.0, proxy_source="", proxy_size=0.25),
            dict(retain_mode="none", retain_fraction=0.0)]):
        write_trial(r, trial_rows("l2l", 0, {("forget", "fid"): 1.0}, trial_id=f"t{i}",
                                  **extra))
    assert [rec["retain"] for rec in aggregate(load(r))] == [
        "fraction 0.1", "fraction none", "full", "none", "proxy digits x1", "proxy x0.25"]


@pytest.fixture
def gan(tmp_path):
    r = tmp_path / "results"
    secs = {"retrain": [100.0, 120.0, None], "cascade": [2.0, 4.0, 3.0],
            "finetune_retain": [10.0, 10.0, None], "original": [0.0, 0.0, None]}
    epochs = {"retrain": 20.0, "cascade": 1.0, "finetune_retain": 2.0, "original": 0.0}
    seen = {"retrain": 20000.0, "cascade": 1000.0, "finetune_retain": 4000.0, "original": 0.0}
    for method, per_seed in secs.items():
        for seed, s in enumerate(per_seed):
            if s is None:
                continue
            for setting, k, forget in (("item", 64, '{"random": 64}'), ("class", 1, "[3]")):
                fid = {"cascade": 21.0, "finetune_retain": 25.0}.get(method, 30.0) + seed
                write_trial(r, trial_rows(
                    method, seed, {("all", "fid"): fid, ("all", "epochs"): epochs[method],
                                   ("all", "samples_seen"): seen[method]},
                    family="gan", generator="dcgan", setting=setting, forget_k=k,
                    forget_set=forget, unlearn_seconds=s, task=None, mask_ratio=None,
                    trial_id=f"{setting}-{method}-{seed}"))
    write_trial(r, trial_rows("cascade", 5, {}, family="gan", generator="dcgan",
                              status="error", trial_id="broken"))
    return r


def test_gan_table_speedup_matched_per_seed(gan):
    tables = by_name(all_tables(load(gan)))
    assert set(tables) == {"gan", "gan_speedup"}
    t = tables["gan"]
    assert [g for g, _ in t.groups()] == [
        "class unlearning, k=1, forget set [3]", 'item unlearning, k=64, forget set {"random": 64}']
    assert [c.header for c in t.columns] == [
        "FID (classifier) ↓", "samples seen ↓", "unlearn s ↓", "speedup ↑", "images ratio ↑",
        "FID / retrain ↓", "epochs ↓", "retrain epochs"]
    md = to_markdown(t)
    item = md.split("**item unlearning")[1]
    # cascade: seeds 0, 1 match a retrain trial (100/2, 120/4), seed 2 does not
    # ± half the 95% interval: 2.484 x std at n = 3, 6.353 x std at n = 2
    assert "| cascade | **22.00 ± 2.48** (n=3) | **1000 ± 0** (n=3) | **3.0 ± 2.5** (n=3) | " \
           "**40.0 ± 127.1** (n=2) | **20.0 ± 0.0** (n=2) |" in item
    assert "| finetune_retain | 25.50 ± 6.35 (n=2) | 4000 ± 0 (n=2) | 10.0 ± 0.0 (n=2) | " \
           "11.0 ± 12.7 (n=2) | 5.0 ± 0.0 (n=2) |" in item
    # the original unlearns in 0 s on 0 images: no speedup or ratio rather than infinity or 0
    assert "| original | 30.50 ± 6.35 (n=2) | 0 ± 0 (n=2) | 0.0 ± 0.0 (n=2) | – | – |" in item
    assert re.search(r"\| retrain \| 30\.50 ± 6\.35 \(n=2\) \| 20000 ± 0 \(n=2\) \| "
                     r"110\.0 ± 127\.1 \(n=2\) \| 1\.0 ± 0\.0 \(n=2\) \|", item)
    fid_ratio = t.cells[(t.rows.index(next(r for r in t.rows if r.group.startswith("item")
                                           and r.labels[0] == "cascade")),
                         [c.header for c in t.columns].index("FID / retrain ↓"))]
    assert fid_ratio.mean == pytest.approx((21 / 30 + 22 / 31) / 2) and fid_ratio.n == 2
    assert "epochs behind both times" in md
    stat = t.cells[(t.rows.index(next(r for r in t.rows if r.group.startswith("item")
                                      and r.labels[0] == "cascade")),
                    [c.header for c in t.columns].index("speedup ↑"))]
    assert stat.mean == pytest.approx(40.0) and stat.std == pytest.approx(math.sqrt(200))


def test_the_speedup_table_lists_requests_by_size_with_the_quality_cost_beside(gan):
    t = by_name(all_tables(load(gan)))["gan_speedup"]
    # item requests first (by k), then each class; cost, then forgetting and quality
    assert [g for g, _ in t.groups()] == [
        'item unlearning, k=64, forget set {"random": 64}', "class unlearning, k=1, forget set [3]"]
    assert [c.header for c in t.columns] == [
        "FID (classifier) ↓", "unlearn s ↓", "speedup ↑", "images ratio ↑", "FID / retrain ↓"]
    assert "images ratio" in " ".join(t.notes) and "FID / retrain" in " ".join(t.notes)


def test_speedup_pairs_each_original_with_its_own_retrain(tmp_path):
    """Two originals (pretrain seeds) with their own retrained models: each unlearning run is
    timed against the retrain of its original, never an average over both."""
    r = tmp_path / "results"
    for ps, (retrain_s, cascade_s) in enumerate(((100.0, 1.0), (400.0, 2.0))):
        for method, secs in (("retrain", retrain_s), ("cascade", cascade_s)):
            write_trial(r, trial_rows(method, 0, {("all", "fid"): 10.0}, family="gan",
                                      generator="dcgan", setting="class", forget_k=1,
                                      forget_set="[3]", unlearn_seconds=secs, task=None,
                                      mask_ratio=None, pretrain_seed=ps,
                                      trial_id=f"{method}-{ps}"))
    speed = [x for x in speedup_records(load(r)) if x["method"] == "cascade"
             and x["metric"] == "speedup"]
    assert len(speed) == 1
    assert speed[0]["stat"].mean == pytest.approx((100 / 1 + 400 / 2) / 2)
    assert speed[0]["stat"].n == 2
