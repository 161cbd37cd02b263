"""The convergence check of the image-to-image protocol, as code rather than prose: does the
`finetune_retain` control (the unlearning budget spent on retain images only) move an
original's retain metric beyond the spread over independent originals?

For each generator (and extractor), with one original per pretraining seed:
    spread  = standard deviation of the originals' values over pretraining seeds
    delta_i = control_i - original_i, paired by pretraining seed (and trial seed)
An original passes when |delta_i| <= spread: the control's change is within what a different
original changes anyway. A control that *improves* the metric beyond the spread (a lower retain
FID) says the original was not converged and that a baseline's retain gains would be continued
training; one that worsens it beyond the spread says that the budget harms the original.
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import mean, stdev

from analysis.load import AnalysisError, Results
from contract.metrics import direction


@dataclass(frozen=True)
class Check:
    generator: str  # name/size
    extractor: str | None
    originals: dict[tuple[int, int], float]  # (pretrain_seed, seed) -> original's value
    controls: dict[tuple[int, int], float]  # the control's, same keys where both ran
    spread: float  # std of the originals over replicates
    split: str = "retain"
    metric: str = "fid"

    @property
    def deltas(self) -> dict[tuple[int, int], float]:
        return {k: self.controls[k] - v for k, v in self.originals.items() if k in self.controls}

    @property
    def passed(self) -> bool:
        return bool(self.deltas) and all(abs(d) <= self.spread for d in self.deltas.values())


def control_checks(rows: Results, split: str = "retain", metric: str = "fid",
                   control: str = "finetune_retain", reference: str = "original") -> list[Check]:
    found = rows.sql("""
        SELECT generator || '/' || coalesce(generator_size, '') AS gen, extractor, method,
               pretrain_seed, seed, avg(value)
        FROM rows
        WHERE status = 'ok' AND split = $split AND metric = $metric
          AND method IN ($control, $reference)
        GROUP BY ALL ORDER BY ALL""",
                     {"split": split, "metric": metric, "control": control,
                      "reference": reference})
    groups: dict[tuple, dict[str, dict]] = {}
    for gen, extractor, method, pseed, seed, value in found:
        groups.setdefault((gen, extractor), {reference: {}, control: {}})[method][
            (pseed, seed)] = value
    checks = []
    for (gen, extractor), by in groups.items():
        originals = by[reference]
        if len(originals) < 2 or not by[control]:
            continue  # no spread without two originals, nothing to check without the control
        checks.append(Check(gen, extractor, originals, by[control],
                            stdev(originals.values()), split, metric))
    if not checks:
        raise AnalysisError(f"no generator has both {reference!r} on at least two replicates "
                            f"and {control!r} for {split} {metric}")
    return checks


def _way(c: Check) -> str:
    """Which way the control moved the originals: the metric's own direction decides what
    "improves" means (lower FID, higher cosine); mixed when the originals disagree."""
    d = direction("i2i", c.split, c.metric)
    score = [d.score(c.originals[k] + v) - d.score(c.originals[k])
             for k, v in c.deltas.items()] if d is not None else []
    if score and all(x > 0 for x in score):
        return "improves the originals"
    if score and all(x < 0 for x in score):
        return "worsens the originals"
    return "mixed: some originals improve, some worsen"


def to_markdown(checks: list[Check], split: str = "retain", metric: str = "fid",
                control: str = "finetune_retain") -> str:
    d = direction("i2i", split, metric)
    better = "" if d is None else f" ({d.words})"
    lines = [f"Control check: {split} {metric}{better}, {control} against the original, "
             "paired by pretraining seed; spread = std of the originals over pretraining seeds.",
             "",
             "| generator | extractor | originals (mean ± spread) | control mean | "
             "per original: control − original | verdict |",
             "|---|---|---|---|---|---|"]
    for c in checks:
        origs = list(c.originals.values())
        deltas = ", ".join(f"{d:+.3g}" for d in c.deltas.values())
        verdict = "within the spread" if c.passed else f"outside the spread: {_way(c)}"
        lines.append(f"| {c.generator} | {c.extractor or '–'} | {mean(origs):.4g} ± "
                     f"{c.spread:.3g} (n = {len(origs)}) | {mean(c.controls.values()):.4g} | "
                     f"{deltas} | {verdict} |")
    return "\n".join(lines) + "\n"
