"""Grid trials whose results a sweep already holds: `l2l-sweep run` with the id of a sweep whose
Tune state is gone (another machine, a wiped disk, a new session) but whose Parquet files are
there runs only the trials without a finished file.

A trial counts as finished when its file reads as a result file, every row has status "ok"
and the rows' config hash is the one this spec gives the trial now (so an edited spec, or a
trial that failed, runs again and its file is replaced whole). The Parquet files are the
results contract; nothing else of the earlier run is needed.
"""
from __future__ import annotations

from contract.schema import SchemaError, read_table, trial_path
from contract.storage import Location
from sweeps.spec import Trial


def is_finished(results: Location, sweep_id: str, trial: Trial) -> bool:
    path = trial_path(results, sweep_id, trial.trial_id)
    if not path.is_file():
        return False
    try:
        table = read_table(path)
    except SchemaError:  # damaged or half-written: the rerun replaces it
        return False
    statuses = set(table.column("status").to_pylist())
    hashes = set(table.column("config_hash").to_pylist())
    return statuses == {"ok"} and hashes == {trial.config.config_hash}


def unfinished(results: Location, sweep_id: str, trials: list[Trial]) -> list[Trial]:
    """The trials of `trials` that still have to run, in their order."""
    return [t for t in trials if not is_finished(results, sweep_id, t)]
