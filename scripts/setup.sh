#!/usr/bin/env bash
# Sets up a fresh machine: the Debian packages dataset-fashion-mnist and postgresql (where apt
# can install them; the second only for the tests), a venv in
# .venv with the pinned requirements, and this project installed in editable mode. Idempotent.
#   bash scripts/setup.sh          # PYTHON=python3.11 to choose the interpreter
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# apt_install PACKAGE WHEN_IT_FAILS: a Debian package, where apt can install it (as root or with
# password-less sudo); otherwise, or when apt fails, the second argument is printed.
apt_install() {
  command -v apt-get >/dev/null 2>&1 || { echo "setup: $2"; return 0; }
  local sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo -n"
  if [ "$(id -u)" -ne 0 ] && [ -z "$sudo" ]; then echo "setup: $2"; return 0; fi
  echo "setup: installing the Debian package $1"
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq "$1" >/dev/null || echo "setup: apt could not install $1; $2"
}

[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] \
  || apt_install dataset-fashion-mnist "set L2L_DATA_DIR or go online for Fashion-MNIST"
# PostgreSQL's server, for the tests of the PostgreSQL tracking store (optional for users)
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
  || apt_install postgresql "the PostgreSQL tracking tests will be skipped"

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
echo "setup: installing requirements (first time: a few minutes)"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt
.venv/bin/python -m pip install -q --no-deps -e .
echo "setup: done ($(.venv/bin/python -c 'import torch, ray; print(f"torch {torch.__version__}, ray {ray.__version__}")'))"
