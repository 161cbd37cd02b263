"""Renderings of one `Table` (analysis/pivot.py): Markdown, LaTeX (booktabs), CSV and HTML.

All four read the same unrounded statistics and the same `Table.best()`, so a cell is bold in
every format or in none. Missing cells are `–` (LaTeX `--`, CSV empty), never 0. Each table's
legend says what its arrows mean (`↑`, `↓`, `→0.5`: best at 0.5). `to_frame` gives the cell
texts as a DataFrame, e.g. for a notebook.
"""

from __future__ import annotations

import csv
import html
import io
import math
import textwrap

import pandas as pd

from analysis.pivot import Table, extractor_label, fmt_stat

MISSING = "–"
WIDTH = 100  # columns of the terminal the headline is written for


def _columns_for(table: Table, rows: list[int]) -> list[int]:
    # a column without any value in these rows is left out of their section
    return [c for c in range(len(table.columns)) if any((r, c) in table.cells for r in rows)]


def _sections(table: Table) -> list[tuple[str, list[int], list[int]]]:
    """(group title, rows, columns) per group; an ungrouped table keeps every column."""
    groups = table.groups()
    if len(groups) == 1 and not groups[0][0]:
        return [("", groups[0][1], list(range(len(table.columns))))]
    return [(g, idx, _columns_for(table, idx)) for g, idx in groups]


# ---------------------------------------------------------------- Markdown

def _md_cell(table: Table, r: int, c: int, best: set) -> str:
    stat = table.cells.get((r, c))
    if stat is None:
        return MISSING
    main, n = fmt_stat(stat, table.columns[c].decimals)
    return f"**{main}** {n}" if (r, c) in best else f"{main} {n}"


def markdown_rows(table: Table, rows: list[int], cols: list[int], best: set) -> list[str]:
    """A pipe table of the given rows and columns (no title)."""
    head = [*table.row_header, *(table.columns[c].header for c in cols)]
    body = [[*table.rows[r].labels, *(_md_cell(table, r, c, best) for c in cols)]
            for r in rows]
    esc = [[str(x).replace("|", r"\|") for x in line] for line in [head, *body]]
    lines = ["| " + " | ".join(line) + " |" for line in esc]
    lines.insert(1, "|" + "|".join("---" for _ in head) + "|")
    return lines


def to_markdown(table: Table, heading: str = "###") -> str:
    best = table.best()
    lines = [f"{heading} {table.title}", ""]
    for group, rows, cols in _sections(table):
        if group:
            lines += [f"**{group}**", ""]
        lines += markdown_rows(table, rows, cols, best) + [""]
    lines += [f"Note: {n}" for n in table.notes] + [table.legend + "."]
    return "\n".join(lines) + "\n"


def headline_markdown(table: Table, heading: str = "###") -> str:
    """A narrow rendering for a terminal (the `l2l-analysis table` headline): headers without
    the feature extractor (named once in a note) or the `all` split, and the number of
    replicates once per row (column `n`) instead of in every cell when the row's cells share
    it."""
    best = table.best()
    extractors = {c.key[-1] for c in table.columns if c.key[-1]}
    lines = [f"{heading} {table.title}", ""]

    def header(c) -> str:
        levels = list(c.levels)
        if len(extractors) == 1:
            levels[-1] = levels[-1].replace(f" ({extractor_label(next(iter(extractors)))})", "")
        levels = [x for x in levels if x != "all"]
        return " ".join([*levels, c.arrow]).strip()

    for group, rows, cols in _sections(table):
        ns = {table.cells[(r, c)].n for r in rows for c in cols if (r, c) in table.cells}
        per_row = len(ns) != 1  # otherwise n is said once, in the group's heading
        if group or not per_row:
            n_text = "" if per_row else f"n = {ns.pop()} replicates"
            lines += [f"**{group}**" + (f" ({n_text})" if group and n_text else n_text), ""]
        head = [*table.row_header, *(header(table.columns[c]) for c in cols)] + \
            (["n"] if per_row else [])
        body = []
        for r in rows:
            row_ns = {table.cells[(r, c)].n for c in cols if (r, c) in table.cells}
            one = len(row_ns) == 1
            cells = []
            for c in cols:
                stat = table.cells.get((r, c))
                if stat is None:
                    cells.append(MISSING)
                    continue
                # three decimals at most: a terminal cell, not a paper's
                main, n = fmt_stat(stat, min(3, table.columns[c].decimals))
                main = f"**{main}**" if (r, c) in best else main
                cells.append(main if one else f"{main} {n}")
            n_cell = ([str(row_ns.pop()) if one else MISSING] if per_row else [])
            body.append([*table.rows[r].labels, *cells, *n_cell])
        esc = [[str(x).replace("|", r"\|") for x in line] for line in [head, *body]]
        out = ["| " + " | ".join(line) + " |" for line in esc]
        out.insert(1, "|" + "|".join("---" for _ in head) + "|")
        lines += out + [""]
    notes = [f"Note: {n}" for n in table.notes] + [table.legend + "."]
    if len(extractors) == 1:
        notes.insert(0, f"Features of FID and cos: {extractor_label(next(iter(extractors)))}.")
    lines += [textwrap.fill(n, WIDTH) for n in notes]  # prose wrapped for the terminal
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- LaTeX

