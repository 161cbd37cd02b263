"""One self-contained HTML report per sweep, and an index across the reports of a directory.

A report embeds everything it shows (CSS inline, figures as data: URIs, no external link or
script), so it can be mailed, committed or opened offline. A small inline script records after
loading how many images decoded and whether any error occurred, in `<body data-check=...>`,
which `l2l-analysis check-report` reads back from a headless browser.
Each report carries its summary as JSON (`<script id="l2l-summary">`); the index is built from
the summaries of every report in the directory, so reports written at different times share it.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from datetime import datetime, timezone
from pathlib import Path

from analysis import claims as claims_mod
from analysis import stats
from analysis.compare import Comparison, against_paper_method
from analysis.curves import curve_records
from analysis.figures import Figure, all_figures
from analysis.files import safe_name
from analysis.load import Results, as_results, migration_text, timestamp
from analysis.pivot import (PAPER_METRICS, Table, aggregate, failed_trials, fmt_value, legend,
                            speedup_records, tables_from)
from analysis.render import to_html
from contract.schema import SCHEMA_VERSION

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1500px;
padding:0 1.5em 3em;color:#1d1d1f}
h1{font-size:1.6em;margin:.8em 0 .2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}
.meta{color:#555}.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:.4em 0 .2em;font-size:12.5px}
th,td{padding:3px 7px;border-bottom:1px solid #e3e3e3;text-align:right;white-space:nowrap}
thead th{text-align:center;border-bottom:1px solid #999;background:#f6f6f6}
tbody th{text-align:left;font-weight:normal}
tr.group th{text-align:left;font-style:italic;background:#fafafa;font-weight:600}
tr.reference th{color:#555}td.missing{color:#aaa;text-align:center}
.n{color:#888;font-size:.85em}strong{color:#000}
figure{margin:1.2em 0}figcaption{font-weight:600;margin-bottom:.3em}
figure img{max-width:100%;height:auto;border:1px solid #eee}
.note{color:#555;font-size:.9em;margin:.2em 0}.warn{color:#8a4b00}
table.facts td,table.facts th{text-align:left}
nav ul{columns:2;font-size:.9em}
td.win,td.verdict-holds{color:#0a6b2e;font-weight:600}
td.loss,td.verdict-fails{color:#a31515;font-weight:600}td.verdict-inconclusive{color:#777}
"""

CHECK_SCRIPT = """
window.__l2lErrors=[];
window.addEventListener('error',function(e){window.__l2lErrors.push(String(e.message||
(e.target&&e.target.tagName)||e.type));},true);
window.addEventListener('load',function(){
var imgs=Array.prototype.slice.call(document.images);
var ok=imgs.filter(function(i){return i.complete&&i.naturalWidth>0;}).length;
document.body.setAttribute('data-check','images='+ok+'/'+imgs.length+' tables='+
document.querySelectorAll('table').length+' errors='+window.__l2lErrors.length);});
"""


def _esc(x) -> str:
    return html.escape(str(x))


def _img(png: bytes, alt: str) -> str:
    return (f'<img alt="{_esc(alt)}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode("ascii")}">')


TRIAL_COLUMNS = ("trial_id", "status", "generator", "method", "alpha", "retain_mode",
                 "forget_set", "seed", "unlearn_seconds", "peak_memory_mb", "pretrain_cache_hit",
                 "family", "dataset", "code_version", "device")


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def trial_rows(rows) -> list[dict]:
    """One dict per trial (its first row by split and metric), by trial id: TRIAL_COLUMNS."""
    firsts = ", ".join(f"first({c} ORDER BY split, metric)" for c in TRIAL_COLUMNS[1:])
    found = as_results(rows).sql(f"SELECT trial_id, {firsts} FROM rows "
                                 "GROUP BY sweep_id, trial_id ORDER BY trial_id, sweep_id")
    return [dict(zip(TRIAL_COLUMNS, r)) for r in found]


