"""The tables / figures / report / check-report commands on small synthetic sweeps with
artifacts: files written, self-contained HTML, one-line errors and nothing half-written."""

import base64
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis import all_tables, load
from analysis.browser import find_browser
from analysis.cli import main
from analysis.synthetic import trial_rows, write_artifacts, write_trial

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Sweep `img`: MAE, original + l2l at two alphas, two seeds, artifacts (one trial's files
    missing); sweep `gan`: original, retrain, cascade; a corrupt file in `img`."""
    r = tmp_path_factory.mktemp("report") / "results"
    for seed in (0, 1):
        for method, alpha, shift in (("original", None, 0.0), ("l2l", 0.1, 1.0),
                                     ("l2l", 0.5, 3.0)):
            tid = f"{method}-{alpha}-{seed}"
            art = f"artifacts/sweep_id=img/{tid}"
            write_artifacts(r, art, seed=seed, points=12, dim=8, shift=shift)
            metrics = {("forget", "fid"): 50 + 40 * shift + seed, ("retain", "fid"): 20 + shift,
                       ("forget", "cosine"): 0.9 - 0.05 * shift, ("retain", "cosine"): 0.95}
            write_trial(r, trial_rows(method, seed, metrics, sweep="img", alpha=alpha,
                                      trial_id=tid, artifact_dir=art, minutes=seed))
    # the first seed of l2l 0.5 lost its files: the figures fall back to the second seed
    for f in (r / "artifacts/sweep_id=img/l2l-0.5-0").iterdir():
        f.unlink()
    write_trial(r, trial_rows("l2l", 7, {}, sweep="img", status="error", trial_id="boom",
                              error="RuntimeError: <script>alert(1)</script>"))
    (r / "sweep_id=img" / "torn.parquet").write_bytes(b"PAR1\x00\x01")
    for seed in (0, 1):
        for method, secs in (("original", 0.0), ("retrain", 100.0), ("cascade", 2.0 + seed)):
            tid = f"{method}-{seed}"
            art = f"artifacts/sweep_id=gan/{tid}"
            write_artifacts(r, art, family="gan", seed=seed)
            write_trial(r, trial_rows(
                method, seed, {("all", "fid"): 20.0 + seed, ("all", "epochs"): 1.0},
                sweep="gan", family="gan", generator="dcgan", trial_id=tid, artifact_dir=art,
                unlearn_seconds=secs, task=None, mask_ratio=None, minutes=10 + seed))
    return r


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_tables_command_writes_every_format(results, tmp_path, capsys):
    out = tmp_path / "tables"
    code, stdout, err = run(capsys, "tables", "--results", results, "--sweep-id", "img",
                            "--out", out)
    assert code == 0
    names = sorted(p.name for p in (out / "img").iterdir())
    assert names == sorted(f"{t}.{f}" for t in ("i2i_main", "i2i_metrics", "i2i_alpha")
                           for f in ("md", "tex", "csv"))
    assert sorted(Path(p).name for p in stdout.split()) == names  # stdout: the files written
    assert "warning: skipped" in err and "torn.parquet" in err
    md = (out / "img" / "i2i_alpha.md").read_text(encoding="utf-8")
    assert "| l2l | 0.5 | **23.00 ± 0.00** (n=2) |" not in md  # retain FID: lower wins
    assert re.search(r"\| l2l \| 0\.1 \| \*\*21\.00 ± 0\.00\*\* \(n=2\) \|", md)
    csv = pd.read_csv(out / "img" / "i2i_alpha.csv")
    assert csv["MAE forget FID (classifier) ↑ mean"].tolist() == [50.5, 90.5, 170.5]

    code, stdout, _ = run(capsys, "tables", "--results", results, "--out", tmp_path / "t2",
                          "--format", "md")  # default sweep: the newest (gan)
    assert code == 0 and [Path(p).name for p in stdout.split()] == ["gan.md", "gan_speedup.md"]


def test_figures_command_writes_png_and_pdf(results, tmp_path, capsys):
    out = tmp_path / "figs"
    code, stdout, err = run(capsys, "figures", "--results", results, "--sweep-id", "img",
                            "--out", out)
    assert code == 0, err
    files = {p.name: p.read_bytes() for p in (out / "img").iterdir()}
    stems = {"alpha_l2l", "grids_mae", "tsne_mae"}
    assert set(files) == {f"{s}.{e}" for s in stems for e in ("png", "pdf")}
    assert all(files[f"{s}.png"].startswith(b"\x89PNG") and len(files[f"{s}.png"]) > 1000
               for s in stems)
    assert all(files[f"{s}.pdf"].startswith(b"%PDF") for s in stems)
    assert "l2l-0.5-0" not in err  # another seed had the files: nothing left out

    code, _, err = run(capsys, "figures", "--results", results, "--sweep-id", "gan",
                       "--out", out)
    assert code == 0 and {p.name for p in (out / "gan").iterdir()} == {
        "samples_0.png", "samples_0.pdf", "speedup.png", "speedup.pdf"}


@pytest.mark.filterwarnings("ignore::analysis.ResultFileWarning")
def test_report_is_self_contained_and_complete(results, tmp_path, capsys):
    out = tmp_path / "report"
    code, stdout, err = run(capsys, "report", "--results", results, "--out", out)
    assert code == 0, err
    assert sorted(Path(p).name for p in stdout.split()) == ["gan.html", "img.html",
                                                            "index.html"]
    page = (out / "img.html").read_text(encoding="utf-8")
    # nothing fetched from elsewhere
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", page)
    assert "<link" not in page and "<script src" not in page and "@import" not in page
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([^"]+)">', page)
    assert len(images) == page.count("<img") == 3  # alpha curves, grids, T-SNE
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    # every table of the sweep is in it, with the same cells
    tables = all_tables(load(results, "img"))
    assert page.count('<figure class="table"') == len(tables) == 3
    assert '<body data-expected-images="3" data-expected-tables="' in page
    assert "<strong>21.00 ± 0.00</strong>" in page
    # failures and skipped files are reported, and error text is escaped
    assert "torn.parquet" in page and "boom" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page

    gan = (out / "gan.html").read_text(encoding="utf-8")
    assert "torn.parquet" not in gan  # a skipped file is named in its own sweep's report
    assert "speedup" in gan and gan.count("<img") == 2

    index = (out / "index.html").read_text(encoding="utf-8")
    assert '<a href="img.html">img</a>' in index and '<a href="gan.html">gan</a>' in index

    # a later report of one sweep keeps the other in the index
    code, _, _ = run(capsys, "report", "--results", results, "--sweep-id", "gan",
                     "--out", out)
    assert code == 0 and 'href="img.html"' in (out / "index.html").read_text(encoding="utf-8")


@pytest.mark.skipif(find_browser() is None, reason="no headless Chromium installed")
def test_report_opens_in_headless_browser(results, tmp_path, capsys):
    out = tmp_path / "report"
    assert run(capsys, "report", "--results", results, "--out", out,
               "--sweep-id", "img")[0] == 0
    code, stdout, err = run(capsys, "check-report", out / "img.html",
                            "--screenshot", tmp_path / "shot.png")
    assert code == 0, err
    assert "3/3 images decoded" in stdout and (tmp_path / "shot.png").stat().st_size > 0
    broken = tmp_path / "broken.html"
    broken.write_text((out / "img.html").read_text(encoding="utf-8").replace(
        "data:image/png;base64,", "data:image/png;base64,AAAA", 1), encoding="utf-8")
    code, _, err = run(capsys, "check-report", broken)
    assert code == 2 and "images 2/3 decoded" in err


@pytest.mark.parametrize("argv, message", [
    (["tables", "--results", "{tmp}/none"], "error: no Parquet result files under"),
    (["figures", "--sweep-id", "nope"], "error: unknown sweep id 'nope'; known: gan, img"),
    (["report", "--sweep-id", "img", "--sweep-id", "nope"], "error: unknown sweep id 'nope'"),
    (["tables", "--sweep-id", "only-failed"],
     "error: sweep 'only-failed' has no successful trial rows (1 failed trial(s))"),
    (["check-report", "{tmp}/missing.html"], "error: no such report"),
])
def test_bad_input_one_line_exit_2_nothing_written(results, tmp_path, capsys, argv, message):
    failed = results.parent / "failed-results"
    if not failed.exists():
        write_trial(failed, trial_rows("l2l", 0, {}, sweep="only-failed", status="error"))
        write_trial(failed, trial_rows("l2l", 0, {("forget", "fid"): 1.0}, sweep="gan"))
        write_trial(failed, trial_rows("l2l", 0, {("forget", "fid"): 1.0}, sweep="img"))
    argv = [a.format(tmp=tmp_path) for a in argv]
    if "--results" not in argv and argv[0] != "check-report":
        argv += ["--results", str(failed)]
    if argv[0] != "check-report":
        argv += ["--out", str(tmp_path / "out")]
    code, stdout, err = run(capsys, *argv)
    assert code == 2 and stdout == ""
    assert err.startswith(message) and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", [
    b"<!DOCTYPE html><html><head><title>x</title></head><body><p>hi</p></body></html>",
    b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary, not UTF-8",
])
def test_check_report_refuses_a_file_that_is_no_report(tmp_path, capsys, content):
    page = tmp_path / "page.html"
    page.write_bytes(content)
    # a browser that does not exist: the file is judged before any browser is looked for
    code, stdout, err = run(capsys, "check-report", page, "--browser", tmp_path / "no-browser")
    assert code == 2 and stdout == ""
    assert err == f"error: {page} is not an l2l-analysis report\n"


def test_help_explains_each_command(capsys):
    for cmd, words in (("tables", "booktabs"), ("figures", "T-SNE"), ("report", "index.html"),
                       ("check-report", "headless"), ("table", "Markdown")):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0 and words in capsys.readouterr().out


def test_reporting_imports_no_training_stack(results):
    code = ("import sys, analysis.report, analysis.figures, analysis.cli, sklearn.manifold; "
            "bad = {'torch', 'ray', 'l2l', 'sweeps'} & {m.split('.')[0] for m in sys.modules}; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_requests_of_several_sizes_get_a_speedup_against_request_figure(tmp_path):
    from analysis.figures import all_figures

    r = tmp_path / "results"
    requests = [("item", k, f'{{"items": {k}, "seed": 0}}') for k in (64, 256, 1024)] + \
        [("class", 1, "[7]")]
    for setting, k, fs in requests:
        for seed in (0, 1):
            for method, secs, fid in (("retrain", 100.0, 10.0), ("cascade", 1.0 + k / 256, 11.0)):
                write_trial(r, trial_rows(
                    method, seed, {("all", "fid"): fid + seed}, family="gan", generator="dcgan",
                    setting=setting, forget_k=k, forget_set=fs, unlearn_seconds=secs, task=None,
                    mask_ratio=None, trial_id=f"{method}-{k}-{setting}-{seed}"))
    figs = {f.name: f for f in all_figures(load(r), r)}
    assert "speedup_request" in figs
    assert figs["speedup_request"].png.startswith(b"\x89PNG")
    assert "FID over the retrained model's" in figs["speedup_request"].caption
    # one request size only: bars, no line over k
    one = tmp_path / "one"
    write_trial(one, trial_rows("retrain", 0, {("all", "fid"): 1.0}, family="gan",
                                generator="dcgan", setting="class", forget_k=1, forget_set="[7]",
                                unlearn_seconds=9.0, task=None, mask_ratio=None, trial_id="a"))
    write_trial(one, trial_rows("cascade", 0, {("all", "fid"): 1.0}, family="gan",
                                generator="dcgan", setting="class", forget_k=1, forget_set="[7]",
                                unlearn_seconds=1.0, task=None, mask_ratio=None, trial_id="b"))
    names = {f.name for f in all_figures(load(one), one)}
    assert "speedup" in names and "speedup_request" not in names
