"""`l2l-analysis table` and its page (analysis.table) on result files written by pandas in
schema version 1, as early sweeps wrote them: they are migrated on the way in (and say so)."""

import statistics
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import t as t_dist

from analysis import AnalysisError, load, newest_sweep, open_results
from analysis.cli import main
from analysis.render import to_frame
from analysis.table import page_tables, to_markdown
from contract.schema import beside

# these files are written in schema version 1, which the loader migrates (and says so)
pytestmark = pytest.mark.filterwarnings("ignore::analysis.OldSchemaWarning")

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
HIB = {("retain", "fid"): False, ("forget", "fid"): True, ("retain", "cosine"): True,
       ("forget", "cosine"): False, ("retain", "is"): True, ("forget", "is"): False}


def trial(method, seed, metrics, *, sweep="s-a", alpha=None, status="ok", minutes=0,
          generator="mae", stored_sweep=None, **extra):
    """Rows of one trial in schema version 1; `metrics` maps (split, metric) -> value."""
    base = dict(schema_version=1, sweep_id=stored_sweep or sweep,
                trial_id=f"t-{method}-{alpha}-{seed}-{generator}", status=status, error=None,
                generator=generator, generator_size="tiny", method=method,
                dataset="fashion_mnist", forget_set="[5, 7, 9]", retain_set="[0, 1]",
                retain_mode="full", retain_fraction=1.0, proxy_source=None, alpha=alpha,
                noise="normal" if method == "l2l" else None, task="center_inpaint",
                mask_ratio=0.5, seed=seed, pretrain_seed=0, n=64, pretrain_seconds=1.0,
                unlearn_seconds=0.0, eval_seconds=1.0, device="cpu", config_hash="0" * 16,
                code_version="test", mlflow_run_id=None,
                created_at=T0 + timedelta(minutes=minutes))
    base.update(extra)
    if status != "ok":
        metrics = {("forget", "error"): float("nan")}
        base["error"] = "boom"
    return [dict(base, split=s, metric=m, value=v, higher_is_better=HIB.get((s, m), False))
            for (s, m), v in metrics.items()]


def write(results, rows, sweep="s-a"):
    df = pd.DataFrame(rows).astype({"schema_version": "int32", "alpha": "float64"})
    d = results / f"sweep_id={sweep}"
    d.mkdir(parents=True, exist_ok=True)
    df.to_parquet(d / f"{df.trial_id.iloc[0]}.parquet", index=False)


# known values: l2l forget FID over seeds 0, 1, 2; original has no cosine and a single seed
L2L = {0: (10.0, 110.0, 0.9), 1: (12.0, 130.0, 0.8), 2: (14.0, 120.0, 0.7)}


@pytest.fixture
def results(tmp_path):
    r = tmp_path / "results"
    for seed, (rf, ff, rc) in L2L.items():
        write(r, trial("l2l", seed, {("retain", "fid"): rf, ("forget", "fid"): ff,
                                     ("retain", "cosine"): rc}, alpha=0.5, minutes=seed))
    write(r, trial("original", 0, {("retain", "fid"): 5.0, ("forget", "fid"): 6.0}))
    write(r, trial("l2l", 3, {}, alpha=0.5, status="error"))
    return r


def fmt(vals, d):
    """`mean ± half (n=K)`, half the width of the 95% Student-t interval over the seeds."""
    n = len(vals)
    half = t_dist.ppf(0.975, n - 1) * statistics.stdev(vals) / n ** 0.5
    return f"{statistics.mean(vals):.{d}f} ± {half:.{d}f} (n={n})"