def summary(rows, sweep_id: str, trials: list[dict] | None = None) -> dict:
    """Key facts of one sweep's rows, JSON-serialisable (also what the index shows).
    `trials`: trial_rows(rows) when the caller has them."""
    res = as_results(rows)
    trials = trial_rows(res) if trials is None else trials
    ok = [t for t in trials if t["status"] == "ok"]
    n, first, last, versions = res.sql(
        "SELECT count(*), min(epoch_us(created_at)), max(epoch_us(created_at)), "
        "list(DISTINCT schema_version) FILTER (WHERE schema_version IS NOT NULL) FROM rows")[0]

    def values(col, frame=trials):
        return sorted({fmt_value(t[col]) for t in frame if not _missing(t[col])})

    hits = [bool(t["pretrain_cache_hit"]) for t in ok if not _missing(t["pretrain_cache_hit"])]
    peaks = [t["peak_memory_mb"] for t in ok if not _missing(t["peak_memory_mb"])]
    return {
        "sweep_id": sweep_id, "families": values("family"), "generators": values("generator"),
        "methods": values("method"), "datasets": values("dataset"),
        "trials": len(trials), "ok": len(ok), "failed": len(trials) - len(ok),
        "rows": int(n), "first": timestamp(first), "last": timestamp(last),
        "code_versions": values("code_version"), "devices": values("device"),
        "unlearn_hours": round(sum(t["unlearn_seconds"] for t in ok
                                   if not _missing(t["unlearn_seconds"])) / 3600, 3),
        "peak_memory_mb": float(max(peaks)) if peaks else None,
        "pretrain_cache": f"{sum(hits)} read / {len(hits) - sum(hits)} trained" if hits
        else None,
        "schema_versions": sorted(int(v) for v in versions or []),
    }


def _facts(s: dict) -> str:
    items = [("trials", f"{s['trials']} ({s['ok']} ok, {s['failed']} failed); {s['rows']} rows"),
             ("family", ", ".join(s["families"])), ("data sets", ", ".join(s["datasets"])),
             ("generators", ", ".join(s["generators"])), ("methods", ", ".join(s["methods"])),
             ("finished", f"{s['first']} … {s['last']}"),
             ("unlearning time", f"{s['unlearn_hours']} h in total"),
             ("peak memory", "–" if s["peak_memory_mb"] is None
              else f"{s['peak_memory_mb']:.0f} MB (largest trial)"),
             ("original models", s["pretrain_cache"] or "–"),
             ("code", ", ".join(s["code_versions"])), ("devices", ", ".join(s["devices"])),
             ("schema versions", ", ".join(map(str, s["schema_versions"])))]
    return ('<table class="facts"><tbody>' + "".join(
        f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in items) + "</tbody></table>")


def _trial_list(trials: list[dict]) -> str:
    cols = TRIAL_COLUMNS[:11]
    head = "".join(f"<th>{_esc(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_esc(fmt_value(t[c]))}</td>" for c in cols)
                   + "</tr>" for t in trials)
    return (f"<details><summary>{len(trials)} trials</summary><div class=\"scroll\">"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
            "</details>")


def _num(x: float, decimals: int = 3) -> str:
    return f"{x:.{decimals}f}" if math.isfinite(x) else "–"


def _p(p: float) -> str:
    return "–" if not math.isfinite(p) else ("&lt; 0.001" if p < 0.001 else f"{p:.3f}")


def comparisons_html(found: list[Comparison]) -> str:
    """The paper's method against every other method of the sweep, paired by replicate."""
    if not found:
        return "<p>No paired comparison applies (the sweep lacks the paper's method or any " \
               "other).</p>"
    head = ("generator", "A", "B", "split", "metric", "n", "A mean", "B mean",
            "B − A [95% interval]", "d_z", "p (Holm)", "verdict")
    body = []
    for c in found:
        d = c.diff
        ci = f"{_num(d.mean)} [{_num(d.lo)}, {_num(d.hi)}]" if math.isfinite(d.half) \
            else _num(d.mean)
        metric = c.metric + (f" ({c.extractor})" if c.extractor else "") + \
            (f" {c.direction.arrow}" if c.direction else "")
        cls = ' class="win"' if c.verdict == "B better" else ' class="loss"' \
            if c.verdict == "A better" else ""
        cells = [c.context["generator"], c.a, c.b, c.split, metric, str(d.n), _num(c.a_mean),
                 _num(c.b_mean), ci, _num(c.effect_size)]
        body.append("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in cells)
                    + f"<td>{_p(d.p_adjusted)}</td><td{cls}>{_esc(c.verdict)}</td></tr>")
    return ('<div class="scroll"><table id="comparisons"><thead><tr>'
            + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join(body) + "</tbody></table></div>"
            + f'<p class="note">B − A {_esc(stats.PAIRED_METHOD)} over the {len(found)} '
              "comparisons of this table (intervals each at 95%, uncorrected); a side is "
              "better when the Holm-adjusted p is below 0.05.</p>")


