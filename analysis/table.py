"""The page that `l2l-analysis table` prints: every metric of a sweep in one Markdown page.

It holds no table of its own: the image-to-image `i2i_metrics` tables (every metric, a section
per generator, one table per data set / task / mask ratio) and the GAN tables with speedup, from
analysis/pivot.py, rendered by analysis/render.py, then the failed trials and a footer.
"""

from __future__ import annotations

from analysis.load import as_results
from analysis.pivot import LAYOUTS, Layout, Table, aggregate, failed_trials, i2i_tables, \
    overview, speedup_records, tables_from
from analysis.render import to_markdown as table_markdown


def page_tables(rows) -> list[Table]:
    """The tables of the page. `rows`: a Results or a DataFrame of result rows."""
    res = as_results(rows)
    records = aggregate(res)
    page = {**LAYOUTS, "i2i": Layout(LAYOUTS["i2i"].slices, LAYOUTS["i2i"].artifact_groups,
                                     lambda recs, metrics: i2i_tables(recs, which=("metrics",)))}
    return tables_from(records, speedup_records(res, records), layouts=page)


def to_markdown(rows) -> str:
    """The page for these rows (normally one sweep's): its tables, a note naming the failed
    trials (never averaged) and a footer with the sweep, trial and row counts."""
    return as_results(rows).stable(_page)


def _page(res) -> str:
    counts = overview(res)
    lines = [table_markdown(t, heading="##") for t in page_tables(res)] or \
        ["(no successful trials)\n"]
    if counts["ok_rows"] < counts["rows"]:
        failed = sorted(set(failed_trials(res)["trial_id"]))
        if failed:
            lines.append(f"Note: {len(failed)} failed trial(s) excluded: "
                         f"{', '.join(failed)}.\n")
    lines.append(f"Sweep {', '.join(res.sweep_ids)}; {counts['trials']} trials; "
                 f"{counts['rows']} rows.")
    return "\n".join(lines) + "\n"


__all__ = ["page_tables", "to_markdown"]