_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
        "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}", "–": "--", "±": r"$\pm$", "↑": r"$\uparrow$",
        "↓": r"$\downarrow$", "→": r"$\rightarrow$", "×": r"$\times$"}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def _tex_cell(table: Table, r: int, c: int, best: set) -> str:
    stat = table.cells.get((r, c))
    if stat is None:
        return "--"
    main, n = fmt_stat(stat, table.columns[c].decimals)
    main = main.replace(" ± ", r" \pm ")
    main = rf"\mathbf{{{main}}}" if (r, c) in best else main
    return rf"${main}$~{{\scriptsize {tex_escape(n)}}}"


def _runs(keys: list[tuple]) -> list[tuple[int, int, tuple]]:
    """Maximal runs of equal keys: (first index, length, key)."""
    runs: list = []
    for i, k in enumerate(keys):
        if runs and runs[-1][2] == k:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1, k)
        else:
            runs.append((i, 1, k))
    return runs


def to_latex(table: Table) -> str:
    """A booktabs table (\\toprule, \\cmidrule, \\midrule, \\bottomrule); needs
    \\usepackage{booktabs}. Upper header levels span their columns."""
    best = table.best()
    nrow = len(table.row_header)
    cols = table.columns
    width = nrow + len(cols)
    depth = len(cols[0].levels) if cols else 1
    lines = ["% generated by l2l-analysis; needs \\usepackage{booktabs}",
             r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{tex_escape(table.title)}. {tex_escape(table.legend)}.}}",
             rf"\label{{tab:{table.name}}}",
             rf"\begin{{tabular}}{{@{{}}{'l' * nrow}{'r' * len(cols)}@{{}}}}", r"\toprule"]
    for level in range(depth - 1):
        runs = _runs([c.levels[:level + 1] for c in cols])
        cells = [""] * nrow + [rf"\multicolumn{{{n}}}{{c}}{{{tex_escape(k[-1])}}}"
                               for _, n, k in runs]
        lines.append(" & ".join(cells) + r" \\")
        lines.append("".join(rf"\cmidrule(lr){{{nrow + s + 1}-{nrow + s + n}}}"
                             for s, n, _ in runs))
    last = [tex_escape(" ".join([c.levels[-1], c.arrow]).strip()) for c in cols]
    lines.append(" & ".join([*map(tex_escape, table.row_header), *last]) + r" \\")
    lines.append(r"\midrule")
    for i, (group, rows, _) in enumerate(_sections(table)):
        if group:
            if i:
                lines.append(r"\midrule")
            lines.append(rf"\multicolumn{{{width}}}{{@{{}}l}}{{\textit{{{tex_escape(group)}}}}}"
                         r" \\")
        for r in rows:
            cells = [*map(tex_escape, table.rows[r].labels),
                     *(_tex_cell(table, r, c, best) for c in range(len(cols)))]
            lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [rf"\par\footnotesize {tex_escape(n)}" for n in table.notes]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- CSV

