"""Fault injection: the faults of issue 8 and the test that proves each one.

| fault | what must happen | test |
|---|---|---|
| SIGINT of the sweep driver mid-run, then `resume` | every trial's rows in Parquet exactly once, one FINISHED MLflow run per trial and one parent run, no process left | tests/test_resume.py::test_an_interrupted_sweep_resumes_with_every_trial_once[sigint] |
| SIGKILL of the sweep driver mid-run, then `resume` | the same | ...[sigkill] (a driver on a running cluster; a driver that started its own local Ray leaves Ray's DashboardAgent / RuntimeEnvAgent behind after SIGKILL, as docs/sweeps.md says) |
| a grid trial that raises | retried (`max_failures`), its rows once, its MLflow run reopened (attempts = 2) | tests/test_end_to_end.py::test_sweep_writes_parquet_mlflow_and_table_then_reuses_caches (L2L_SWEEP_INJECT_FAILURES) |
| a search point that raises | retried from its checkpoint: finished seeds kept, not run again | tests/test_sweep_search.py::test_a_failed_point_is_retried_from_its_checkpoint |
| a trial that fails for good / whose worker process dies | an error row, a FAILED run, the sweep goes on and exits 1 | tests/test_end_to_end.py::test_a_failing_trial_is_recorded_and_the_sweep_goes_on, tests/test_mlflow_tracking.py::test_a_trial_whose_worker_died_still_gets_an_error_row_and_a_failed_run |
| a worker node killed in the two-node cluster | its trial rescheduled on another node, the sweep completes, every row once | tests/test_cluster.py::test_a_trial_on_a_killed_worker_node_is_rescheduled_and_the_sweep_completes |
| a corrupt entry in the model cache | detected by its hash, rebuilt | tests/test_cache.py::test_second_call_is_a_hit_and_a_corrupt_entry_is_rebuilt (the cache alone), test_a_real_trial_detects_and_rebuilds_a_corrupt_original_model (here: a real trial), test_a_damaged_cache_entry_of_any_kind_is_rebuilt (truncated or incomplete meta.json, missing weights) |
| a half-written cache entry (a crash mid-build) | never read | tests/test_cache.py::test_half_written_entries_are_never_read |
| a corrupt Parquet file among the results | reported and skipped | tests/test_analysis_load.py::test_corrupt_and_half_written_files_are_skipped_with_a_warning (the API), test_the_analysis_command_reports_and_skips_corrupt_files (here: the command); test_a_dry_run_estimates_past_corrupt_files (the dry run's estimate skips them) |

Bad input (specs, command lines): tests/test_bad_inputs.py; security: tests/test_security.py.
"""
from __future__ import annotations

import json
import logging
import shutil

import pytest

from analysis.cli import main as analysis_main
from analysis.synthetic import trial_rows, write_trial


