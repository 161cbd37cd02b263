"""The Ray Tune layer: sweep specs (YAML) -> trials -> Parquet rows and MLflow runs."""
