"""Command line: `python -m analysis table` (console script `l2l-analysis`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from analysis.table import AnalysisError, latest_sweep_id, load_rows, to_markdown


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="l2l-analysis", description="Analyse sweep results stored as tidy Parquet rows.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    t = sub.add_parser(
        "table", help="paper-style Markdown table of one sweep",
        description="Print the paper-style table (mean ± std over seeds) of one sweep as "
                    "Markdown and write it to a file.")
    t.add_argument("--results", default="results", metavar="DIR",
                   help="results directory holding sweep_id=<id>/*.parquet (default: %(default)s)")
    t.add_argument("--sweep-id", metavar="ID",
                   help="sweep to tabulate (default: the one with the newest trial)")
    t.add_argument("--out", metavar="FILE",
                   help="Markdown output file (default: <results>/tables/<sweep_id>.md)")
    return p


def _write_atomic(path: Path, text: str) -> None:
    # temp file in the same directory + rename, so readers never see a half-written table
    path.parent.mkdir(parents=True, exist_ok=True)
    # open(..., "x") rather than mkstemp: keeps the umask permissions (mkstemp makes 0600)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _table(args) -> int:
    results = Path(args.results)
    sweep_id = args.sweep_id or latest_sweep_id(results)
    text = to_markdown(load_rows(results, sweep_id))
    out = Path(args.out) if args.out else results / "tables" / f"{sweep_id}.md"
    try:
        _write_atomic(out, text)
    except OSError as e:
        raise AnalysisError(f"cannot write {out}: {e.strerror or e}") from e
    sys.stdout.write(text)  # stdout is exactly the file content
    sys.stdout.flush()  # so the table comes before the stderr note in a terminal
    print(f"table written to {out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _table(args)
    except AnalysisError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
