"""Command line: `python -m analysis COMMAND` (console script `l2l-analysis`).

Every command reads only the Parquet result files, through DuckDB (analysis.load.Results:
the files are checked first, then only the chosen sweep's files are queried). Bad input (no
results, unknown sweep, no rows) is one `error: ...` line on stderr and exit code 2, and then
nothing is written: all outputs are rendered before the first one is written, each by temp
file + rename.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from analysis.load import AnalysisError, ResultFileWarning, Results, open_results
from analysis.remote import Root, open_root
from contract.inputs import one_line
from contract.schema import beside
from analysis.pivot import PAPER_METRICS
from analysis.render import FORMATS

RESULTS_HELP = ("results directory holding sweep_id=<id>/*.parquet: a path or a URI such as "
                "s3://bucket/results (default: %(default)s)")


def _metrics(text: str) -> tuple[str, ...]:
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    if not names:
        raise argparse.ArgumentTypeError("give at least one metric name, e.g. "
                                         + ",".join(PAPER_METRICS))
    return names


def _formats(text: str) -> tuple[str, ...]:
    names = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in names if f not in FORMATS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown format {bad[0] if bad else text!r} "
                                         f"(allowed: {', '.join(FORMATS)})")
    return names


def _common(p: argparse.ArgumentParser, many: bool = False) -> None:
    p.add_argument("--results", default="results", type=_nonempty, metavar="DIR",
                   help=RESULTS_HELP)
    if many:
        p.add_argument("--sweep-id", metavar="ID", action="append",
                       help="sweep to report on; repeat for several (default: every sweep)")
    else:
        p.add_argument("--sweep-id", metavar="ID",
                       help="sweep to use (default: the one with the newest trial)")


def _nonempty(text: str) -> str:
    """A path argument; an empty one (the current directory, silently) is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _local_out(text: str) -> str:
    """An output path: local (outputs reach object storage by default, beside a remote
    --results)."""
    from contract.inputs import is_uri

    if is_uri(text):
        raise argparse.ArgumentTypeError(f"a local path, got {text!r} (outputs go to object "
                                         "storage by default, beside a --results URI)")
    return _nonempty(text)


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {n}")
    return n


