#!/usr/bin/env bash
# Set up (if needed) and run the main job on the embedded store (no servers):
# ingest documents, list what was indexed, ask one question about them.
#   scripts/demo.sh [PATH...]     (default: ../shared/data/corpus-mix if present,
#                                  else a small generated sample corpus)
# With no Hugging Face hub it runs the offline profile and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The data directory every mmrag command uses by default (MMRAG_DATA_DIR, else ~/.mmrag),
# so `mmrag docs list`, `mmrag ask` and `mmrag serve` see what the demo indexed.
export MMRAG_DATA_DIR=${MMRAG_DATA_DIR:-$HOME/.mmrag}
paths=("$@")
question=""
if [ ${#paths[@]} -eq 0 ]; then
  if [ -d ../shared/data/corpus-mix ]; then
    paths=(../shared/data/corpus-mix)
    question="What happens if the hands-free card stays in the detection area?"
  else
    .venv/bin/python -c "from pathlib import Path; from mmrag.testing.documents import write_good_documents; write_good_documents(Path('.mmrag-sample'))"
    paths=(.mmrag-sample)
    question="How many megawatts does the Zephyr turbine produce?"
  fi
fi
status=0
.venv/bin/mmrag ingest "${paths[@]}" || status=$?
.venv/bin/mmrag docs list
if [ -n "$question" ]; then
  echo "Q: $question"
  .venv/bin/mmrag ask "$question"
fi
echo "data directory: $MMRAG_DATA_DIR" >&2
echo "web page: .venv/bin/mmrag serve, then open http://127.0.0.1:8000/" >&2
# 1 = some files could not be read (listed above); anything else is an error.
[ "$status" -le 1 ] || exit "$status"
