"""Adds the `settings` column to result files written by schema-5 code before that column
existed (2026-12-03, before commit "Results schema 5: settings"): each trial's settings come
from its config in the sweep's spec, found by trial id and checked against the row's
config_hash. Files that already have settings are left alone; each file is replaced atomically.

    python scripts/backfill_settings.py SPEC RESULTS_DIR SWEEP_ID

Prints how many files were filled. Exit 1 when a trial id is not in the spec or its hash
differs (then nothing is written).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq

from contract.schema import sweep_dir, write_rows
from sweeps.spec import load_spec


def main(spec_path: str, results: str, sweep_id: str) -> int:
    configs = {t.trial_id: t.config for t in load_spec(spec_path).trials}
    todo = []
    for path in sorted(sweep_dir(results, sweep_id).glob("*.parquet")):
        table = pq.read_table(path)
        if "settings" in table.column_names and table.column("settings").null_count == 0:
            continue
        rows = table.to_pylist()
        trial = rows[0]["trial_id"]
        cfg = configs.get(trial)
        if cfg is None or cfg.config_hash != rows[0]["config_hash"]:
            print(f"error: {path}: trial {trial} is not this spec's (or its config differs)",
                  file=sys.stderr)
            return 1
        settings = cfg.columns()["settings"]
        todo.append((path, [{**r, "settings": settings} for r in rows]))
    for path, rows in todo:
        write_rows(path, [{k: v for k, v in r.items() if k != "schema_version"} for r in rows])
    print(f"{len(todo)} file(s) filled")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print("usage: python scripts/backfill_settings.py SPEC RESULTS_DIR SWEEP_ID",
              file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
