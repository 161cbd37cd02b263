"""The `table` command's paper-style table: one section per generator, every metric.

Kept for `l2l-analysis table` and its callers; it is a rendering of the same pivot as the
other tables (analysis/pivot.py), with the rows of image-to-image sweeps grouped by generator.
GAN rows get their own table with speedup (analysis.pivot.gan_tables) after it.
"""

from __future__ import annotations

import pandas as pd

from analysis.load import AnalysisError, newest_sweep, read_results
from analysis.pivot import (Table, aggregate, failed_trials, fmt_stat, gan_tables, pivot,
                            speedup_records)
from analysis.render import MISSING, _sections, markdown_rows
from analysis.render import to_markdown as table_markdown

LEGEND = "↑ higher is better, ↓ lower is better; mean ± std over seeds, n = seeds"
BOLD = ("Bold: best unlearning method of the column (original and retrain are references), "
        "on unrounded means.")

__all__ = ["AnalysisError", "latest_sweep_id", "load_rows", "paper_table", "to_markdown"]


def load_rows(results_dir, sweep_id: str | None = None) -> pd.DataFrame:
    """All result rows under `results_dir`, or those of one sweep (AnalysisError if unknown)."""
    return read_results(results_dir, sweep_id)


def latest_sweep_id(results_dir) -> str:
    """The sweep whose newest trial (max created_at) is the newest."""
    return newest_sweep(read_results(results_dir))


def generator_table(records: list[dict]) -> Table | None:
    """The non-GAN records (as from pivot.aggregate): methods x (split, metric), one group
    per generator."""
    records = [r for r in records if r["family"] != "gan"]
    return pivot(records, name="paper", title="paper table", groups=("generator",),
                 group_label=lambda r: str(r["generator"]))


def _failed(rows: pd.DataFrame) -> list[str]:
    return sorted(set(failed_trials(rows)["trial_id"]))


def paper_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Wide table: columns `generator`, `method` (row label), then one column per split x metric.

    Cells are `mean ± std (n=K)` over seeds (`–` when missing); only `status == 'ok'` rows are
    used, and the ids of failed trials are in `.attrs["failed_trials"]`.
    """
    table = generator_table(aggregate(rows))
    if table is None:
        out = pd.DataFrame(columns=["generator", "method"])
    else:
        data = []
        for r, row in enumerate(table.rows):
            cells = []
            for c, col in enumerate(table.columns):
                stat = table.cells.get((r, c))
                cells.append(MISSING if stat is None else " ".join(fmt_stat(stat, col.decimals)))
            data.append([row.group, row.labels[0], *cells])
        out = pd.DataFrame(data, columns=["generator", "method",
                                          *(c.header for c in table.columns)])
    out.attrs["failed_trials"] = _failed(rows)
    return out


def to_markdown(rows: pd.DataFrame) -> str:
    """Markdown for result rows (as from load_rows): the paper table, one section per
    generator when there are several, GAN tables, a note on failed trials and a footer."""
    lines: list[str] = []
    records = aggregate(rows)
    table = generator_table(records)
    if table is not None:
        best = table.best()
        sections = _sections(table)
        for gen, idx, cols in sections:
            if len(sections) > 1:
                lines += [f"### {gen}", ""]
            lines += markdown_rows(table, idx, cols, best) + [""]
        if best:
            lines += [BOLD, ""]
    for gan in gan_tables(records, speedup_records(rows)):
        lines += [table_markdown(gan, heading="###")]
    if not lines:
        lines += ["(no successful trials)", ""]
    failed = _failed(rows)
    if failed:
        lines += [f"Note: {len(failed)} failed trial(s) excluded: {', '.join(failed)}.", ""]
    sweeps = sorted(rows["sweep_id"].dropna().unique())
    trials = rows[["sweep_id", "trial_id"]].drop_duplicates().shape[0]
    lines.append(f"Sweep {', '.join(sweeps)}; {trials} trials; {len(rows)} rows. {LEGEND}")
    return "\n".join(lines) + "\n"
