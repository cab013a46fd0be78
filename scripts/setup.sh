#!/usr/bin/env bash
# Create .venv and install translate with its test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch is pinned here (a CPU wheel); pyproject.toml keeps a range so users may bring their own build.
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,ct2]'
echo "set up: $(.venv/bin/python -c 'import torch, translate; print("torch", torch.__version__)')"
