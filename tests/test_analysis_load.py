"""Reading result files: filters, corrupt and half-written files, old and newer schema
versions."""

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import AnalysisError, OldSchemaWarning, ResultFileWarning, all_tables, load
from analysis.cli import main
from analysis.synthetic import trial_rows, write_trial


def fid(v):
    return {("forget", "fid"): v, ("retain", "fid"): v / 10}


@pytest.fixture
def results(tmp_path):
    r = tmp_path / "results"
    for seed in (0, 1):
        write_trial(r, trial_rows("l2l", seed, fid(100.0 + seed), sweep="a", alpha=0.5))
        write_trial(r, trial_rows("original", seed, fid(50.0), sweep="a"))
    write_trial(r, trial_rows("l2l", 0, fid(1.0), sweep="b", alpha=0.5, minutes=60))
    write_trial(r, trial_rows("l2l", 2, {}, sweep="b", status="error"))
    return r


def test_load_filters_and_attrs(results):
    df = load(results)
    assert sorted(df["sweep_id"].unique()) == ["a", "b"]
    assert df.attrs["files"] == 6 and df.attrs["skipped"] == []
    assert set(load(results, "b")["sweep_id"]) == {"b"}
    assert len(load(results, ["a", "b"])) == len(df)
    only = load(results, sweep_id="a", method=["l2l"], split="forget", status="ok")
    assert list(only["value"]) == [100.0, 101.0]
    assert set(load(results, status="error")["trial_id"]) == {"t-mae-l2l-None-2"}
    with pytest.raises(AnalysisError, match="unknown column 'colour'"):
        load(results, colour="red")
    with pytest.raises(AnalysisError, match="unknown sweep id 'zz'; known: a, b"):
        load(results, "zz")
    with pytest.raises(AnalysisError, match="no Parquet result files under"):
        load(results / "nothing")


def test_corrupt_and_half_written_files_are_skipped_with_a_warning(results):
    good = results / "sweep_id=a" / "t-mae-l2l-0.5-0.parquet"
    data = good.read_bytes()
    (results / "sweep_id=a" / "half.parquet").write_bytes(data[: len(data) // 2])
    (results / "sweep_id=a" / "noise.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    # a valid Parquet file that is not a result file
    pq.write_table(pa.table({"x": [1]}), results / "sweep_id=a" / "other.parquet")
    pq.write_table(pa.table({"x": [1]}), results / "stray.parquet")  # outside any sweep dir
    with pytest.warns(ResultFileWarning) as record:
        df = load(results)
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 4
    assert any("half.parquet: corrupt or half-written Parquet" in m for m in messages)
    assert any("noise.parquet: corrupt or half-written Parquet" in m for m in messages)
    assert any("other.parquet: not a result file: no column(s) schema_version" in m
               for m in messages)
    assert any("stray.parquet: not inside a sweep_id=<id>/ directory" in m for m in messages)
    assert len(df.attrs["skipped"]) == 4
    assert df.attrs["files"] == 6  # every good file still read, no row of a bad one
    assert set(df["trial_id"]) == {"t-mae-l2l-0.5-0", "t-mae-l2l-0.5-1",
                                   "t-mae-original-None-0", "t-mae-original-None-1",
                                   "t-mae-l2l-None-2"}


def test_only_bad_files_is_an_error(tmp_path):
    d = tmp_path / "r" / "sweep_id=x"
    d.mkdir(parents=True)
    (d / "t.parquet").write_bytes(b"garbage")
    with pytest.warns(ResultFileWarning), \
            pytest.raises(AnalysisError, match=r"no readable result rows under .* \(1 file"):
        load(tmp_path / "r")


def test_schema_v1_files_are_read_and_migrated(tmp_path):
    r = tmp_path / "results"
    write_trial(r, trial_rows("l2l", 0, fid(100.0), alpha=0.5), schema_version=1)
    write_trial(r, trial_rows("l2l", 1, fid(110.0), alpha=0.5))  # v2, same setting
    raw = pq.read_table(next((r / "sweep_id=s-a").glob("*-0.parquet")))
    assert "family" not in raw.column_names and raw["schema_version"][0].as_py() == 1
    with pytest.warns(OldSchemaWarning, match="1 result file.* of schema version 1 read"):
        df = load(r)
    v1 = df[df["schema_version"] == 1].iloc[0]
    assert (v1["family"], v1["setting"], v1["forget_k"], v1["params"]) == ("i2i", "class", 3,
                                                                           "{}")
    assert pd.isna(v1["artifact_dir"]) and pd.isna(v1["peak_memory_mb"])
    assert df.attrs["migrated"] == {1: 1}
    # the migrated row is the same setting as the v2 one: two seeds in one cell
    main_table = all_tables(df)[0]
    assert main_table.cells[(0, 1)].n == 2 and main_table.cells[(0, 1)].mean == 105.0


def test_newer_schema_is_refused_naming_the_file(tmp_path, capsys):
    r = tmp_path / "results"
    write_trial(r, trial_rows("l2l", 0, fid(1.0), alpha=0.5))
    path = write_trial(r, trial_rows("l2l", 1, fid(1.0), alpha=0.5), schema_version=3)
    with pytest.raises(AnalysisError, match=rf"{path} has schema version 3, newer than this "
                                            r"analysis reads \(<= 2\)"):
        load(r)
    assert main(["tables", "--results", str(r)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(path) in err and len(err.splitlines()) == 1
    assert not (r / "tables").exists()


def test_wrong_column_type_is_skipped(tmp_path):
    r = tmp_path / "results"
    write_trial(r, trial_rows("l2l", 0, fid(1.0), alpha=0.5))
    rows = trial_rows("l2l", 1, fid(1.0), alpha=0.5)
    bad = pd.DataFrame(rows).assign(seed="not a number", schema_version=2)
    bad.drop(columns=["created_at"]).to_parquet(r / "sweep_id=s-a" / "bad.parquet")
    with pytest.warns(ResultFileWarning, match="bad.parquet: column 'seed' has the wrong type"):
        df = load(r)
    assert df["seed"].tolist() == [0, 0]


def test_reader_knows_every_column_the_writer_writes(tmp_path):
    """The contract with sweeps/results.py: same newest version, same columns and types, and a
    file written by the real writer loads without a warning."""
    import warnings

    from analysis.load import COLUMNS, NEWEST_SCHEMA
    from sweeps.results import SCHEMA, SCHEMA_VERSION, trial_path, write_rows

    assert SCHEMA_VERSION == NEWEST_SCHEMA
    assert {f.name: f.type for f in SCHEMA} == COLUMNS
    rows = trial_rows("l2l", 0, fid(1.0), alpha=0.5)
    write_rows(trial_path(tmp_path, "s-a", rows[0]["trial_id"]), rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load(tmp_path)["value"].tolist() == [1.0, 0.1]
