"""Result analysis: reads the tidy Parquet rows with DuckDB (never imports torch/ray/l2l/sweeps)."""

from analysis.table import AnalysisError, latest_sweep_id, load_rows, paper_table, to_markdown

__all__ = ["AnalysisError", "latest_sweep_id", "load_rows", "paper_table", "to_markdown"]
