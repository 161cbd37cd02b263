#!/usr/bin/env bash
# Quickstart: set everything up, run the quickstart sweep on local Ray with a sqlite MLflow store,
# and print the headline table. On a 2-core CPU: about 5.5 minutes the first time, install
# included (about 2 of them; 3.5 the sweep), about 1.2 minutes again (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/l2l-sweep run sweeps/specs/quickstart.yaml "$@"
echo
.venv/bin/l2l-analysis table --results results
echo
echo "Parquet results: $(pwd)/results   (query: read_parquet('results/**/*.parquet', hive_partitioning = true))"
echo "MLflow store:    sqlite:///$(pwd)/mlflow.db   (browse: .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db)"
