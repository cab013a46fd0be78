#!/usr/bin/env bash
# Everything the converged comparison trains, at once on one GPU (issue #14):
#   bash scripts/converged_runs.sh MULTI30K TATOEBA RUNS
# 1. every model of the comparison to convergence: translate compare --long (RUNS/compare/long/<model>)
# 2. the bidirectional-LSTM ablation at equal updates (RUNS/ablation/<model>)
# 3. the Transformer en->de to convergence (RUNS/transformer-en-de)
# 4. the general-purpose de->en model, Multi30k x3 + Tatoeba (RUNS/general-de-en)
# Each standalone run then averages its last 5 checkpoints, keeps whichever of that and best.pt scores higher on
# val (greedy), and scores it with beam 5 on the test splits. Run it again to resume what did not finish.
set -uo pipefail
M30K=$(realpath "${1:?Multi30k folder}"); TATOEBA=$(realpath "${2:?Tatoeba folder}"); RUNS=$(realpath -m "${3:?runs folder}")
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."
mkdir -p "$RUNS"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}  # a dozen processes share the machine's cores

standalone() {  # name config data test-splits...  (a test split is DATA:SPLIT)
  local name=$1 config=$2 data=$3; shift 3
  local run="$RUNS/$name" resume=""
  [ -f "$run/summary.json" ] || { [ -f "$run/last.pt" ] && resume=--resume
    $PY -m translate train --config "$config" --data "$data" --out "$run" $resume ${TRAIN_FLAGS:-} > "$run.train.json" 2> "$run.log" || return 1; }
  local chosen=$run
  if $PY -m translate average "$run" --last 5 --out "$run.avg" >> "$run.log" 2>&1; then
    best=$($PY -m translate evaluate "$run" --data "$data" --split val --beam 1 2>> "$run.log" | $PY -c "import json,sys; print(json.load(sys.stdin)['bleu'])")
    avg=$($PY -m translate evaluate "$run.avg" --data "$data" --split val --beam 1 2>> "$run.log" | $PY -c "import json,sys; print(json.load(sys.stdin)['bleu'])")
    echo "$name: val BLEU best.pt $best, average of last 5 $avg" >> "$RUNS/$name.choice"
    $PY -c "import sys; sys.exit(0 if float('$avg') > float('$best') else 1)" && chosen=$run.avg
  fi
  echo "$name: evaluated $(basename "$chosen")" >> "$RUNS/$name.choice"
  for test in "$@"; do
    $PY -m translate evaluate "$chosen" --data "${test%%:*}" --split "${test#*:}" --beam 5 >> "$RUNS/$name.tests.jsonl" 2>> "$run.log"
  done
}

$PY -m translate data fetch --from "$M30K" --out data/multi30k > /dev/null
$PY -m translate compare --config scripts/configs/compare-multi30k-de-en.toml --out "$RUNS/report" \
  --runs "$RUNS/compare" --long --no-report > "$RUNS/compare.log" 2>&1 &
$PY -m translate compare --config scripts/configs/ablation-bilstm.toml --out "$RUNS/ablation-report" \
  --runs "$RUNS/ablation" --jobs 5 --no-report > "$RUNS/ablation.log" 2>&1 &
standalone transformer-en-de scripts/configs/transformer-en-de.toml data/multi30k data/multi30k:test_2016_flickr &
standalone general-de-en scripts/configs/general-de-en.toml "data/multi30k*3,$TATOEBA" \
  "$TATOEBA:test" data/multi30k:test_2016_flickr &
wait
