"""`l2l-analysis control`: the convergence check of the protocol, on synthetic result rows."""
from __future__ import annotations

import pandas as pd
import pytest

from analysis.cli import main
from analysis.control import control_checks
from analysis.load import AnalysisError, Results
from analysis.synthetic import trial_rows


def _rows(originals, controls, generator="mae"):
    rows = []
    for pseed, (o, c) in enumerate(zip(originals, controls)):
        for method, v in (("original", o), ("finetune_retain", c)):
            rows += trial_rows(method, 0, {("retain", "fid"): v, ("forget", "fid"): 50.0},
                               generator=generator, pretrain_seed=pseed,
                               trial_id=f"t-{generator}-{method}-{pseed}")
    return rows


def test_a_control_within_the_spread_of_the_originals_passes():
    rows = Results.from_frame(pd.DataFrame(_rows([10.0, 12.0, 14.0], [10.5, 11.0, 15.0])))
    (check,) = control_checks(rows)
    assert check.spread == pytest.approx(2.0)
    assert check.deltas == {(0, 0): 0.5, (1, 0): -1.0, (2, 0): 1.0}
    assert check.passed


def test_a_control_that_improves_beyond_the_spread_fails_per_generator():
    rows = Results.from_frame(pd.DataFrame(
        _rows([10.0, 10.5, 11.0], [7.0, 7.2, 7.1], "mae")
        + _rows([20.0, 22.0, 24.0], [20.1, 22.5, 23.0], "vqgan")))
    checks = {c.generator: c for c in control_checks(rows)}
    assert not checks["mae/tiny"].passed and checks["vqgan/tiny"].passed


def test_one_original_gives_no_spread_and_is_refused():
    rows = Results.from_frame(pd.DataFrame(_rows([10.0], [9.0])))
    with pytest.raises(AnalysisError, match="at least two replicates"):
        control_checks(rows)


def test_cli_writes_the_table_and_exits_1_when_an_original_fails(tmp_path, capsys):
    from contract.schema import trial_path, write_rows

    rows = _rows([10.0, 10.5, 11.0], [7.0, 7.2, 7.1])
    for tid in {r["trial_id"] for r in rows}:
        write_rows(trial_path(tmp_path, "s-a", tid), [r for r in rows if r["trial_id"] == tid])
    out = tmp_path / "control.md"
    assert main(["control", "--results", str(tmp_path), "--out", str(out)]) == 1
    text = out.read_text()
    assert "outside the spread: improves the originals" in text and "mae/tiny" in text
    assert "outside the spread: mae/tiny" in capsys.readouterr().err


def test_the_way_a_control_moves_follows_the_metric_direction_and_says_mixed():
    from analysis.control import to_markdown

    rows = Results.from_frame(pd.DataFrame(
        _rows([10.0, 10.5, 11.0], [12.0, 8.0, 13.0], "mae")
        + _rows([10.0, 10.5, 11.0], [14.0, 14.5, 15.0], "vqgan")))
    text = to_markdown(control_checks(rows))
    assert "| mae/tiny |" in text and "mixed: some originals improve, some worsen" in text
    assert "outside the spread: worsens the originals" in text  # higher FID is worse
