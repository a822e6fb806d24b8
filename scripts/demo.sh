#!/usr/bin/env bash
# Set up (if needed) and run the main job on the embedded store (no servers):
# ingest documents, then list what was indexed.
#   scripts/demo.sh [PATH...]     (default: ../shared/data/corpus-mix if present,
#                                  else a small generated sample corpus)
# With no Hugging Face hub it runs the offline profile and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export MMRAG_DATA_DIR=${MMRAG_DATA_DIR:-$PWD/.mmrag}
paths=("$@")
if [ ${#paths[@]} -eq 0 ]; then
  if [ -d ../shared/data/corpus-mix ]; then
    paths=(../shared/data/corpus-mix)
  else
    .venv/bin/python -c "from pathlib import Path; from mmrag.testing.documents import write_good_documents; write_good_documents(Path('.mmrag-sample'))"
    paths=(.mmrag-sample)
  fi
fi
status=0
.venv/bin/mmrag ingest "${paths[@]}" || status=$?
.venv/bin/mmrag docs list
echo "data directory: $MMRAG_DATA_DIR" >&2
# 1 = some files could not be read (listed above); anything else is an error.
[ "$status" -le 1 ] || exit "$status"
