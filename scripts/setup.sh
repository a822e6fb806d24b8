#!/usr/bin/env bash
# Install everything mmrag needs into ./.venv (idempotent; re-runs only when pyproject changes).
#   - system packages: tesseract-ocr (OCR) and poppler-utils, plus redis-server and postgresql
#     (real servers for the tests, see mmrag/testing/servers.py) and chromium (the browser
#     the web page's tests drive; Playwright never downloads one), via apt when run as root
#   - Python packages: the project with its dev extras, editable
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v tesseract >/dev/null 2>&1 || need_apt+=(tesseract-ocr)
command -v pdftoppm >/dev/null 2>&1 || need_apt+=(poppler-utils)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need_apt[*]} with apt-get" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: please install ${need_apt[*]} (e.g. sudo apt-get install ${need_apt[*]}; brew install tesseract redis postgresql chromium)" >&2
  fi
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$python" -m venv .venv
fi
stamp=.venv/.mmrag-installed
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages into .venv (first run: a few minutes)" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  if [ -n "${TORCH_INDEX_URL:-}" ]; then  # e.g. https://download.pytorch.org/whl/cpu
    .venv/bin/python -m pip install -q torch torchvision --index-url "$TORCH_INDEX_URL"
  fi
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi
