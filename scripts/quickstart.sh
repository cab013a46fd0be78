#!/usr/bin/env bash
# The main job: set up, fetch Multi30k, train a quick de->en Transformer, evaluate it on test_2016_flickr, serve it.
# MINUTES (default 10) sets the training budget; a second run resumes and skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
T=.venv/bin/translate
LOCAL=${MULTI30K_DIR:-../shared/data/multi30k}
if [ -d "$LOCAL" ]; then $T data fetch --from "$LOCAL"; else $T data fetch; fi
RUN=runs/transformer-de-en
if [ -f "$RUN/last.pt" ]; then
  $T train --out "$RUN" --resume --minutes "${MINUTES:-10}"
else
  $T train --arch transformer --data data/multi30k --src de --tgt en --out "$RUN" --minutes "${MINUTES:-10}"
fi
$T evaluate "$RUN" --data data/multi30k --split test_2016_flickr --beam 5
echo "Ein Hund rennt über die Wiese." | $T translate "$RUN" --beam 5
# Serve every run under runs/ (API + comparison page); Ctrl-C stops it.
exec $T serve --models runs --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
