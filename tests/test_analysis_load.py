"""Reading result files through the results contract: filters, corrupt, half-written and
damaged files, schema versions 1 and 2 (migrated) and newer ones (refused), and the two ways a
file is read (scanned by DuckDB, read whole by contract.schema.read_table) agreeing."""

import warnings

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import (AnalysisError, OldSchemaWarning, ResultFileWarning, aggregate, all_tables,
                      load, open_results)
from analysis.cli import main
from analysis.synthetic import trial_rows, write_trial
from contract.schema import beside
from contract.schema import COLUMNS, MIGRATIONS, SCHEMA_VERSION, trial_path, write_rows


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
    assert df.attrs["files"] == 6 and df.attrs["skipped"] == [] and df.attrs["migrated"] == {}
    assert list(df.columns) == list(COLUMNS)  # the contract's columns, in its order
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


def damage_page(path, column: str) -> None:
    """Overwrites the header of `column`'s first data page; the footer stays intact."""
    meta = pq.read_metadata(path)
    index = meta.schema.to_arrow_schema().names.index(column)
    offset = meta.row_group(0).column(index).data_page_offset
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * 16)


def test_a_file_damaged_behind_an_intact_footer_is_skipped_when_read(results, capsys):
    bad = results / "sweep_id=a" / "t-mae-l2l-0.5-1.parquet"
    damage_page(bad, "value")
    pq.read_metadata(bad)  # the footer still reads: the file passes the cheap check
    with pytest.warns(ResultFileWarning, match="t-mae-l2l-0.5-1.parquet: corrupt or "
                                               "half-written Parquet"):
        df = load(results, "a")
    assert "t-mae-l2l-0.5-1" not in set(df["trial_id"]) and df.attrs["files"] == 3
    assert [f for f, _ in df.attrs["skipped"]] == [str(bad)]
    # the commands query the files directly: the table is made of the other files, and says so
    assert main(["table", "--results", str(results), "--sweep-id", "a", "--all",
                 "--out", str(results / "t.md")]) == 0
    out, err = capsys.readouterr()
    assert "| l2l | 10.00 (n=1) | 100.00 (n=1) |" in out  # seed 1 is gone
    assert out.rstrip().endswith("Sweep a; 3 trials; 6 rows.")
    assert "warning: skipped" in err and "t-mae-l2l-0.5-1.parquet" in err


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
    write_trial(r, trial_rows("l2l", 1, fid(110.0), alpha=0.5))  # current version, same setting
    raw = pq.read_table(next((r / "sweep_id=s-a").glob("*-0.parquet")))
    assert "family" not in raw.column_names and raw["schema_version"][0].as_py() == 1
    with pytest.warns(OldSchemaWarning) as record:
        df = load(r)
    (message,) = [str(w.message) for w in record]
    assert message.startswith(f"1 result file(s) of schema version 1 read and migrated to "
                              f"{SCHEMA_VERSION}: ")
    assert all(MIGRATIONS[v] in message for v in (1, 2, 3))  # what was filled in
    assert message.endswith("left empty: artifact_dir, peak_memory_mb, pretrain_cache_hit, value_se")
    v1 = df[df["schema_version"] == 1].set_index("split")
    assert tuple(v1.loc["forget", ["family", "setting", "forget_k", "params"]]) == (
        "i2i", "class", 3, "{}")
    assert tuple(v1["direction"]) == ("higher", "lower")  # forget FID, retain FID: registry
    assert set(v1["identity_version"]) == {1}
    assert v1["artifact_dir"].isna().all() and v1["peak_memory_mb"].isna().all()
    assert df.attrs["migrated"] == {1: 1}
    # the migrated row is the same setting as the current one: two seeds in one cell
    main_table = all_tables(df)[0]
    assert main_table.cells[(0, 1)].n == 2 and main_table.cells[(0, 1)].mean == 105.0
    with pytest.warns(OldSchemaWarning):  # the same from the files, queried directly
        assert all_tables(open_results(r))[0].cells == main_table.cells


def test_schema_v2_files_take_directions_from_the_registry(tmp_path):
    r = tmp_path / "results"
    old = trial_rows("l2l", 0, {("forget", "mia_auc"): 0.3, ("forget", "zeta"): 1.0},
                     alpha=0.5)
    for row in old:  # what a v2 writer said: MIA AUC lower is better, zeta higher
        row["higher_is_better"] = row["metric"] == "zeta"
    write_trial(r, old, schema_version=2)
    write_trial(r, trial_rows("l2l", 1, {("forget", "mia_auc"): 0.4}, alpha=0.5))
    raw = pq.read_table(next((r / "sweep_id=s-a").glob("*-0.parquet")))
    assert "higher_is_better" in raw.column_names and "direction" not in raw.column_names
    with pytest.warns(OldSchemaWarning, match=f"of schema version 2 read and migrated to "
                                              f"{SCHEMA_VERSION}: v2: direction from the "
                                              "metric registry"):
        df = load(r)
    assert "higher_is_better" not in df.columns
    v2 = df[df["schema_version"] == 2].set_index("metric")
    assert v2.loc["mia_auc", "direction"] == "target:0.5"  # the registry's, not the file's
    assert v2.loc["zeta", "direction"] == "higher"  # unknown to the registry: the file's
    assert set(v2["identity_version"]) == {1}
    assert df.attrs["migrated"] == {2: 1}
    (mia,) = [r for r in aggregate(df) if r["metric"] == "mia_auc"]
    assert mia["stat"].n == 2 and mia["direction"].text == "target:0.5"  # v2 + now, one setting