def claims_html(verdicts: list) -> str:
    """The papers' claims that the sweep can test, with their verdicts; the others named."""
    ran = [v for v in verdicts if v.comparison is not None]
    idle = sorted({v.claim.id for v in verdicts if v.comparison is None})
    parts = []
    if ran:
        head = ("claim", "context", "test (margin)", "n", "A → B", "B − A [95% interval]",
                "verdict", "statement")
        body = []
        for v in ran:
            d = v.comparison.diff
            ci = f"{_num(d.mean)} [{_num(d.lo)}, {_num(d.hi)}]" if math.isfinite(d.half) \
                else _num(d.mean)
            cells = [v.claim.id, v.context, f"{v.claim.test} ({v.claim.margin_text})",
                     str(d.n), f"{_num(v.comparison.a_mean)} → {_num(v.comparison.b_mean)}",
                     ci]
            body.append("<tr>" + "".join(f"<td>{_esc(x)}</td>" for x in cells)
                        + f'<td class="verdict-{_esc(v.verdict.replace(" ", "-"))}">'
                          f"{_esc(v.verdict)}</td>"
                        + f'<td style="text-align:left">{_esc(v.claim.claim)}</td></tr>')
        parts.append('<div class="scroll"><table id="claims"><thead><tr>'
                     + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr></thead><tbody>"
                     + "".join(body) + "</tbody></table></div>")
        parts.append('<p class="note">A verdict holds or fails when the 95% paired interval '
                     "lies wholly on one side of the margin, else it is inconclusive "
                     "(<code>l2l-analysis claims</code>, analysis/claims.yaml).</p>")
    if idle:
        parts.append(f'<p class="note">Not testable on this sweep (a side is missing): '
                     f"{_esc(', '.join(idle))}.</p>")
    return "".join(parts)


# The questions beyond the papers, a section each: (name of its tables and figures, heading,
# what the section answers). Tables and figures of other names go under Tables and Figures.
SECTIONS = (
    ("relearn", "Relearning attack",
     "Does the forgetting survive an attacker who fine-tunes the unlearned model on a few "
     "forgotten images? The same attack on the retrained model (which never saw them) is the "
     "reference; the notes give the attack budget that recovers half of the forgetting gap."),
    ("transfer", "Mask transfer",
     "Does the forgetting hold under tasks and masks the model was not unlearned with?"),
    ("curves", "Forgetting over time",
     "How forgetting and retain quality progress during unlearning, against the images drawn, "
     "with the retrained model's level as the target."),
    ("front", "Trade-off fronts",
     "The best trade-offs between forgetting and retain damage each method reaches over its "
     "settings (its Pareto front), rather than one hand-picked point."),
    ("sequence", "Deletion requests in sequence",
     "Forgetting requests that arrive one after another on the same model, against forgetting "
     "them at once and against retraining without them: quality and cost after each request."),
)


def _section_of(name: str) -> str | None:
    return next((key for key, _, _ in SECTIONS if name == key or name.startswith(key + "_")),
                None)


def _figure_html(f: Figure) -> str:
    return (f'<figure id="figure-{_esc(f.name)}"><figcaption>{_esc(f.title)}</figcaption>'
            f'{_img(f.png, f.title)}<p class="note">{_esc(f.caption)}</p></figure>')