def _num(x: float) -> str:
    return repr(float(x)) if math.isfinite(x) else ""


def to_csv(table: Table) -> str:
    """One line per table row; per column `<header> mean`, `std`, `n`, `lo`, `hi` (the 95%
    interval; unrounded numbers, empty when missing) and `best` (True/False, empty when
    missing)."""
    best = table.best()
    grouped = any(r.group for r in table.rows)
    head = (["group"] if grouped else []) + list(table.row_header)
    for col in table.columns:
        head += [f"{col.header} {part}" for part in ("mean", "std", "n", "lo", "hi", "best")]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(head)
    for r, row in enumerate(table.rows):
        line = ([row.group] if grouped else []) + list(row.labels)
        for c in range(len(table.columns)):
            s = table.cells.get((r, c))
            line += [""] * 6 if s is None else [
                _num(s.mean), _num(s.std), str(s.n), _num(s.lo), _num(s.hi),
                str((r, c) in best)]
        w.writerow(line)
    return out.getvalue()


# ---------------------------------------------------------------- HTML

def _html_cell(table: Table, r: int, c: int, best: set) -> str:
    stat = table.cells.get((r, c))
    if stat is None:
        return f'<td class="missing" title="no value">{MISSING}</td>'
    main, n = fmt_stat(stat, table.columns[c].decimals)
    main = html.escape(main)
    if (r, c) in best:
        main = f"<strong>{main}</strong>"
    tip = f"mean {stat.mean!r}, 95% interval [{stat.lo!r}, {stat.hi!r}], std {stat.std!r}, " \
        f"n {stat.n}"
    return f'<td title="{html.escape(tip)}">{main} <span class="n">{html.escape(n)}</span></td>'


def to_html(table: Table) -> str:
    """A <table> with spanning upper header levels, group rows and bold best cells."""
    best = table.best()
    cols = table.columns
    depth = len(cols[0].levels) if cols else 1
    esc = html.escape
    head = []
    for level in range(depth):
        cells = [f'<th rowspan="{depth}" scope="col">{esc(h)}</th>'
                 for h in table.row_header] if level == 0 else []
        if level < depth - 1:
            cells += [f'<th colspan="{n}" scope="colgroup">{esc(k[-1])}</th>'
                      for _, n, k in _runs([c.levels[:level + 1] for c in cols])]
        else:
            cells += [f'<th scope="col">{esc(c.levels[-1])} {c.arrow}</th>' for c in cols]
        head.append("<tr>" + "".join(cells) + "</tr>")
    body = []
    width = len(table.row_header) + len(cols)
    for group, rows, _ in _sections(table):
        if group:
            body.append(f'<tr class="group"><th colspan="{width}">{esc(group)}</th></tr>')
        for r in rows:
            row = table.rows[r]
            cls = ' class="reference"' if row.reference else ""
            body.append(f"<tr{cls}>" + "".join(f'<th scope="row">{esc(x)}</th>'
                                               for x in row.labels)
                        + "".join(_html_cell(table, r, c, best) for c in range(len(cols)))
                        + "</tr>")
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in table.notes)
    return (f'<figure class="table" id="table-{esc(table.name)}">'
            f"<figcaption>{esc(table.title)}</figcaption>"
            f'<div class="scroll"><table><thead>{"".join(head)}</thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>{notes}</figure>')


# ---------------------------------------------------------------- DataFrame

def to_frame(table: Table) -> pd.DataFrame:
    """The cell texts: a `group` column for grouped tables, the row header, then one column
    per column header (`mean ± half (n=K)`, half the 95% interval; `–` when missing)."""
    grouped = any(r.group for r in table.rows)
    data = []
    for r, row in enumerate(table.rows):
        cells = []
        for c, col in enumerate(table.columns):
            stat = table.cells.get((r, c))
            cells.append(MISSING if stat is None else " ".join(fmt_stat(stat, col.decimals)))
        data.append([*([row.group] if grouped else []), *row.labels, *cells])
    return pd.DataFrame(data, columns=[*(["group"] if grouped else []), *table.row_header,
                                       *(c.header for c in table.columns)])


FORMATS = {"md": to_markdown, "tex": to_latex, "csv": to_csv}