def test_schema_v4_files_have_no_image_standard_errors(tmp_path):
    r = tmp_path / "results"
    write_trial(r, trial_rows("l2l", 0, {("retain", "fid"): 10.0}, alpha=0.5), schema_version=4)
    with pytest.warns(OldSchemaWarning, match=f"schema version 4 read and migrated to "
                                              f"{SCHEMA_VERSION}: v4: value_se = null"):
        df = load(r)
    assert df["value_se"].isna().all() and df["value"].tolist() == [10.0]


def test_schema_v3_files_name_the_default_extractor_and_never_average_with_another(tmp_path):
    """v3 did not record the feature extractor: its metrics on features read as computed on the
    default `classifier`; values of another extractor are a column of their own."""
    r = tmp_path / "results"
    old = {("retain", "fid"): 10.0, ("retain", "cosine"): 0.9, ("retain", "psnr"): 20.0}
    write_trial(r, trial_rows("l2l", 0, old, alpha=0.5), schema_version=3)
    write_trial(r, trial_rows("l2l", 1, {("retain", "fid"): 30.0}, alpha=0.5))
    write_trial(r, trial_rows("l2l", 2, {("retain", "fid"): 50.0, ("retain", "cosine"): 0.5},
                              alpha=0.5, extractor="clip:ViT-H-14"))
    assert "extractor" not in pq.read_table(next((r / "sweep_id=s-a").glob("*-0.parquet"))) \
        .column_names
    with pytest.warns(OldSchemaWarning, match=f"schema version 3 read and migrated to "
                                              f"{SCHEMA_VERSION}: v3: extractor = 'classifier'"):
        df = load(r)
    v3 = df[df["schema_version"] == 3].set_index("metric")["extractor"]
    assert v3.fillna("none").to_dict() == {"fid": "classifier", "cosine": "classifier",
                                           "psnr": "none"}  # pixels: no extractor
    t = all_tables(df)[1]  # i2i_metrics
    assert [c.header for c in t.columns] == [
        "retain FID (classifier) ↓", "retain FID (CLIP ViT-H-14) ↓",
        "retain cos (classifier) ↑", "retain cos (CLIP ViT-H-14) ↑", "retain PSNR ↑"]
    fids = [t.cells[(0, c)] for c in (0, 1)]
    assert [(s.mean, s.n) for s in fids] == [(20.0, 2), (50.0, 1)]  # v3 + v4 classifier; clip


def test_newer_schema_is_refused_naming_the_file(tmp_path, capsys):
    r = tmp_path / "results"
    write_trial(r, trial_rows("l2l", 0, fid(1.0), alpha=0.5))
    path = write_trial(r, trial_rows("l2l", 1, fid(1.0), alpha=0.5))
    table = pq.read_table(path)
    pq.write_table(table.set_column(0, "schema_version", pa.array([SCHEMA_VERSION + 1] * 2,
                                                                  pa.int32())), path)
    with pytest.raises(AnalysisError, match=rf"{path}: schema version {SCHEMA_VERSION + 1}, "
                                            rf"newer than this code reads \(<= {SCHEMA_VERSION}\)"):
        load(r)
    assert main(["tables", "--results", str(r)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(path) in err and len(err.splitlines()) == 1
    assert not beside(r, "tables").exists()


def test_wrong_column_type_is_skipped(tmp_path):
    r = tmp_path / "results"
    write_trial(r, trial_rows("l2l", 0, fid(1.0), alpha=0.5))
    rows = trial_rows("l2l", 1, fid(1.0), alpha=0.5)
    bad = pd.DataFrame(rows).assign(seed="not a number")
    bad.drop(columns=["created_at"]).to_parquet(r / "sweep_id=s-a" / "bad.parquet")
    with pytest.warns(ResultFileWarning, match="bad.parquet: column 'seed' has the wrong type"):
        df = load(r)
    assert df["seed"].tolist() == [0, 0]


def test_both_ways_of_reading_a_file_give_the_same_rows(tmp_path):
    """A file in the contract's types is scanned by DuckDB; the same rows with castable
    types (int32 seeds, no created_at, an extra column) are read whole by the contract."""
    a, b = tmp_path / "a", tmp_path / "b"
    rows = trial_rows("l2l", 3, fid(7.0), alpha=0.25, trial_id="t")
    write_rows(trial_path(a, "s", "t"), [{**r, "sweep_id": "s"} for r in rows])
    table = pq.read_table(trial_path(a, "s", "t"))
    odd = table.set_column(table.column_names.index("seed"), "seed",
                           table.column("seed").cast(pa.int32()))
    trial_path(b, "s", "t").parent.mkdir(parents=True)
    pq.write_table(odd, trial_path(b, "s", "t"))
    scanned, whole = open_results(a), open_results(b)
    assert [f.table is None for f in scanned.files] == [True]
    assert [f.table is None for f in whole.files] == [False]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither path warns
        pd.testing.assert_frame_equal(scanned.frame(), whole.frame())
    assert all_tables(scanned)[0].cells == all_tables(whole)[0].cells


def test_current_files_load_without_a_warning(tmp_path):
    """The contract's own writer: the file is scanned, nothing migrated or skipped."""
    rows = trial_rows("l2l", 0, fid(1.0), alpha=0.5)
    write_rows(trial_path(tmp_path, "s-a", rows[0]["trial_id"]), rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = load(tmp_path)
    assert df["value"].tolist() == [1.0, 0.1]
    assert df["direction"].tolist() == ["higher", "lower"]
    assert df.dtypes["created_at"] == "datetime64[us, UTC]"