def test_cells_headers_order_missing_and_failures(results):
    (table,) = page_tables(load(results))
    assert table.name == "i2i_metrics"  # every metric, a section per generator
    frame = to_frame(table)
    assert list(frame.columns) == ["group", "method", "retain FID (classifier) ↓",
                                   "retain cos (classifier) ↑", "forget FID (classifier) ↑"]
    assert list(frame["method"]) == ["original", "l2l"]  # paper order, not alphabetical
    assert set(frame["group"]) == {"MAE"}
    l2l = frame.set_index("method").loc["l2l"]
    assert l2l["retain FID (classifier) ↓"] == fmt([10.0, 12.0, 14.0], 2) == "12.00 ± 4.97 (n=3)"
    assert l2l["forget FID (classifier) ↑"] == fmt([110.0, 130.0, 120.0], 2) \
        == "120.00 ± 24.84 (n=3)"
    assert l2l["retain cos (classifier) ↑"] == fmt([0.9, 0.8, 0.7], 4) == "0.8000 ± 0.2484 (n=3)"
    orig = frame.set_index("method").loc["original"]
    assert orig["retain FID (classifier) ↓"] == "5.00 (n=1)"
    assert orig["retain cos (classifier) ↑"] == "–"  # missing, never 0

    md = to_markdown(load(results), full=True)
    assert md.startswith("## Image-to-image unlearning, every metric per generator, "
                         "fashion_mnist, center_inpaint, mask ratio 0.5\n")
    assert "**MAE**" in md
    assert "| original | 5.00 (n=1) | – | 6.00 (n=1) |" in md
    assert "Note: 1 failed trial(s) excluded: t-l2l-0.5-3-mae." in md  # counted, not averaged
    assert "↑ higher is better, ↓ lower is better; mean ± half-width of the 95% interval: " \
        "Student-t over independent replicates (seeds)" in md
    assert md.rstrip().endswith("Sweep s-a; 5 trials; 12 rows.")


def test_the_headline_fits_a_terminal_and_says_n_and_cost_once(results, tmp_path):
    """The default page: forget and retain FID and cosine and the cost, in 100 columns, with
    the replicates said once per group; the rest one flag away."""
    r = tmp_path / "wide"
    for seed in range(3):
        for method, secs in (("original", 0.0), ("l2l", 12.5 + seed), ("random_encoder", 30.0)):
            vals = {(s, m): 123.456 + seed for s in ("retain", "forget") for m in ("fid", "kid")}
            vals.update({(s, "cosine"): 0.91234 + seed / 100 for s in ("retain", "forget")})
            vals[("retain", "forget_class_share")] = 0.01
            vals[("forget", "mia_auc_retrain")] = 0.5
            write(r, trial(method, seed, vals, alpha=0.5 if method == "l2l" else None,
                           unlearn_seconds=secs, trial_id=f"{method}-{seed}"))
    md = to_markdown(load(r))
    assert max(len(line) for line in md.splitlines()) <= 100
    assert "**MAE** (n = 3 replicates)" in md
    assert "| method | retain FID ↓ | retain cos ↑ | forget FID ↑ | forget cos ↓ | unlearn s ↓ |" \
        in md
    assert "| l2l | 124.46 ± 2.48 | 0.922 ± 0.025 | 124.46 ± 2.48 | 0.922 ± 0.025 | " \
        "**13.5 ± 2.5** |" in md  # the cheaper of the two unlearning methods
    assert "KID" not in md and "Every metric: `l2l-analysis table --all`." in md
    full = to_markdown(load(r), full=True)
    assert "KID" in full
    # values that would read as something they are not stay out of every table
    assert "retain forget-class share" not in full and "MIA AUC of retrain" not in full


def test_page_is_the_same_from_a_dataframe_and_from_the_files(results):
    assert to_markdown(load(results)) == to_markdown(open_results(results))


def test_alpha_variants_other_methods_and_generators(tmp_path):
    r = tmp_path / "results"
    m = {("retain", "fid"): 1.0, ("retain", "mse_masked"): 0.5}
    for method, alpha, mode, gen in [("l2l", 0.25, "full", "mae"), ("l2l", 0.5, "full", "mae"),
                                     ("l2l", 0.5, "proxy", "mae"), ("zeta", None, "full", "mae"),
                                     ("max_loss", None, "full", "mae"),
                                     ("original", None, "full", "vqgan")]:
        write(r, trial(method, 0, m, alpha=alpha, retain_mode=mode, generator=gen,
                       trial_id=f"{method}{alpha}{mode}{gen}"))
    (table,) = page_tables(load(r))
    frame = to_frame(table)
    assert list(frame["method"]) == [  # VQ-GAN's section first (the paper's order), then MAE
        "original", "max_loss", "l2l (alpha=0.25) [retain=full]",
        "l2l (alpha=0.5) [retain=full]", "l2l (alpha=0.5) [retain=proxy]", "zeta"]
    assert list(frame.columns)[2:] == ["retain FID (classifier) ↓", "retain MSE(mask) ↓"]
    assert frame.set_index("method").loc["max_loss", "retain MSE(mask) ↓"] == "0.5000 (n=1)"
    md = to_markdown(load(r), full=True)
    assert md.index("**VQ-GAN**") < md.index("**MAE**")


