"""Result analysis: reads only the tidy Parquet rows (never imports torch/ray/l2l/sweeps).

`load(results, sweep_id=None, **filters)` gives the rows as a DataFrame; `all_tables(rows)`
the paper tables; the `l2l-analysis` command writes tables, figures and HTML reports.
"""

from analysis.load import (AnalysisError, OldSchemaWarning, ResultFileWarning, load,
                           read_results)
from analysis.pivot import Stat, Table, aggregate, all_tables
from analysis.table import latest_sweep_id, load_rows, paper_table, to_markdown

__all__ = ["AnalysisError", "OldSchemaWarning", "ResultFileWarning", "Stat", "Table",
           "aggregate", "all_tables", "latest_sweep_id", "load", "load_rows", "paper_table",
           "read_results", "to_markdown"]
