#!/usr/bin/env bash
# The main job: set up, fetch Multi30k, train a quick general-purpose de->en Transformer on Multi30k (image
# captions, weighted x3) and Tatoeba (everyday sentences), evaluate it on both test sets, serve it.
# MINUTES (default 10) sets the training budget; a second run resumes and skips what is done.
# Tatoeba is read from TATOEBA_DIR (default ../shared/data/tatoeba-deu-eng, {split}.{de,en}.gz); without it the
# model learns from Multi30k alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
T=.venv/bin/translate
LOCAL=${MULTI30K_DIR:-../shared/data/multi30k}
if [ -d "$LOCAL" ]; then $T data fetch --from "$LOCAL"; else $T data fetch; fi
TATOEBA=${TATOEBA_DIR:-../shared/data/tatoeba-deu-eng}
DATA="data/multi30k*3"
if [ -f "$TATOEBA/train.de.gz" ]; then DATA="$DATA,$TATOEBA"; else echo "no Tatoeba at $TATOEBA: Multi30k only" >&2; fi
RUN=runs/transformer-de-en
if [ -f "$RUN/last.pt" ]; then
  $T train --out "$RUN" --resume --minutes "${MINUTES:-10}"
else
  $T train --arch transformer --data "$DATA" --src de --tgt en --out "$RUN" --minutes "${MINUTES:-10}"
fi
$T evaluate "$RUN" --data data/multi30k --split test_2016_flickr --beam 5
if [ -f "$TATOEBA/test.de.gz" ]; then $T evaluate "$RUN" --data "$TATOEBA" --split test --beam 5; fi
printf 'Ein Hund rennt über die Wiese.\nWie geht es dir?\n' | $T translate "$RUN" --beam 5
# Serve every run under runs/ (API + comparison page); Ctrl-C stops it.
exec $T serve --models runs --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
