#!/usr/bin/env bash
# Quickstart: set everything up, run the quickstart sweep on local Ray with a sqlite MLflow store,
# and print the paper-style table. About 6 minutes on a 2-core CPU the first time (install aside).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/l2l-sweep run sweeps/specs/quickstart.yaml "$@"
echo
.venv/bin/l2l-analysis table --results results
echo
echo "Parquet results: $(pwd)/results   (query: read_parquet('results/**/*.parquet', hive_partitioning = true))"
echo "MLflow store:    sqlite:///$(pwd)/mlflow.db   (browse: .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db)"
