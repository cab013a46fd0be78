#!/usr/bin/env bash
# The other Multi30k directions users want beside the quickstart's de->en: en->de and fr->en Transformers, each
# trained MINUTES (default 10) on the CPU and evaluated on test_2016_flickr (beam 5). Run after the quickstart
# (it sets up .venv and fetches Multi30k with every language); `translate serve --models runs` then serves every
# pair, and requests route by (source, target). A second run resumes and skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."
T=.venv/bin/translate
[ -d data/multi30k ] || { echo "run scripts/quickstart.sh first (it fetches Multi30k)" >&2; exit 2; }
for pair in en-de fr-en; do
  src=${pair%-*} tgt=${pair#*-} run=runs/transformer-$pair
  if [ -f "$run/last.pt" ]; then
    $T train --out "$run" --resume --minutes "${MINUTES:-10}"
  else
    $T train --arch transformer --data data/multi30k --src "$src" --tgt "$tgt" --out "$run" --minutes "${MINUTES:-10}" --lr 3e-3
  fi
  $T evaluate "$run" --data data/multi30k --split test_2016_flickr --beam 5
done
