"""The results contract: what a trial's Parquet rows look like, shared by the writer
(`sweeps`), the reader (`analysis`) and the trial library (`l2l`, for metric names only).

  contract.metrics   the metric registry: name, family, split, unit, direction (pure Python)
  contract.identity  which config fields identify a trial, versioned (pure Python)
  contract.schema    columns and types, schema version, migration, partition layout, the
                     atomic writer and the checked reader (pyarrow)

This file imports nothing, so that `import contract.metrics` costs no pyarrow.
"""