def sweep_html(rows, sweep_id: str, tables: list[Table], figures: list[Figure],
               notes: list[str], generated: str, comparisons: list[Comparison] | None = None,
               verdicts: list | None = None) -> tuple[str, dict]:
    """The report page of one sweep (its rows: a Results or a DataFrame) and its summary."""
    res = as_results(rows)
    trials = trial_rows(res)
    s = summary(res, sweep_id, trials)
    failed = failed_trials(res)
    directions = [c.direction for t in tables for c in t.columns]
    parts = [f"<h1>Sweep {_esc(sweep_id)}</h1>",
             f'<p class="meta">Generated {_esc(generated)} by <code>l2l-analysis report</code> '
             f"from the sweep's Parquet result files. {_esc(legend(directions))}.</p>"]
    sections = {key: ([t for t in tables if _section_of(t.name) == key],
                      [f for f in figures if _section_of(f.name) == key])
                for key, _, _ in SECTIONS}
    tables = [t for t in tables if _section_of(t.name) is None]
    figures = [f for f in figures if _section_of(f.name) is None]
    toc = [f'<li><a href="#table-{_esc(t.name)}">{_esc(t.title)}</a></li>' for t in tables]
    toc += [f'<li><a href="#figure-{_esc(f.name)}">{_esc(f.title)}</a></li>' for f in figures]
    toc += [f'<li><a href="#section-{key}">{_esc(title)}</a></li>'
            for key, title, _ in SECTIONS if any(sections[key])]
    toc += ['<li><a href="#comparisons-section">Paired comparisons</a></li>',
            '<li><a href="#claims-section">Claims of the papers</a></li>']
    parts.append(f"<nav><ul>{''.join(toc)}</ul></nav>")
    parts += ['<h2 id="summary">Summary</h2>', _facts(s), _trial_list(trials)]
    if notes or len(failed):
        parts.append('<h2 id="notes">Notes</h2>')
        parts += [f'<p class="note warn">{_esc(n)}</p>' for n in notes]
        if len(failed):
            parts.append(f'<p class="note warn">{len(failed)} failed trial(s), excluded from '
                         f"every table and figure:</p>")
            parts.append("<div class=\"scroll\"><table><thead><tr><th>trial</th><th>method</th>"
                         "<th>generator</th><th>error</th></tr></thead><tbody>" + "".join(
                             f"<tr><td>{_esc(r.trial_id)}</td><td>{_esc(r.method)}</td>"
                             f"<td>{_esc(r.generator)}</td><td style=\"text-align:left\">"
                             f"{_esc(str(r.error)[:300])}</td></tr>"
                             for r in failed.itertuples(index=False)) + "</tbody></table></div>")
    parts.append('<h2 id="tables">Tables</h2>')
    parts += [to_html(t) for t in tables] or ["<p>No successful trials: no tables.</p>"]
    parts.append('<h2 id="figures">Figures</h2>')
    parts += [_figure_html(f) for f in figures] or ["<p>No figures apply to this sweep.</p>"]
    for key, title, what in SECTIONS:  # only the questions this sweep asked
        if any(sections[key]):
            parts += [f'<h2 id="section-{key}">{_esc(title)}</h2>', f"<p>{_esc(what)}</p>"]
            parts += [to_html(t) for t in sections[key][0]]
            parts += [_figure_html(f) for f in sections[key][1]]
    parts.append('<h2 id="comparisons-section">Paired comparisons</h2>')
    parts.append(comparisons_html(comparisons or []))
    parts.append('<h2 id="claims-section">Claims of the papers</h2>')
    parts.append(claims_html(verdicts or []))
    body = "\n".join(parts)
    return _page(f"Sweep {sweep_id}", body, s), s


def _page(title: str, body: str, data: dict | None = None) -> str:
    tables = len(re.findall(r"<table[\s>]", body))
    images = len(re.findall(r"<img[\s>]", body))
    blob = ""
    if data is not None:  # `</` would end the script element early
        blob = ('<script type="application/json" id="l2l-summary">'
                + json.dumps(data, sort_keys=True).replace("</", "<\\/") + "</script>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_esc(title)}</title><style>{CSS}</style><script>{CHECK_SCRIPT}</script>"
            f'{blob}</head>\n<body data-expected-images="{images}" '
            f'data-expected-tables="{tables}">\n{body}\n</body></html>\n')


_SUMMARY = re.compile(r'<script type="application/json" id="l2l-summary">(.*?)</script>', re.S)


