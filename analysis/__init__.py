"""Result analysis: reads only the tidy Parquet rows (never imports torch/ray/l2l/sweeps).

`load(results, sweep_id=None, **filters)` gives the rows as a DataFrame; `open_results(results)`
the same rows as a DuckDB view for SQL (`Results.sql`); `all_tables(rows)` the paper tables
(either kind of rows); the `l2l-analysis` command writes tables, figures and HTML reports.
Columns, schema versions and metric directions are the results contract's (`contract/`).
"""

from analysis.load import (AnalysisError, OldSchemaWarning, ResultFileWarning, Results, load,
                           newest_sweep, open_results, read_results)
from analysis.pivot import Stat, Table, aggregate, all_tables, speedup_records

__all__ = ["AnalysisError", "OldSchemaWarning", "ResultFileWarning", "Results", "Stat",
           "Table", "aggregate", "all_tables", "load", "newest_sweep", "open_results",
           "read_results", "speedup_records"]
