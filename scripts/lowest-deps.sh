#!/usr/bin/env bash
# Check pyproject's lower bounds: install the lowest version it allows of every direct
# dependency (uv's lowest-direct resolution) into .venv-lowest, then run pytest there.
#   scripts/lowest-deps.sh [pytest args...]      (a few GB of downloads the first time)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -x .venv/bin/uv ] || .venv/bin/python -m pip install -q uv
.venv/bin/uv pip compile -q --python-version 3.11 --resolution lowest-direct --extra dev \
  pyproject.toml -o .venv-lowest.txt
[ -x .venv-lowest/bin/python ] || .venv/bin/uv venv -q -p python3.11 .venv-lowest
VIRTUAL_ENV=$PWD/.venv-lowest .venv/bin/uv pip install -q -r .venv-lowest.txt
VIRTUAL_ENV=$PWD/.venv-lowest .venv/bin/uv pip install -q --no-deps -e .
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv-lowest/bin/python -m pytest -p no:cacheprovider "$@"