def read_summary(text: str) -> dict | None:
    m = _SUMMARY.search(text)
    try:
        return json.loads(m.group(1).replace("<\\/", "</")) if m else None
    except ValueError:
        return None


def index_html(summaries: dict[str, dict], generated: str) -> str:
    """Links to every report (file name -> summary), newest sweep first."""
    order = sorted(summaries.items(), key=lambda kv: (kv[1].get("last") or "", kv[0]),
                   reverse=True)
    head = ("<tr><th>sweep</th><th>family</th><th>generators</th><th>methods</th>"
            "<th>trials</th><th>failed</th><th>finished</th><th>code</th></tr>")
    body = "".join(
        f'<tr><th><a href="{_esc(name)}">{_esc(s["sweep_id"])}</a></th>'
        f'<td>{_esc(", ".join(s.get("families", [])))}</td>'
        f'<td>{_esc(", ".join(s.get("generators", [])))}</td>'
        f'<td style="text-align:left;white-space:normal">{_esc(", ".join(s.get("methods", [])))}'
        f'</td><td>{s.get("trials", "")}</td><td>{s.get("failed", "")}</td>'
        f'<td>{_esc(s.get("last") or "–")}</td>'
        f'<td>{_esc(", ".join(s.get("code_versions", [])))}</td></tr>'
        for name, s in order)
    page = (f"<h1>Sweep reports</h1><p class=\"meta\">{len(summaries)} sweep(s); index "
            f"generated {_esc(generated)} by <code>l2l-analysis report</code>.</p>"
            f'<div class="scroll"><table><thead>{head}</thead><tbody>{body}</tbody></table>'
            "</div>")
    return _page("Sweep reports", page)


def _sweep_page(part: Results, sweep: str, results_dir, metrics, tsne_max: int,
                generated: str) -> tuple[str, dict]:
    """The page of one sweep and its summary (run under `Results.stable`: a damaged file found
    by any of its queries makes it run again, and then the file is among the skipped)."""
    notes = [f"skipped {f}: {why}" for f, why in part.attrs["skipped"]
             if f"sweep_id={sweep}" in Path(f).parts]
    notes += [f"rows of schema version {v} were read and migrated to {SCHEMA_VERSION}: "
              f"{migration_text(v)}" for (v,) in part.sql(
                  "SELECT DISTINCT schema_version FROM rows "
                  f"WHERE schema_version < {SCHEMA_VERSION} ORDER BY 1")]
    records = aggregate(part)  # shared by tables and figures, as are speed and curves
    speed = speedup_records(part, records)
    curves = curve_records(part)
    tables = tables_from(records, speed, metrics, curves=curves)
    figures = all_figures(part, results_dir, metrics, tsne_max, notes, records=records,
                          speed=speed, curves=curves)
    comparisons = against_paper_method(part, metrics)
    verdicts = claims_mod.evaluate(part)
    return sweep_html(part, sweep, tables, figures, notes, generated, comparisons, verdicts)


def build_reports(rows: Results, results_dir, out_dir, sweep_ids: list[str], *,
                  metrics=PAPER_METRICS, tsne_max: int = 100) -> dict[Path, str]:
    """{path: html} for each sweep's report and the index (not yet written). The index also
    lists reports already in `out_dir` that these sweeps do not replace. Files skipped while
    reading (`rows.attrs["skipped"]`) are named in the report of their sweep. `rows`: a
    Results (or a DataFrame) of every sweep to report on."""
    rows = as_results(rows)
    out_dir = Path(out_dir)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    pages: dict[Path, str] = {}
    summaries: dict[str, dict] = {}
    if out_dir.is_dir():
        for old in sorted(out_dir.glob("*.html")):
            if old.name != "index.html":
                s = read_summary(old.read_text(encoding="utf-8", errors="replace"))
                if s:
                    summaries[old.name] = s
    for sweep in sweep_ids:
        text, s = rows.only([sweep]).stable(lambda part: _sweep_page(
            part, sweep, results_dir, metrics, tsne_max, generated))
        name = f"{safe_name(sweep)}.html"
        pages[out_dir / name] = text
        summaries[name] = s
    pages[out_dir / "index.html"] = index_html(summaries, generated)
    return pages