def test_directory_sweep_id_wins_and_stays_a_string(tmp_path):
    r = tmp_path / "results"
    # a file moved to another sweep's directory, and a numeric-looking sweep id
    write(r, trial("original", 0, {("retain", "fid"): 1.0}, sweep="s-b", stored_sweep="s-old"),
          sweep="s-b")
    write(r, trial("original", 1, {("retain", "fid"): 1.0}, sweep="2024", trial_id="x"),
          sweep="2024")
    df = load(r)
    assert sorted(df["sweep_id"]) == ["2024", "s-b"]
    assert list(load(r, "2024")["trial_id"]) == ["x"]
    assert open_results(r).sweep_ids == ["2024", "s-b"]


def test_newest_sweep_and_errors(tmp_path, results):
    write(results, trial("original", 0, {("retain", "fid"): 1.0}, sweep="s-b", minutes=-60),
          sweep="s-b")
    write(results, trial("original", 0, {("retain", "fid"): 1.0}, sweep="s-c", minutes=60),
          sweep="s-c")
    assert newest_sweep(load(results)) == "s-c" == open_results(results).newest_sweep()
    assert set(load(results, "s-b")["sweep_id"]) == {"s-b"}
    with pytest.raises(AnalysisError, match="unknown sweep id 'nope'; known: s-a, s-b, s-c"):
        load(results, "nope")
    with pytest.raises(AnalysisError, match="no Parquet result files"):
        load(tmp_path / "empty")


def test_cli_writes_what_it_prints(results, capsys):
    out = beside(results, "tables") / "s-a.md"
    assert main(["table", "--results", str(results), "--all"]) == 0  # default: latest (s-a)
    captured = capsys.readouterr()
    assert out.read_text(encoding="utf-8") == captured.out
    assert "| l2l | 12.00 ± 4.97 (n=3) |" in captured.out
    assert captured.err.strip().splitlines()[-1] == f"table written to {out}"

    custom = results.parent / "deep" / "dir" / "t.md"
    assert main(["table", "--results", str(results), "--sweep-id", "s-a",
                 "--out", str(custom)]) == 0
    assert custom.read_text(encoding="utf-8") == capsys.readouterr().out


def test_cli_default_file_name_is_safe(tmp_path, capsys):
    # as the other commands: a sweep id with characters unfit for file names is made safe
    r = tmp_path / "results"
    write(r, trial("original", 0, {("retain", "fid"): 5.0}, sweep="run:1"), sweep="run:1")
    assert main(["table", "--results", str(r)]) == 0
    assert (beside(r, "tables") / "run_1.md").read_text(encoding="utf-8") == capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--sweep-id", "nope"], "error: unknown sweep id 'nope'; known: s-a"),
    (["--out", "{blocker}/t.md"], "error: cannot write"),
])
def test_cli_errors_exit_2_and_write_nothing(results, capsys, args, message):
    blocker = results.parent / "blocker"
    blocker.write_text("a file, not a directory")
    args = [a.format(blocker=blocker) for a in args]
    assert main(["table", "--results", str(results), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(message) and len(captured.err.strip().splitlines()) == 1
    assert not beside(results, "tables").exists()


def test_cli_no_results(tmp_path, capsys):
    assert main(["table", "--results", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.startswith("error: no Parquet result files under")


def test_no_training_stack_imported():
    code = ("import sys, analysis.cli, analysis.table; bad = {'torch', 'ray', 'l2l', 'sweeps'} & "
            "{m.split('.')[0] for m in sys.modules}; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
