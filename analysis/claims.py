"""The papers' claims as data (analysis/claims.yaml), evaluated from result rows.

A claim compares side B with side A (analysis/compare.py) on a split and metric; in every
context that holds both sides it gets the paired difference d = B - A over common replicates,
its 95% interval, an effect size, and a verdict from the claim's test and margin:

    holds          the interval lies wholly on the claim's side of the margin
    fails          the interval lies wholly on the other side
    inconclusive   the interval straddles the margin (too few seeds, or too much noise)
    not run        the rows lack a side, or fewer than two common replicates

The interval is a two-sided 95% one, so each verdict is a one-sided test at 2.5%. Claims are not
corrected for their number: read one verdict as one test, and a page of them as a page of tests.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.compare import Comparison, Side, compare
from analysis.load import AnalysisError
from contract.inputs import InputError, read_yaml
from analysis.pivot import fmt_number, fmt_value

CLAIMS_FILE = Path(__file__).with_name("claims.yaml")
TESTS = ("increase", "decrease", "noninferior", "equivalent")
FIELDS = ("id", "paper", "claim", "a", "b", "split", "metric", "test", "margin")
VERDICTS = ("holds", "fails", "inconclusive", "not run")


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    claim: str
    a: Side
    b: Side
    split: str
    metric: str
    test: str
    margin: float  # in the metric's units, or a share of A's mean when `relative`
    relative: bool = False

    @property
    def margin_text(self) -> str:
        return f"{self.margin * 100:g}%" if self.relative else f"{self.margin:g}"


def _margin(value, where: str) -> tuple[float, bool]:
    text = str(value).strip()
    relative = text.endswith("%")
    try:
        m = float(text[:-1] if relative else text)
    except ValueError:
        raise AnalysisError(f"{where}.margin: {text[:40]!r} is not a number or a percentage "
                            "such as 10%") from None
    if not math.isfinite(m) or m < 0:
        raise AnalysisError(f"{where}.margin: must be a finite number >= 0, not {text[:40]!r}")
    return (m / 100, True) if relative else (m, False)


def parse_claims(raw, source: str = "claims") -> list[Claim]:
    """Claims from parsed YAML (a list of mappings with FIELDS); AnalysisError names the
    claim and field that is wrong."""
    if not isinstance(raw, list) or not raw:
        raise AnalysisError(f"{source}: expected a non-empty list of claims")
    out, seen = [], set()
    for i, c in enumerate(raw):
        where = f"{source}[{i}]"
        if not isinstance(c, dict):
            raise AnalysisError(f"{where}: expected a mapping with {', '.join(FIELDS)}")
        missing = [f for f in FIELDS if f not in c]
        unknown = sorted(set(map(str, c)) - set(FIELDS))
        if missing or unknown:
            raise AnalysisError(f"{where}: " + (f"missing {', '.join(missing)}" if missing
                                                else f"unknown field {unknown[0][:40]!r}")
                                + f" (fields: {', '.join(FIELDS)})")
        for f in ("id", "paper", "claim", "a", "b", "split", "metric", "test"):
            if not isinstance(c[f], str) or not c[f].strip() or c[f] != c[f].strip():
                raise AnalysisError(f"{where}.{f}: expected non-empty text without leading or "
                                    "trailing spaces")
        where = f"{source}: claim {c['id'][:60]!r}"
        if c["id"] in seen:
            raise AnalysisError(f"{where}: the id is used twice")
        seen.add(c["id"])
        if c["test"] not in TESTS:
            raise AnalysisError(f"{where}.test: {c['test'][:40]!r} is not one of "
                                f"{', '.join(TESTS)}")
        margin, relative = _margin(c["margin"], where)
        out.append(Claim(c["id"], c["paper"], c["claim"], Side.parse(c["a"]), Side.parse(c["b"]),
                         c["split"], c["metric"], c["test"], margin, relative))
    return out


def load_claims(path: str | Path | None = None) -> list[Claim]:
    """The claims of a YAML file (default: the papers', analysis/claims.yaml)."""
    path = Path(path) if path is not None else CLAIMS_FILE
    try:
        raw = read_yaml(path, f"claims file {path}")
    except InputError as e:
        raise AnalysisError(str(e)) from None
    return parse_claims(raw, str(path))


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    comparison: Comparison | None  # None: not run
    verdict: str
    margin: float  # in the metric's units
    reason: str = ""

    @property
    def context(self) -> str:
        if self.comparison is None:
            return "–"
        c = self.comparison.context
        parts = [fmt_value(c[k]) for k in ("generator", "dataset", "task", "mask_ratio")
                 if c.get(k) is not None]
        # the forget set too: a sweep of several requests has one verdict per request
        if c.get("setting") == "item" and c.get("forget_k") is not None:
            parts.append(f"items k={fmt_value(c['forget_k'])}")
        elif c.get("forget_set") is not None:
            parts.append(f"forget {fmt_value(c['forget_set'])}")
        return ", ".join(parts)


def decide(claim: Claim, c: Comparison) -> Verdict:
    """The verdict of one claim in one context."""
    d = c.diff
    common = [c.a_values[k] for k in c.a_values if k in c.b_values]
    a_mean = math.fsum(common) / len(common) if common else math.nan
    m = claim.margin * abs(a_mean) if claim.relative else claim.margin
    if d.n < 2 or not math.isfinite(d.half):
        return Verdict(claim, c, "not run", m, f"{d.n} common replicate(s); 2 needed")
    lo, hi = d.lo, d.hi
    if claim.test == "increase":
        verdict = "holds" if lo > m else "fails" if hi < m else "inconclusive"
    elif claim.test == "decrease":
        verdict = "holds" if hi < -m else "fails" if lo > -m else "inconclusive"
    elif claim.test == "equivalent":
        verdict = "holds" if -m <= lo and hi <= m else \
            "fails" if lo > m or hi < -m else "inconclusive"
    else:  # noninferior: the worsening w in the metric's direction
        if c.direction is None or c.direction.kind not in ("higher", "lower"):
            return Verdict(claim, c, "not run", m, f"{claim.metric} on {claim.split} has no "
                                                   "higher/lower direction")
        w_lo, w_hi = (lo, hi) if c.direction.kind == "lower" else (-hi, -lo)
        verdict = "holds" if w_hi < m else "fails" if w_lo > m else "inconclusive"
    return Verdict(claim, c, verdict, m)


def evaluate(rows, claims: list[Claim] | None = None) -> list[Verdict]:
    """Every claim in every context the rows hold both of its sides for; a claim with no such
    context is one `not run` verdict saying which side is missing."""
    claims = load_claims() if claims is None else claims
    out = []
    for claim in claims:
        try:
            found = compare(rows, claim.a, claim.b, metrics=(claim.metric,),
                            splits=(claim.split,))
        except AnalysisError as e:
            out.append(Verdict(claim, None, "not run", math.nan, str(e)))
            continue
        if not found:
            out.append(Verdict(claim, None, "not run", math.nan,
                               "no context holds both sides"))
        out += [decide(claim, c) for c in found]
    return out


COLUMNS = ("claim", "paper", "context", "test", "margin", "n", "A mean", "B mean", "B - A",
           "lo", "hi", "relative", "effect size (d_z)", "verdict", "reason", "statement")


def _relative(v: Verdict) -> float:
    c = v.comparison
    if c is None:
        return math.nan
    common = [c.a_values[k] for k in c.a_values if k in c.b_values]
    a = math.fsum(common) / len(common) if common else math.nan
    return c.diff.mean / abs(a) if a else math.nan


def to_frame(verdicts: list[Verdict]) -> pd.DataFrame:
    rows = []
    for v in verdicts:
        c = v.comparison
        d = c.diff if c is not None else None
        rows.append((v.claim.id, v.claim.paper, v.context, v.claim.test, v.margin,
                     d.n if d else 0, c.a_mean if c else math.nan, c.b_mean if c else math.nan,
                     d.mean if d else math.nan, d.lo if d else math.nan,
                     d.hi if d else math.nan, _relative(v), c.effect_size if c else math.nan,
                     v.verdict, v.reason, v.claim.claim))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def summary(verdicts: list[Verdict]) -> dict[str, dict[str, int]]:
    """claim id -> verdict -> number of contexts."""
    out: dict[str, dict[str, int]] = {}
    for v in verdicts:
        out.setdefault(v.claim.id, {k: 0 for k in VERDICTS})[v.verdict] += 1
    return out


def to_markdown(verdicts: list[Verdict], decimals: int = 3) -> str:
    num = lambda x: fmt_number(x, decimals)  # noqa: E731
    lines = ["| claim | context | test (margin) | n | A → B | B − A [95% interval] | relative "
             "| d_z | verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for v in verdicts:
        c = v.comparison
        test = f"{v.claim.test} ({v.claim.margin_text}" + (
            f" = {num(v.margin)})" if v.claim.relative and math.isfinite(v.margin) else ")")
        if c is None:
            lines.append(f"| {v.claim.id} | – | {test} | 0 | – | – | – | – | "
                         f"not run: {v.reason} |")
            continue
        d = c.diff
        interval = f"{num(d.mean)} [{num(d.lo)}, {num(d.hi)}]" if math.isfinite(d.half) \
            else num(d.mean)
        rel = _relative(v)
        verdict = f"**{v.verdict}**" if v.verdict in ("holds", "fails") else v.verdict
        if v.reason:
            verdict += f": {v.reason}"
        lines.append(f"| {v.claim.id} | {v.context} | {test} | {d.n} | {num(c.a_mean)} → "
                     f"{num(c.b_mean)} | {interval} | "
                     f"{'–' if not math.isfinite(rel) else f'{rel:+.1%}'} | "
                     f"{num(c.effect_size)} | {verdict} |")
    lines += ["", "Claims:", ""]
    seen = set()
    for v in verdicts:
        if v.claim.id not in seen:
            seen.add(v.claim.id)
            lines.append(f"- `{v.claim.id}` ({v.claim.paper}): {v.claim.claim}; A = "
                         f"`{v.claim.a.label}`, B = `{v.claim.b.label}`, {v.claim.split} "
                         f"{v.claim.metric}.")
    counts = {k: sum(v.verdict == k for v in verdicts) for k in VERDICTS}
    lines += ["", ", ".join(f"{n} {k}" for k, n in counts.items()) + " (claim x context). "
              "B − A is paired by replicate (same original and test images); a verdict holds or "
              "fails when the 95% interval lies wholly on one side of the margin (a one-sided "
              "test at 2.5%), else it is inconclusive; not corrected for the number of claims; "
              "d_z = mean / std of the paired differences."]
    return "\n".join(lines) + "\n"


__all__ = ["CLAIMS_FILE", "Claim", "TESTS", "VERDICTS", "Verdict", "decide", "evaluate",
           "load_claims", "parse_claims", "summary", "to_frame", "to_markdown"]