def _figure_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", type=_metrics, default=PAPER_METRICS, metavar="LIST",
                   help="comma-separated metrics of the image-to-image main table, ablations "
                        f"and alpha curves (default: {','.join(PAPER_METRICS)}, the paper's)")
    p.add_argument("--tsne-max", type=_count, default=100, metavar="N",
                   help="T-SNE: at most N points of each of the four embedding sets "
                        "(default: %(default)s)")


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors as one `error: ...` line and exit code 2."""

    def error(self, message):
        print(f"error: {one_line(f'{self.prog}: {message}')}", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="l2l-analysis",
        description="Turn sweep results (tidy Parquet rows, docs/results-schema.md) into "
                    "tables, figures and HTML reports. Reads nothing but the result files "
                    "and the trials' artifact directories.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           parser_class=_Parser)
    p.set_defaults(exit_code=0, artifacts=False)  # a check that fails sets exit_code 1

    t = sub.add_parser(
        "table", help="the headline table of one sweep (--all: every metric)",
        description="Print one sweep's headline table as Markdown and write it to a file: "
                    "forget and retain FID and cosine, the replicates (n) and the unlearning "
                    "seconds per method and generator (GAN: FID, forgetting and speedup per "
                    "request); cells are mean ± half the 95% interval over replicates. "
                    "--all prints every metric instead.")
    _common(t)
    t.add_argument("--all", action="store_true", dest="full",
                   help="every metric, per generator (wide: for a file or a wide terminal)")
    t.add_argument("--out", type=_local_out, metavar="FILE",
                   help="Markdown output file (default: <results>-tables/<sweep_id>.md)")

    ts = sub.add_parser(
        "tables", help="every applicable table of one sweep as Markdown, LaTeX and CSV",
        description="Write every table that applies to one sweep, each as Markdown, LaTeX "
                    "(booktabs) and CSV from the same pivot: image-to-image Table 1/2 layout "
                    "(i2i_main: methods x generator x split x metric), every metric per "
                    "generator (i2i_metrics), the alpha, retain-availability and forget-set "
                    "ablations (i2i_alpha, i2i_retain, i2i_forget) when the sweep varies "
                    "them, and the GAN item/class table with speedup (gan). Cells are mean ± "
                    "half the 95% interval (n = seeds; docs/statistics.md); CSV has mean, std, "
                    "n and the interval's ends; bold marks the best unlearning method of a "
                    "column on unrounded means; missing cells are '–' (CSV: empty). Prints the files "
                    "written.")
    _common(ts)
    ts.add_argument("--out", type=_local_out, metavar="DIR",
                    help="output directory; files go to DIR/<sweep_id>/<table>.<format> "
                         "(default: <results>-tables)")
    ts.add_argument("--format", type=_formats, default=tuple(FORMATS), metavar="LIST",
                    help=f"comma-separated formats among {', '.join(FORMATS)} (default: all)")
    ts.add_argument("--metrics", type=_metrics, default=PAPER_METRICS,
                    metavar="LIST", help="metrics of the main and ablation tables "
                                         f"(default: {','.join(PAPER_METRICS)})")

    f = sub.add_parser(
        "figures", help="figures of one sweep as PNG and PDF",
        description="Write the figures that apply to one sweep, each as PNG and PDF: alpha "
                    "trade-off curves (forget vs retain metric, one line per generator), "
                    "sample grids and T-SNE of output and original embeddings (from the "
                    "trials' artifact directories), and GAN speedup bars. Trials without "
                    "artifacts are left out with a warning. Prints the files written.")
    _common(f)
    f.add_argument("--out", type=_local_out, metavar="DIR",
                   help="output directory; files go to DIR/<sweep_id>/<figure>.{png,pdf} "
                        "(default: <results>-figures)")
    _figure_options(f)
    f.set_defaults(artifacts=True)  # sample grids and T-SNE read the trials' artifacts

    r = sub.add_parser(
        "report", help="self-contained HTML report per sweep plus index.html",
        description="Write one self-contained HTML report per sweep (summary, failed trials, "
                    "every table and figure, images embedded as data: URIs, no external "
                    "resources) and index.html linking every report in the output directory. "
                    "Prints the files written. Check a report with `l2l-analysis "
                    "check-report`.")
    _common(r, many=True)
    r.add_argument("--out", type=_local_out, metavar="DIR",
                   help="output directory (default: <results>-report)")
    _figure_options(r)
    r.set_defaults(artifacts=True)

    k = sub.add_parser(
        "control", help="convergence check: the finetune_retain control against the originals",
        description="For each generator of one sweep, compare the finetune_retain control "
                    "with the original model, paired by pretraining seed: an original passes "
                    "when the control's change of the metric is within the standard deviation "
                    "of the originals over pretraining seeds (analysis/control.py). Prints a "
                    "Markdown table and writes it; exit code 1 when an original fails.")
    _common(k)
    k.add_argument("--split", default="retain", choices=("retain", "forget"),
                   help="split of the metric (default: %(default)s)")
    k.add_argument("--metric", default="fid", help="metric (default: %(default)s)")
    k.add_argument("--control", default="finetune_retain",
                   help="the control method (default: %(default)s; finetune_all separates "
                        "an unconverged original from specialisation on the retain classes)")
    k.add_argument("--out", type=_local_out, metavar="FILE",
                   help="Markdown output (default: <results>-tables/<sweep_id>-control.md)")

    cp = sub.add_parser(
        "compare", help="paired comparison of two methods on the same seeds and originals",
        description="Compare side B with side A on the replicates both have (same pretraining "
                    "seed, same seed: the same original model and test images), per generator "
                    "and context, for each split and metric: the mean paired difference B − A, "
                    "its 95% interval, the effect size d_z and the p-value of a paired t-test, "
                    "Holm-corrected over every comparison printed (analysis/compare.py). A side "
                    "is METHOD or METHOD,KEY=VALUE,... with KEY a setting the tables show "
                    "(retain, alpha, noise, params), e.g. 'l2l,retain=proxy digits x1'. Prints "
                    "Markdown and writes it (and CSV).")
    _common(cp, many=True)
    cp.add_argument("--a", required=True, metavar="SIDE", help="side A, e.g. original")
    cp.add_argument("--b", required=True, metavar="SIDE", help="side B, e.g. l2l,retain=full")
    cp.add_argument("--metrics", type=_metrics, default=PAPER_METRICS, metavar="LIST",
                    help=f"comma-separated metrics (default: {','.join(PAPER_METRICS)})")
    cp.add_argument("--split", action="append", metavar="SPLIT",
                    help="only this split (forget, retain, all); repeat for several "
                         "(default: every split)")
    cp.add_argument("--out", type=_local_out, metavar="DIR",
                    help="writes DIR/compare.md and DIR/compare.csv (default: "
                         "<results>-tables)")

    cl = sub.add_parser(
        "claims", help="evaluate the papers' claims as statistical tests: holds / fails / "
                       "inconclusive",
        description="Evaluate each claim of the two papers (analysis/claims.yaml: claim, the "
                    "two sides compared, split, metric, test and margin) on the result rows: "
                    "the paired difference over replicates, its 95% interval and effect size, "
                    "and a verdict (holds, fails, inconclusive, not run) per generator and "
                    "context (analysis/claims.py). Prints Markdown and writes claims.md and "
                    "claims.csv. Exit code 0 whatever the verdicts.")
    _common(cl, many=True)
    cl.add_argument("--claims", metavar="FILE",
                    help="YAML file of claims in the same form (default: the papers')")
    cl.add_argument("--out", type=_local_out, metavar="DIR",
                    help="writes DIR/claims.md and DIR/claims.csv (default: <results>-tables)")

    c = sub.add_parser(
        "check-report", help="open a report in headless Chromium and check it renders",
        description="Load an HTML report in a headless Chromium (chromium, google-chrome; "
                    "install with e.g. `apt-get install chromium`) and check that every "
                    "image decoded, every table is present and no error occurred. Exit code "
                    "0 and one line when it did, else `error: ...` and 2.")
    c.add_argument("report", metavar="FILE", help="HTML report to check")
    c.add_argument("--screenshot", metavar="PNG", help="also save a screenshot of the page")
    c.add_argument("--browser", metavar="PATH", help="browser executable (default: search)")
    return p


def _load(args, many: bool = False) -> tuple[Results, list[str]]:
    """(the rows of the chosen sweeps, sweep ids)."""
    results = Path(args.results)
    if args.sweep_id:
        ids = args.sweep_id if many else [args.sweep_id]
        rows = open_results(results, ids)
    else:
        rows = open_results(results)
        ids = rows.sweep_ids if many else [rows.newest_sweep()]
        rows = rows if many else rows.only(ids)
    missing = [s for s in ids if s not in rows.sweep_ids]
    if missing:
        raise AnalysisError(f"sweep {missing[0]!r} has no readable result rows")
    return rows, ids


def _need_ok(rows: Results, sweep: str) -> None:
    (ok, trials), = rows.sql("SELECT count(*) FILTER (WHERE status = 'ok'), "
                             "count(DISTINCT trial_id) FROM rows")
    if not ok:
        raise AnalysisError(f"sweep {sweep!r} has no successful trial rows "
                            f"({trials} failed trial(s))")


def _table(args) -> list[str]:
    from analysis.files import safe_name, write_all
    from analysis.table import to_markdown

    rows, (sweep,) = _load(args)
    text = to_markdown(rows, full=args.full)
    out = (Path(args.out) if args.out
           else beside(args.results, "tables") / f"{safe_name(sweep)}.md")
    write_all({out: text})
    sys.stdout.write(text)  # stdout is exactly the file content
    sys.stdout.flush()  # so the table comes before the stderr note in a terminal
    return [f"table written to {out}"]


def _tables(args) -> list[str]:
    from analysis.files import safe_name, write_all
    from analysis.pivot import all_tables

    rows, (sweep,) = _load(args)
    _need_ok(rows, sweep)
    out = Path(args.out) if args.out else beside(args.results, "tables")
    tables = all_tables(rows, args.metrics)
    if not tables:
        raise AnalysisError(f"no table applies to sweep {sweep!r} (metrics: "
                            f"{', '.join(args.metrics)})")
    outputs = {out / safe_name(sweep) / f"{t.name}.{fmt}": FORMATS[fmt](t)
               for t in tables for fmt in args.format}
    for path in write_all(outputs):
        print(args.show(path))
    return [f"{len(tables)} table(s) of sweep {sweep} written to {out / safe_name(sweep)}"]


def _figures(args) -> list[str]:
    from analysis.figures import all_figures
    from analysis.files import safe_name, write_all

    rows, (sweep,) = _load(args)
    _need_ok(rows, sweep)
    notes: list[str] = []
    figs = all_figures(rows, args.results, args.metrics, args.tsne_max, notes)
    out = Path(args.out) if args.out else beside(args.results, "figures")
    outputs = {}
    for fig in figs:
        outputs[out / safe_name(sweep) / f"{fig.name}.png"] = fig.png
        outputs[out / safe_name(sweep) / f"{fig.name}.pdf"] = fig.pdf
    for path in write_all(outputs):
        print(args.show(path))
    return [f"warning: {n}" for n in notes] + [
        f"{len(figs)} figure(s) of sweep {sweep} written to {out / safe_name(sweep)}"
        if figs else f"no figure applies to sweep {sweep}"]


def _report(args) -> list[str]:
    from analysis.files import write_all
    from analysis.report import build_reports

    rows, ids = _load(args, many=True)
    out = Path(args.out) if args.out else beside(args.results, "report")
    pages = build_reports(rows, args.results, out, ids, metrics=args.metrics,
                          tsne_max=args.tsne_max)
    for path in write_all(pages):
        print(args.show(path))
    return [f"{len(ids)} report(s) and index.html written to {out}"]


def _control(args) -> list[str]:
    from analysis.control import control_checks, to_markdown
    from analysis.files import safe_name, write_all

    rows, (sweep,) = _load(args)
    _need_ok(rows, sweep)
    checks = control_checks(rows, args.split, args.metric, args.control)
    text = to_markdown(checks, args.split, args.metric, args.control)
    out = (Path(args.out) if args.out
           else beside(args.results, "tables") / f"{safe_name(sweep)}-control.md")
    write_all({out: text})
    sys.stdout.write(text)
    sys.stdout.flush()
    failed = [c.generator for c in checks if not c.passed]
    args.exit_code = 1 if failed else 0
    return [f"control check written to {out}"] + (
        [f"outside the spread: {', '.join(failed)}"] if failed else [])


def _compare(args) -> list[str]:
    from analysis.compare import Side, compare, to_frame, to_markdown
    from analysis.files import write_all

    a, b = Side.parse(args.a), Side.parse(args.b)  # bad sides fail before reading anything
    rows, ids = _load(args, many=True)
    found = compare(rows, a, b, args.metrics, args.split)
    if not found:
        raise AnalysisError(f"no context holds both {a.label!r} and {b.label!r} on the same "
                            "split, metric and extractor")
    text = to_markdown(found)
    out = Path(args.out) if args.out else beside(args.results, "tables")
    written = write_all({out / "compare.md": text,
                         out / "compare.csv": to_frame(found).to_csv(index=False)})
    sys.stdout.write(text)
    sys.stdout.flush()
    return [f"{len(found)} comparison(s) written to {', '.join(map(str, written))}"]


def _claims(args) -> list[str]:
    from analysis.claims import evaluate, load_claims, to_frame, to_markdown
    from analysis.files import write_all

    claims = load_claims(args.claims)  # a bad claims file fails before reading anything
    rows, ids = _load(args, many=True)
    verdicts = evaluate(rows, claims)
    text = to_markdown(verdicts)
    out = Path(args.out) if args.out else beside(args.results, "tables")
    written = write_all({out / "claims.md": text,
                         out / "claims.csv": to_frame(verdicts).to_csv(index=False)})
    sys.stdout.write(text)
    sys.stdout.flush()
    return [f"{len(claims)} claim(s), {len(verdicts)} verdict(s) written to "
            f"{', '.join(map(str, written))}"]


def _check(args) -> list[str]:
    from analysis.browser import check_report

    print(check_report(args.report, browser=args.browser, screenshot=args.screenshot))
    return [f"screenshot written to {args.screenshot}"] if args.screenshot else []


COMMANDS = {"table": _table, "tables": _tables, "figures": _figures, "report": _report,
            "control": _control, "compare": _compare, "claims": _claims,
            "check-report": _check}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = Root(Path("."))
    args.show = str
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResultFileWarning)
        try:
            if getattr(args, "results", None) is not None:  # a remote root: a local copy
                root = open_root(args.results, args.artifacts)
                args.results, args.show = root.local, root.show
            messages = COMMANDS[args.command](args)
            root.publish()
        except AnalysisError as e:
            # one line, nothing else: warnings about skipped files are not shown on failure
            print(f"error: {one_line(root.show(e))}", file=sys.stderr)
            return 2
        except OSError as e:  # the upload of outputs to object storage
            print(f"error: {one_line(root.show(e))}", file=sys.stderr)
            return 2
    seen = set()
    for w in caught:
        if issubclass(w.category, ResultFileWarning) and str(w.message) not in seen:
            seen.add(str(w.message))
            print(f"warning: {root.show(w.message)}", file=sys.stderr)
    for m in messages:
        print(root.show(m), file=sys.stderr)
    return args.exit_code
