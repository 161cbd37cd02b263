"""The page that `l2l-analysis table` prints: a sweep's headline, or (`full`) every metric.

It holds no table of its own. The headline (`pivot.headline_tables`, rendered narrow by
`render.headline_markdown` for a 100-column terminal): forget and retain FID and cosine, the
replicates and the cost per method (image-to-image), or FID, forgetting and speedup per request
(GAN). The full page: the image-to-image `i2i_metrics` tables (every metric, a section per
generator, one table per data set / task / mask ratio) and the GAN tables with speedup. Both end
with the failed trials and a footer.
"""

from __future__ import annotations

from analysis.load import as_results
from analysis.pivot import LAYOUTS, Layout, Table, aggregate, cost_records, failed_trials, \
    headline_tables, i2i_tables, overview, speedup_records, tables_from
from analysis.render import headline_markdown
from analysis.render import to_markdown as table_markdown


def page_tables(rows) -> list[Table]:
    """The tables of the page. `rows`: a Results or a DataFrame of result rows."""
    res = as_results(rows)
    records = aggregate(res)
    page = {**LAYOUTS, "i2i": Layout(LAYOUTS["i2i"].slices, LAYOUTS["i2i"].artifact_groups,
                                     lambda recs, metrics: i2i_tables(recs, which=("metrics",)))}
    return tables_from(records, speedup_records(res, records), layouts=page)


def headline(rows) -> list[Table]:
    """The headline tables. `rows`: a Results or a DataFrame of result rows."""
    res = as_results(rows)
    records = aggregate(res)
    return headline_tables(records + cost_records(res) + speedup_records(res, records))


def to_markdown(rows, full: bool = False) -> str:
    """The page for these rows (normally one sweep's): the headline (or with `full`, every
    metric), a note naming the failed trials (never averaged) and a footer with the sweep,
    trial and row counts."""
    return as_results(rows).stable(lambda res: _page(res, full))


def _page(res, full: bool) -> str:
    counts = overview(res)
    if full:
        lines = [table_markdown(t, heading="##") for t in page_tables(res)]
    else:
        lines = [headline_markdown(t, heading="##") for t in headline(res)]
        if lines:
            lines.append("Every metric: `l2l-analysis table --all`.\n")
    lines = lines or ["(no successful trials)\n"]
    if counts["ok_rows"] < counts["rows"]:
        failed = sorted(set(failed_trials(res)["trial_id"]))
        if failed:
            lines.append(f"Note: {len(failed)} failed trial(s) excluded: "
                         f"{', '.join(failed)}.\n")
    lines.append(f"Sweep {', '.join(res.sweep_ids)}; {counts['trials']} trials; "
                 f"{counts['rows']} rows.")
    return "\n".join(lines) + "\n"


__all__ = ["headline", "page_tables", "to_markdown"]