def _corrupt(path) -> None:
    """Flip bytes in the middle of a file, keeping its size (a bad disk block, a torn copy)."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 16] = bytes(b ^ 0xFF for b in data[mid:mid + 16])
    path.write_bytes(bytes(data))


def test_a_real_trial_detects_and_rebuilds_a_corrupt_original_model(sweep_cache, tmp_path, caplog,
                                                                  one_thread):
    """The original model's weights are damaged (their hash no longer matches meta.json): a
    trial notices, trains the model again, caches it again under the same key, and finishes;
    the next reader gets a valid entry. (One thread: two compete badly on a loaded 2-core
    machine.)"""
    from conftest import tiny_sweep_spec

    from l2l import cache, experiment

    cache_dir = tmp_path / "cache"
    shutil.copytree(sweep_cache, cache_dir)  # the session's cache stays intact
    (gen,) = [p for p in (cache_dir / "generator").iterdir() if (p / cache.META).is_file()]
    _corrupt(gen / cache.WEIGHTS)

    spec = tiny_sweep_spec("faults")
    cfg = {k: v for k, v in spec.items() if k not in ("name", "grid", "resources")}
    cfg.update(method="original", cache_dir=str(cache_dir), eval={**cfg["eval"],
                                                                  "images_per_class": 10})
    with caplog.at_level(logging.WARNING, logger="l2l.cache"):
        result = experiment.run(experiment.parse_config(cfg))

    assert result.caches["generator"]["hit"] is False  # not read: rebuilt
    assert result.caches["classifier"]["hit"] is True  # the intact entry next to it: read
    assert result.caches["generator"]["path"] == str(gen)  # in place, under the same key
    assert f"cache entry {gen} is corrupt (weights hash mismatch); rebuilding" in caplog.text
    assert {m.split for m in result.metrics} == {"forget", "retain", "all"}  # it finished
    assert cache._read(gen) is not None  # valid again: the next trial reads it
    meta = json.loads((gen / cache.META).read_text())
    assert meta["sha256"] == cache.sha256_file(gen / cache.WEIGHTS)
    assert not [p for p in (cache_dir / "generator").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("damage", ["meta truncated", "meta missing its hash", "weights gone"])
def test_a_damaged_cache_entry_of_any_kind_is_rebuilt(damage, tmp_path, caplog):
    """Beyond a hash mismatch (tests/test_cache.py): the other ways an entry breaks."""
    import torch

    from l2l import cache

    calls = []

    def build():
        calls.append(1)
        return {"w": torch.full((3,), float(len(calls)))}, {}

    _, first = cache.get_or_build(tmp_path, "classifier", {"k": 1}, build)
    meta = first.path / cache.META
    if damage == "meta truncated":
        meta.write_text(meta.read_text()[:20])
    elif damage == "meta missing its hash":
        meta.write_text(json.dumps({k: v for k, v in json.loads(meta.read_text()).items()
                                    if k != "sha256"}))
    else:
        (first.path / cache.WEIGHTS).unlink()
    with caplog.at_level(logging.WARNING, logger="l2l.cache"):
        state, again = cache.get_or_build(tmp_path, "classifier", {"k": 1}, build)
    assert again.hit is False and len(calls) == 2 and state["w"].tolist() == [2.0] * 3
    assert cache._read(first.path) is not None  # whole again
    if damage != "weights gone":
        assert f"cache entry {first.path} is unreadable" in caplog.text


def _results(root):
    rows = {("forget", "fid"): 100.0, ("retain", "fid"): 10.0}
    for seed in (0, 1):
        write_trial(root, trial_rows("l2l", seed, rows, alpha=0.5))
        write_trial(root, trial_rows("original", seed, rows))
    good = next((root / "sweep_id=s-a").glob("*.parquet"))
    data = good.read_bytes()
    (root / "sweep_id=s-a" / "half.parquet").write_bytes(data[: len(data) // 2])
    (root / "sweep_id=s-a" / "noise.parquet").write_bytes(b"PAR1 not a parquet file PAR1")


def test_the_analysis_command_reports_and_skips_corrupt_files(tmp_path, capsys):
    results = tmp_path / "results"
    _results(results)
    out = tmp_path / "tables"
    assert analysis_main(["tables", "--results", str(results), "--out", str(out),
                          "--format", "csv"]) == 0
    err = capsys.readouterr().err.splitlines()
    warnings = [ln for ln in err if ln.startswith("warning: ")]
    assert len(warnings) == 2, err
    assert any("half.parquet: corrupt or half-written Parquet" in w for w in warnings)
    assert any("noise.parquet: corrupt or half-written Parquet" in w for w in warnings)
    import pandas as pd

    main = pd.read_csv(out / "s-a" / "i2i_main.csv").set_index("method")
    n = main[[c for c in main.columns if c.endswith(" n")]]
    assert sorted(main.index) == ["l2l", "original"] and (n == 2).all().all()  # both seeds read


def test_a_dry_run_estimates_past_corrupt_files(tmp_path, capsys):
    """`--dry-run` reads earlier results for its estimate; corrupt files there are skipped and
    the readable ones still count."""
    import datetime as dt

    from contract.schema import trial_path, write_rows
    from sweeps.cli import main as sweep_main
    from sweeps.spec import load_spec

    results = tmp_path / "results"
    _results(results)  # other trials' rows plus two corrupt files
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: tiny\nforget_set: {classes: [5, 7, 9]}\n"
                    "grid: {method: [original, l2l], alpha: [0.25], seed: [0, 1]}\n")
    for t in load_spec(spec).trials[:2]:  # two of the spec's trials ran before
        write_rows(trial_path(results, "s-a", t.trial_id), [{
            "trial_id": t.trial_id, "status": "ok", "method": t.config.method,
            "config_hash": t.config.config_hash,
            "unlearn_seconds": 100.0, "eval_seconds": 20.0, "metric": "fid", "value": 1.0,
            "created_at": dt.datetime.now(dt.timezone.utc)}])
    assert sweep_main(["run", str(spec), "--dry-run", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "dry run: spec tiny (grid): 4 trials" in out
    assert f"2 of 4 from earlier results in {results}" in out
    assert "nothing was started or written (dry run)" in out


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_damaged_result_file_of_a_trial_is_replaced_when_the_trial_runs_again(damage, tmp_path):
    """Result files are written to a temporary name and renamed: a rerun (retry, resume)
    replaces a damaged file whole, and the reader sees only the new one."""
    import pandas as pd

    from contract.schema import COLUMNS, trial_path, write_rows

    rows = [{k: v for k, v in r.items() if k in COLUMNS}
            for r in trial_rows("l2l", 0, {("forget", "fid"): 1.0, ("retain", "fid"): 2.0},
                                alpha=0.5)]
    path = trial_path(tmp_path, "s-a", rows[0]["trial_id"])
    write_rows(path, rows)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] if damage == "truncated" else b"")
    write_rows(path, rows)  # the trial's next attempt
    assert pd.read_parquet(path).value.tolist() == [1.0, 2.0]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left over
